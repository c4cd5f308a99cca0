"""Listings: tags of a repository, the catalog of repositories, referrers of a manifest."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from seawall.db.store import MAX_PAGE, MetadataStore
from seawall.domain.digests import Digest
from seawall.domain.manifests import Descriptor
from seawall.errors import ErrorCode, RegistryError


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    next_last: str | None  # set when more items follow; the `last` of the next page


def page_size(n: str | None) -> int:
    if n is None:
        return MAX_PAGE
    if not (n.isascii() and n.isdigit()):
        raise RegistryError(
            ErrorCode.PAGINATION_NUMBER_INVALID, f"n must be a non-negative integer, got {n[:50]!r}"
        )
    return min(int(n), MAX_PAGE)


def _page(rows: list[str], n: int) -> Page:
    if len(rows) > n:
        return Page(rows[:n], rows[n - 1] if n else None)
    return Page(rows, None)


class ListingService:
    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    async def tags(self, repository: str, n: int, last: str | None) -> Page:
        rows = await self.store.list_tags(repository, n + 1, last)
        if rows is None:
            raise RegistryError(
                ErrorCode.NAME_UNKNOWN,
                f"repository {repository!r} is not known",
                {"name": repository},
            )
        return _page(rows, n)

    async def catalog(self, n: int, last: str | None) -> Page:
        return _page(await self.store.catalog(n + 1, last), n)

    async def referrers(
        self, repository: str, subject: Digest, artifact_type: str | None
    ) -> list[dict[str, Any]]:
        """Descriptors of the manifests in `repository` whose subject is `subject`."""
        return [
            Descriptor(
                r.media_type,
                r.digest,
                r.size,
                r.artifact_type,
                json.loads(r.annotations_json) if r.annotations_json else None,
            ).to_json()
            for r in await self.store.referrers(repository, str(subject), artifact_type)
        ]
