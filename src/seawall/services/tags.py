"""Listing a repository's tags."""

from __future__ import annotations

from seawall.db.store import MetadataStore
from seawall.domain.pagination import Page, page
from seawall.errors import ErrorCode, RegistryError


class TagService:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    async def list(self, repository: str, n: int, last: str | None) -> Page:
        rows = await self.store.list_tags(repository, n + 1, last)
        if rows is None:
            raise RegistryError(
                ErrorCode.NAME_UNKNOWN,
                f"repository {repository!r} is not known",
                {"name": repository},
            )
        return page(rows, n)
