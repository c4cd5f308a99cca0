"""Read models for the web console: pages of rows by keyset, each query bounded by its page
(never the whole registry), so a page costs the same with 10 repositories or 10,000."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seawall.db.store import Row, SqlBackend


def _like(text: str) -> str:
    """`text` as a LIKE pattern matching it literally anywhere (escape character `!`)."""
    escaped = text.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class BrowseStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def repositories(
        self,
        after: str,
        limit: int,
        *,
        contains: str | None = None,
        namespace: str | None = None,
        owner: str | None = None,
    ) -> list[Row]:
        """(id, name, owner, purpose) of repositories holding at least one manifest, by name
        after `after`."""
        where = ["r.name > ?"]
        args: list[Any] = [after]
        if contains:
            where.append("r.name LIKE ? ESCAPE '!'")
            args.append(_like(contains))
        if namespace:
            prefix = namespace + "/"
            where.append("substr(r.name, 1, ?) = ?")
            args += [len(prefix), prefix]
        if owner:
            where.append("r.owner = ?")
            args.append(owner)
        sql = (
            "SELECT r.id, r.name, r.owner, r.purpose FROM repositories r WHERE "  # noqa: S608
            + " AND ".join(where)
            + " AND EXISTS (SELECT 1 FROM repository_manifests rm WHERE rm.repository_id = r.id)"
            " ORDER BY r.name LIMIT ?"
        )
        return await self.backend.fetchall(sql, *args, limit)

    async def repository_facts(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Per repository id: tags, last push, last pull, and the scan totals over its tagged
        images (critical, high, medium, low, secrets, malware, scanned, unscanned)."""
        if not ids:
            return {}
        marks = ", ".join("?" for _ in ids)
        facts: dict[int, dict[str, Any]] = {
            i: {
                "tags": 0,
                "last_push": None,
                "last_pull": None,
                "critical": 0,
                "high": 0,
                "medium": 0,
                "low": 0,
                "secrets": 0,
                "malware": 0,
                "failed": 0,
                "unscanned": 0,
            }
            for i in ids
        }
        for row in await self.backend.fetchall(
            "SELECT repository_id, COUNT(*), MAX(updated_at) FROM tags"  # noqa: S608
            f" WHERE repository_id IN ({marks}) GROUP BY repository_id",
            *ids,
        ):
            facts[int(row[0])].update(tags=int(row[1]), last_push=row[2])
        for row in await self.backend.fetchall(
            "SELECT repository_id, MAX(last_at) FROM pull_counts"  # noqa: S608
            f" WHERE repository_id IN ({marks}) GROUP BY repository_id",
            *ids,
        ):
            facts[int(row[0])]["last_pull"] = row[1]
        for row in await self.backend.fetchall(
            "SELECT d.repository_id, s.status, s.critical, s.high, s.medium, s.low, s.secrets,"  # noqa: S608
            " s.malware FROM (SELECT DISTINCT repository_id, digest FROM tags"
            f" WHERE repository_id IN ({marks})) d"
            " LEFT JOIN scan_reports s ON s.digest = d.digest",
            *ids,
        ):
            fact = facts[int(row[0])]
            if row[1] is None:
                fact["unscanned"] += 1
            elif row[1] != "complete":
                fact["failed"] += 1
            else:
                for key, value in zip(
                    ("critical", "high", "medium", "low", "secrets", "malware"),
                    row[2:],
                    strict=True,
                ):
                    fact[key] += int(value or 0)
        return facts
