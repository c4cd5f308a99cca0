"""Access decisions against what the database holds: loads the actor and the namespace policy,
then asks the decision engine (`seawall.domain.access.decide`), which explains itself. Also
creates the namespace a first push lands in, recording it in the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from seawall.db.identities import ACCOUNTS_CHANNEL, IdentityStore, NamespaceRecord
from seawall.db.store import LISTENING, Change
from seawall.domain.access import Decision, decide, namespace_of, visible
from seawall.domain.audit import AuditAction, AuditEvent, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.rights import (
    Action,
    Actor,
    CreationRule,
    NamespacePolicy,
    RepositoryGrant,
    RobotScope,
    Role,
)
from seawall.services.audit import AuditLog


class AccessService:
    def __init__(
        self,
        identities: IdentityStore,
        creation: CreationRule,
        audit: AuditLog,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.identities = identities
        self.creation = creation
        self.audit = audit
        self.clock = clock  # grants and robots expire
        # Accounts behind bearer tokens, kept only while the database notifies every process
        # of each account change (PostgreSQL LISTEN/NOTIFY); SQLite reads are cheap enough.
        self._active: dict[str, Actor] | None = None
        self._changes = 0  # notifications received; a lookup that saw one may not be kept

    async def start(self) -> None:
        """Subscribe to account changes, if the database can tell us about them."""

        def changed(name: str | None) -> None:
            self._changes += 1
            if name is None:  # notifications may be lost from now on: stop caching
                self._active = None
            elif name == LISTENING:  # they arrive again: cache afresh
                self._active = {}
            elif self._active is not None:
                self._active.pop(name, None)

        if await self.identities.backend.subscribe(ACCOUNTS_CHANNEL, changed):
            self._active = {}

    async def actor(self, name: str) -> Actor | None:
        """The user or robot called `name` as it is now (robots are named `<ns>+<name>`)."""
        if "+" in name:
            robot = await self.identities.robot(name)
            if robot is None:
                return None
            scopes = tuple(
                RobotScope(s["pattern"], frozenset(Action(a) for a in s["actions"]))
                for s in robot.scopes
            )
            return Actor.robot(name, scopes, expires_at=robot.expires_at, disabled=robot.disabled)
        user = await self.identities.user(name)
        if user is None:
            return None
        teams = await self.identities.teams_of(name)
        return Actor.user(name, site_admin=user.site_admin, disabled=user.disabled, teams=teams)

    async def active(self, name: str) -> Actor | None:
        """The account behind a bearer token, with one lookup: enough to refuse a disabled or
        expired one. Teams are not loaded (a token carries its grants); `actor()` has them."""
        cache = self._active
        if cache is not None and (cached := cache.get(name)) is not None:
            return cached
        changes = self._changes
        if "+" in name:
            actor = await self.actor(name)
        else:
            user = await self.identities.user(name)
            actor = (
                None
                if user is None
                else Actor.user(name, site_admin=user.site_admin, disabled=user.disabled)
            )
        # Kept only if no change arrived meanwhile: the read may predate it.
        if cache is not None and actor is not None and changes == self._changes:
            if len(cache) >= 100_000:
                cache.clear()
            cache[name] = actor
        return actor

    async def ensure_namespace(self, repository: str, creator: Actor, origin: Origin) -> None:
        """Create the repository's namespace if it is missing (private), with its creator as
        admin (`Actor.admin_of_what_it_creates`). One `namespace:created` event, from the
        pushing request's `origin`, says both, and commits with them."""
        namespace = namespace_of(repository)
        if await self.identities.namespace_exists(namespace):
            return
        admin = creator.admin_of_what_it_creates()
        # The repository goes in the detail, not the event's repository: the event is the
        # namespace's, and a repository's history starts with its first manifest.
        detail: dict[str, object] = {"public": False, "via": "push", "repository": repository}
        if admin is not None:
            detail["members"] = {admin: Role.ADMIN.value}

        def created(change: Change) -> list[AuditEvent]:
            if not change.done:  # a concurrent push created it (and recorded it)
                return []
            event = self.audit.event(
                origin, AuditAction.NAMESPACE_CREATED, namespace=namespace, detail=detail
            )
            return [event]

        await self.identities.create_namespace(
            namespace, audit=self.audit.recorder(created), admin=admin
        )

    async def policy(self, namespace: str) -> NamespacePolicy | None:
        record = await self.identities.namespace(namespace)
        return None if record is None else _policy(record)

    async def decide(self, actor: Actor, repository: str | None, action: Action) -> Decision:
        policy = None if repository is None else await self.policy(namespace_of(repository))
        return decide(actor, repository, action, policy, self.creation, self.clock.now())

    async def visible(self, actor: Actor, repository: str) -> bool:
        policy = await self.policy(namespace_of(repository))
        return visible(actor, repository, policy, self.clock.now())

    def viewer(self, actor: Actor) -> Callable[[str], Awaitable[bool]]:
        """`visible` for many repositories in a row (a listing): each namespace's policy is
        read once."""
        policies: dict[str, NamespacePolicy | None] = {}
        now = self.clock.now()

        async def sees(repository: str) -> bool:
            namespace = namespace_of(repository)
            if namespace not in policies:
                policies[namespace] = await self.policy(namespace)
            return visible(actor, repository, policies[namespace], now)

        return sees


def explanation_view(
    account: str, repository: str, action: Action, decision: Decision
) -> dict[str, Any]:
    """A decision as `GET /api/v1/access/explain` and `seawall access explain --json` give it;
    `account` is the name asked about, or `anonymous`."""
    return {
        "account": account,
        "repository": repository,
        "action": action.value,
        "allowed": decision.allowed,
        "rule": str(decision.rule),
        "reason": decision.reason,
    }


def _policy(record: NamespaceRecord) -> NamespacePolicy:
    return NamespacePolicy(
        record.name,
        public=record.public,
        members={p: Role.of_rank(rank) for p, rank in record.members.items()},
        grants=tuple(
            RepositoryGrant(pattern, principal, frozenset(Action(a) for a in actions))
            for pattern, principal, actions in record.grants
        ),
    )
