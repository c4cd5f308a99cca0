"""What the console's Access page shows: users, teams, robots and namespaces (with members and
grants) a page at a time, and the access decision `GET /api/v1/access/explain` gives.

Who may read which list is the handler's check (site admins; a namespace's admins for its own
members, grants and robots), as in the management API; this only reads. Changes go through
`IdentityService`, so each is audited as the API's are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seawall.db.console_access import AccessListStore
from seawall.domain.rights import Action, Actor, Role
from seawall.services.access import AccessService, explanation_view
from seawall.services.identity import namespace_view

PAGE = 50


@dataclass(frozen=True, slots=True)
class AccessPage:
    rows: list[dict[str, Any]]
    next_after: str | None  # the keyset of the next page, None on the last one


@dataclass(frozen=True, slots=True)
class NamespaceAccess:
    namespace: dict[str, Any]  # as `GET /api/v1/namespaces/{name}` gives it
    robots: AccessPage


def _page(rows: list[dict[str, Any]], limit: int) -> AccessPage:
    """`rows` read with `limit + 1`: the extra row only says that a next page exists."""
    if len(rows) > limit:
        return AccessPage(rows[:limit], rows[limit - 1]["name"])
    return AccessPage(rows, None)


class AccessDirectory:
    def __init__(self, store: AccessListStore, access: AccessService) -> None:
        self.store = store
        self.access = access  # decisions, the namespace records, and the clock robots expire by

    async def users(self, after: str, limit: int = PAGE) -> AccessPage:
        rows = await self.store.users(after, limit + 1)
        return _page(
            [{"name": r[0], "site_admin": bool(r[1]), "disabled": bool(r[2])} for r in rows],
            limit,
        )

    async def teams(self, after: str, limit: int = PAGE) -> AccessPage:
        rows = await self.store.teams(after, limit + 1)
        members = await self.store.team_members([int(r[0]) for r in rows[:limit]])
        return _page([{"name": r[1], "members": members.get(int(r[0]), [])} for r in rows], limit)

    async def robots(
        self, after: str, namespace: str | None = None, limit: int = PAGE
    ) -> AccessPage:
        rows = await self.store.robots(after, limit + 1, namespace)
        now = self.access.clock.now()
        return _page([_robot(r, now) for r in rows], limit)

    async def namespaces(self, after: str, limit: int = PAGE) -> AccessPage:
        rows = await self.store.namespaces(after, limit + 1)
        rules = await self.store.namespace_rules([int(r[0]) for r in rows[:limit]])
        listed = []
        for r in rows:
            members, grants = rules.get(int(r[0]), ([], []))
            listed.append(
                {
                    "name": r[1],
                    "public": bool(r[2]),
                    "members": [(p, Role.of_rank(rank).value) for p, rank in sorted(members)],
                    "grants": [
                        {"pattern": pattern, "principal": who, "actions": list(actions)}
                        for pattern, who, actions in grants
                    ],
                }
            )
        return _page(listed, limit)

    async def namespace(self, name: str, robots_after: str = "") -> NamespaceAccess | None:
        """One namespace's visibility, members and grants, and a page of its robots."""
        record = await self.access.identities.namespace(name)
        if record is None:
            return None
        return NamespaceAccess(namespace_view(record), await self.robots(robots_after, name))

    async def explain(
        self, account: str | None, repository: str, action: Action
    ) -> dict[str, Any] | None:
        """The decision on `account` (None: anonymous) doing `action` on `repository`, as the
        API explains it; None when there is no such account."""
        subject = Actor.anonymous() if account is None else await self.access.actor(account)
        if subject is None:
            return None
        decision = await self.access.decide(subject, repository, action)
        return explanation_view(account or "anonymous", repository, action, decision)


def _robot(r: Sequence[Any], now: float) -> dict[str, Any]:
    expires_at = None if r[2] is None else float(r[2])
    return {
        "name": r[0],
        "namespace": str(r[0]).partition("+")[0],
        "scopes": r[1],
        "expires_at": expires_at,
        "expired": expires_at is not None and expires_at <= now,
        "disabled": r[3],
        "created_by": r[4],
    }
