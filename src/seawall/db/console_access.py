"""Read models for the console's Access page: users, teams, robots and namespaces a page at a
time (keyset on the name, which sorts byte-wise on both databases), each page's members and
grants read in one query for the whole page, never one query per row."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from seawall.db.store import Row, SqlBackend


class AccessListStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def users(self, after: str, limit: int) -> list[Row]:
        """(name, site_admin, disabled) by name after `after`."""
        return await self.backend.fetchall(
            "SELECT name, site_admin, disabled FROM users WHERE name > ? ORDER BY name LIMIT ?",
            after,
            limit,
        )

    async def teams(self, after: str, limit: int) -> list[Row]:
        """(id, name) by name after `after`."""
        return await self.backend.fetchall(
            "SELECT id, name FROM teams WHERE name > ? ORDER BY name LIMIT ?", after, limit
        )

    async def team_members(self, ids: Sequence[int]) -> dict[int, list[str]]:
        """Per team id: its users' names, sorted."""
        members: dict[int, list[str]] = {i: [] for i in ids}
        if not ids:
            return members
        marks = ", ".join("?" for _ in ids)
        for row in await self.backend.fetchall(
            "SELECT m.team_id, u.name FROM team_members m JOIN users u ON u.id = m.user_id"  # noqa: S608
            f" WHERE m.team_id IN ({marks}) ORDER BY u.name",
            *ids,
        ):
            members[int(row[0])].append(str(row[1]))
        return members

    async def robots(self, after: str, limit: int, namespace: str | None = None) -> list[Row]:
        """(name, scopes, expires_at, disabled, created_by) by name after `after`, scopes
        decoded; only the namespace's robots (`<namespace>+…`) when it is given."""
        where, args = "name > ?", list[Any]([after])
        if namespace is not None:
            prefix = namespace + "+"
            where += " AND substr(name, 1, ?) = ?"
            args += [len(prefix), prefix]
        rows = await self.backend.fetchall(
            "SELECT name, scopes, expires_at, disabled, created_by FROM robots"  # noqa: S608
            f" WHERE {where} ORDER BY name LIMIT ?",
            *args,
            limit,
        )
        return [(r[0], json.loads(r[1]), r[2], bool(r[3]), r[4]) for r in rows]

    async def namespaces(self, after: str, limit: int) -> list[Row]:
        """(id, name, public) by name after `after`."""
        return await self.backend.fetchall(
            "SELECT id, name, public FROM namespaces WHERE name > ? ORDER BY name LIMIT ?",
            after,
            limit,
        )

    async def namespace_rules(
        self, ids: Sequence[int]
    ) -> dict[int, tuple[list[tuple[str, int]], list[tuple[str, str, tuple[str, ...]]]]]:
        """Per namespace id: its members (principal, role rank; in no particular order) and its
        grants (pattern, principal, actions)."""
        rules: dict[int, tuple[list[tuple[str, int]], list[tuple[str, str, tuple[str, ...]]]]]
        rules = {i: ([], []) for i in ids}
        if not ids:
            return rules
        marks = ", ".join("?" for _ in ids)
        args: list[Any] = list(ids)
        for row in await self.backend.fetchall(
            "SELECT namespace_id, principal, role FROM namespace_members"  # noqa: S608
            f" WHERE namespace_id IN ({marks})",
            *args,
        ):
            rules[int(row[0])][0].append((str(row[1]), int(row[2])))
        for row in await self.backend.fetchall(
            "SELECT namespace_id, pattern, principal, actions FROM repository_grants"  # noqa: S608
            f" WHERE namespace_id IN ({marks}) ORDER BY pattern, principal",
            *args,
        ):
            actions = tuple(a for a in str(row[3]).split(",") if a)
            rules[int(row[0])][1].append((str(row[1]), str(row[2]), actions))
        return rules
