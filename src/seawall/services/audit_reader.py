"""Reading the audit log back: `GET /api/v1/audit` and `seawall audit list|head` ask here.

Who may read which rows is the caller's access check (site admins everything, a namespace's
admins its rows); this only reads.
"""

from __future__ import annotations

from seawall.db.audit import AuditStore
from seawall.domain.audit import AuditFilter, StoredEvent


class AuditReader:
    def __init__(self, store: AuditStore) -> None:
        self.store = store

    async def query(
        self, where: AuditFilter, before: int | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        """Events matching `where`, newest first, with `seq` below `before` when given."""
        return await self.store.query(where, before=before, limit=limit)

    async def head(self) -> tuple[int, str]:
        """The chain head: the last `seq` and its hash."""
        return await self.store.head()
