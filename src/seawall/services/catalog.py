"""The catalog: every repository holding at least one manifest."""

from __future__ import annotations

from seawall.db.store import MetadataStore
from seawall.domain.pagination import Page, page


class CatalogService:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    async def list(self, n: int, last: str | None) -> Page:
        return page(await self.store.catalog(n + 1, last), n)
