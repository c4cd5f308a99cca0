"""The console's list of namespaces with their policy's revision: a page by keyset on the
name, each query bounded by its page."""

from __future__ import annotations

from seawall.db.store import Row, SqlBackend


class PolicyIndexStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def namespaces(self, after: str, limit: int) -> list[Row]:
        """(name, revision, updated_at, updated_by) of namespaces named after `after`, by
        name; the revision is None where no policy was ever saved."""
        return await self.backend.fetchall(
            "SELECT n.name, p.revision, p.updated_at, p.updated_by FROM namespaces n"
            " LEFT JOIN policies p ON p.namespace = n.name"
            " WHERE n.name > ? ORDER BY n.name LIMIT ?",
            after,
            limit,
        )
