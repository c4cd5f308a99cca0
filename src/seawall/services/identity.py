"""`IdentityService`: every change to users, teams, robots, namespaces, memberships and grants,
each recorded in the audit log once it has committed.

The API and the `seawall` commands change identities only through here, so no change goes
unrecorded, and every rule about what a change may hold lives here once: names, passwords
(hashed here), patterns within their namespace, the actions of a grant, a robot's name, scopes
and lifetime (and its secret, made here). The API and the commands only parse what they are
given. A value the rules refuse raises `RegistryError(INPUT_UNSUPPORTED)` with a message that
says why; the last enabled site admin is never disabled or demoted (`CONFLICT`).

Each method mirrors an `IdentityStore` method, with the `Origin` of the change in front, and
returns what the store returned; a change the store reports as not made (a name taken, nothing
to remove) records nothing. Reads stay on the `IdentityStore`. Events name the subject
(`reference`) and the namespace it lies in; `detail` holds what was set, never a password, a
hash or a robot's secret.
"""

from __future__ import annotations

from collections.abc import Awaitable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from seawall.db.identities import IdentityStore, LastSiteAdmin, NamespaceRecord
from seawall.db.store import Change
from seawall.domain import credentials, robots
from seawall.domain.audit import AuditAction, AuditEvent, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.names import (
    MAX_ACCOUNT_NAME_LENGTH,
    MAX_NAME_LENGTH,
    MAX_ROBOT_NAME_LENGTH,
    validate_component,
)
from seawall.domain.patterns import RepositoryPattern
from seawall.domain.rights import (
    GRANTABLE_ACTIONS,
    Action,
    Actor,
    RepositoryGrant,
    RobotScope,
    Role,
)
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog


@dataclass(frozen=True, slots=True)
class NewRobot:
    """A robot just created. `secret` exists only here: the database holds its hash."""

    name: str
    secret: str
    scopes: list[dict[str, Any]]  # as stored: {"pattern", "actions"}, actions in Action order
    expires_at: float


def refused(message: str) -> RegistryError:
    """A value the rules refuse; the message says which and why."""
    return RegistryError(ErrorCode.INPUT_UNSUPPORTED, message)


def checked_name(name: str, what: str, limit: int = MAX_NAME_LENGTH) -> str:
    """`name`, if `what` (a user, team, namespace or robot name) may be called that."""
    try:
        return validate_component(name, what, limit)
    except ValueError as exc:
        raise refused(str(exc)) from None


def user_name(name: str) -> str:
    return checked_name(name, "user name", MAX_ACCOUNT_NAME_LENGTH)


def team_name(name: str) -> str:
    return checked_name(name, "team name", MAX_ACCOUNT_NAME_LENGTH)


def namespace_name(name: str) -> str:
    return checked_name(name, "namespace name")


def pattern_within(pattern: str, namespace: str) -> str:
    """`pattern`, if it is a repository pattern that matches only names in `namespace`."""
    try:
        parsed = RepositoryPattern(pattern)
    except ValueError as exc:
        raise refused(str(exc)) from None
    if not parsed.is_within(namespace):
        raise refused(
            f"pattern {pattern!r} reaches outside namespace {namespace!r}: it must be"
            f" {namespace!r} or start with '{namespace}/'"
        )
    return pattern


def grantable(actions: Collection[str]) -> tuple[str, ...]:
    """A grant's actions, checked and in `Action` order."""
    allowed = sorted(a.value for a in GRANTABLE_ACTIONS)
    if not actions:
        raise refused("actions must be a non-empty list")
    try:
        wanted = frozenset(Action(a) for a in actions)
    except ValueError:
        raise refused(f"actions are among {allowed}") from None
    if not wanted <= GRANTABLE_ACTIONS:
        raise refused(f"actions are among {allowed}")
    return tuple(a.value for a in Action if a in wanted)


def password_hash(password: str) -> str:
    """The stored form of a new password; refused when it is too short."""
    try:
        return credentials.hash_password(password)
    except ValueError as exc:
        raise refused(str(exc)) from None


def namespace_view(record: NamespaceRecord) -> dict[str, Any]:
    """A namespace as `GET /api/v1/namespaces/{name}` and `seawall namespace show --json`
    give it."""
    return {
        "name": record.name,
        "public": record.public,
        "sbom_referrer": record.sbom_referrer,
        "members": {who: Role.of_rank(rank).value for who, rank in sorted(record.members.items())},
        "grants": [
            {"pattern": pattern, "principal": who, "actions": list(actions)}
            for pattern, who, actions in record.grants
        ],
    }


class IdentityService:
    def __init__(
        self, identities: IdentityStore, audit: AuditLog, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.identities = identities
        self.audit = audit
        self.clock = clock  # robot expiry is computed from it

    # -- users ----------------------------------------------------------------------------

    async def create_user(
        self, origin: Origin, name: str, password: str, site_admin: bool = False
    ) -> bool:
        """False when the name is taken."""
        name = user_name(name)
        recorded = self.audit.if_done(
            origin, AuditAction.USER_CREATED, reference=name, detail={"site_admin": site_admin}
        )
        return await self.identities.create_user(
            name, password_hash(password), site_admin, recorded
        )

    async def set_password(self, origin: Origin, name: str, password: str) -> bool:
        return await self._set_password_hash(origin, name, password_hash(password))

    async def _set_password_hash(self, origin: Origin, name: str, hashed: str) -> bool:
        recorded = self.audit.if_done(origin, AuditAction.USER_PASSWORD_CHANGED, reference=name)
        return await self.identities.set_password(name, hashed, recorded)

    async def update_user(
        self,
        origin: Origin,
        name: str,
        *,
        disabled: bool | None = None,
        site_admin: bool | None = None,
        password: str | None = None,
    ) -> bool:
        """Make the changes given (None: leave it), each recorded; False when there is no such
        user. A new password is checked first and set last, and a demotion comes after an
        enabling: so a refusal (too short a password, the last site admin) leaves the rest as
        it was."""
        hashed = None if password is None else password_hash(password)
        if await self.identities.user(name) is None:
            return False
        if site_admin:
            await self.set_site_admin(origin, name, True)
        if disabled is not None:
            await self.set_disabled(origin, name, disabled)
        if site_admin is False:
            await self.set_site_admin(origin, name, False)
        if hashed is not None:
            await self._set_password_hash(origin, name, hashed)
        return True

    async def set_disabled(self, origin: Origin, name: str, disabled: bool) -> bool:
        """Refuses (`CONFLICT`; nothing changed, nothing recorded) to disable the last enabled
        site admin: with none left, nobody could manage users again."""
        action = AuditAction.USER_DISABLED if disabled else AuditAction.USER_ENABLED
        recorded = self.audit.if_done(origin, action, reference=name)
        return await _keeping_a_site_admin(self.identities.set_disabled(name, disabled, recorded))

    async def set_site_admin(self, origin: Origin, name: str, site_admin: bool) -> bool:
        """Refuses (`CONFLICT`) to take the role from the last enabled site admin."""
        action = AuditAction.USER_ADMIN_GRANTED if site_admin else AuditAction.USER_ADMIN_REVOKED
        recorded = self.audit.if_done(origin, action, reference=name)
        return await _keeping_a_site_admin(
            self.identities.set_site_admin(name, site_admin, recorded)
        )

    # -- teams ----------------------------------------------------------------------------

    async def create_team(self, origin: Origin, name: str) -> bool:
        name = team_name(name)
        recorded = self.audit.if_done(origin, AuditAction.TEAM_CREATED, reference=name)
        return await self.identities.create_team(name, recorded)

    async def add_team_member(self, origin: Origin, team: str, user: str) -> bool:
        recorded = self.audit.if_done(
            origin, AuditAction.TEAM_MEMBER_ADDED, reference=team, detail={"user": user}
        )
        return await self.identities.add_team_member(team, user, recorded)

    async def remove_team_member(self, origin: Origin, team: str, user: str) -> bool:
        recorded = self.audit.if_done(
            origin, AuditAction.TEAM_MEMBER_REMOVED, reference=team, detail={"user": user}
        )
        return await self.identities.remove_team_member(team, user, recorded)

    # -- robots ---------------------------------------------------------------------------

    async def create_robot(
        self,
        origin: Origin,
        namespace: str,
        name: str,
        scopes: Sequence[tuple[str, Collection[Action]]],
        days: int,
        created_by: str,
    ) -> NewRobot | None:
        """Create the robot `namespace+name` with `scopes` (pattern, actions), each pattern
        within the namespace, expiring in `days` (1 to `robots.MAX_DAYS`). The secret is made
        here and only its hash is stored. None when the name is taken."""
        namespace = namespace_name(namespace)
        full = f"{namespace}+{checked_name(name, 'robot name', robots.NAME_LIMIT)}"
        if len(full) > MAX_ROBOT_NAME_LENGTH:
            raise refused(
                f"robot name {full!r} is {len(full)} characters; the limit is"
                f" {MAX_ROBOT_NAME_LENGTH}, namespace included"
            )
        if not 1 <= days <= robots.MAX_DAYS:
            raise refused(f"days is an integer from 1 to {robots.MAX_DAYS}")
        stored = []
        for pattern, actions in scopes:
            pattern_within(pattern, namespace)
            try:
                RobotScope(pattern, frozenset(actions))
            except ValueError as exc:
                raise refused(str(exc)) from None
            stored.append(
                {"pattern": pattern, "actions": [a.value for a in Action if a in actions]}
            )
        if not stored:
            raise refused("a robot needs at least one scope")
        secret = credentials.new_robot_secret()
        expires_at = self.clock.now() + days * robots.DAY_SECONDS
        recorded = self.audit.if_done(
            origin,
            AuditAction.ROBOT_CREATED,
            namespace=namespace,
            reference=full,
            detail={"scopes": stored, "expires_at": expires_at},
        )
        created = await self.identities.create_robot(
            full, credentials.hash_secret(secret), stored, expires_at, created_by, recorded
        )
        return NewRobot(full, secret, stored, expires_at) if created else None

    async def disable_robot(self, origin: Origin, name: str) -> bool:
        """(Robots cannot be enabled again yet: no command or route does it.)"""
        recorded = self.audit.if_done(
            origin, AuditAction.ROBOT_DISABLED, namespace=_robot_namespace(name), reference=name
        )
        return await self.identities.set_robot_disabled(name, True, recorded)

    # -- namespaces -----------------------------------------------------------------------

    async def create_namespace(
        self, origin: Origin, name: str, public: bool = False, creator: Actor | None = None
    ) -> bool:
        """False when the name is taken. The `creator` becomes the namespace's admin
        (`Actor.admin_of_what_it_creates`), in the same transaction."""
        name = namespace_name(name)
        admin = creator.admin_of_what_it_creates() if creator is not None else None

        def created(change: Change) -> list[AuditEvent]:
            if not change.done:
                return []
            events = [
                self.audit.event(
                    origin, AuditAction.NAMESPACE_CREATED, namespace=name, detail={"public": public}
                )
            ]
            if admin is not None:
                events.append(
                    self.audit.event(
                        origin,
                        AuditAction.MEMBER_SET,
                        namespace=name,
                        reference=admin,
                        detail={"role": Role.ADMIN.value},
                    )
                )
            return events

        recorded = self.audit.recorder(created)
        return await self.identities.create_namespace(name, public, recorded, admin=admin)

    async def set_public(self, origin: Origin, name: str, public: bool) -> bool:
        recorded = self.audit.if_done(
            origin,
            AuditAction.NAMESPACE_VISIBILITY_CHANGED,
            namespace=name,
            detail={"public": public},
        )
        return await self.identities.set_public(name, public, recorded)

    async def set_sbom_referrer(self, origin: Origin, name: str, on: bool) -> bool:
        """Whether scans of the namespace's images attach the SBOM as a referrer (see
        docs/scanning.md). False when there is no such namespace."""
        recorded = self.audit.if_done(
            origin,
            AuditAction.NAMESPACE_SBOM_REFERRER_CHANGED,
            namespace=name,
            detail={"sbom_referrer": on},
        )
        return await self.identities.set_sbom_referrer(name, on, recorded)

    async def set_member(self, origin: Origin, namespace: str, principal: str, role: Role) -> bool:
        recorded = self.audit.if_done(
            origin,
            AuditAction.MEMBER_SET,
            namespace=namespace,
            reference=principal,
            detail={"role": role.value},
        )
        return await self.identities.set_member(namespace, principal, role.rank, recorded)

    async def remove_member(self, origin: Origin, namespace: str, principal: str) -> bool:
        recorded = self.audit.if_done(
            origin, AuditAction.MEMBER_REMOVED, namespace=namespace, reference=principal
        )
        return await self.identities.remove_member(namespace, principal, recorded)

    async def grant(
        self,
        origin: Origin,
        namespace: str,
        pattern: str,
        principal: str,
        actions: Iterable[str],
    ) -> bool:
        """Add or replace the grant of `actions` (some of pull, push, delete) on the
        repositories matching `pattern`, which must lie within the namespace. False when there
        is no such namespace."""
        pattern_within(pattern, namespace)
        actions = grantable(list(actions))
        try:
            RepositoryGrant(pattern, principal, frozenset(Action(a) for a in actions))
        except ValueError as exc:
            raise refused(str(exc)) from None
        recorded = self.audit.if_done(
            origin,
            AuditAction.GRANT_ADDED,
            namespace=namespace,
            reference=principal,
            detail={"pattern": pattern, "actions": list(actions)},
        )
        return await self.identities.grant(namespace, pattern, principal, actions, recorded)

    async def revoke(self, origin: Origin, namespace: str, pattern: str, principal: str) -> bool:
        pattern_within(pattern, namespace)
        recorded = self.audit.if_done(
            origin,
            AuditAction.GRANT_REVOKED,
            namespace=namespace,
            reference=principal,
            detail={"pattern": pattern},
        )
        return await self.identities.revoke(namespace, pattern, principal, recorded)


async def _keeping_a_site_admin(change: Awaitable[bool]) -> bool:
    """A user change the store refuses when it would leave no enabled site admin: refused
    as `CONFLICT` (nothing changed, nothing recorded)."""
    try:
        return await change
    except LastSiteAdmin as exc:
        raise RegistryError(ErrorCode.CONFLICT, str(exc)) from None


def _robot_namespace(name: str) -> str:
    """Robots are named `<namespace>+<name>`."""
    return name.partition("+")[0]
