"""`InventoryStore`: everything the inventory lists, read in a few bulk queries (never one query
per image): the manifests linked in each repository with the repository's owner and purpose,
their tags with the tags' lifecycle metadata, which manifests an index holds, which blobs each
manifest references and every blob's size, index payloads (platforms), and scan report
summaries.

Rows come back as the driver's tuples, unpacked by the service: at 50,000 images, building an
object per row cost more than the queries. Blob references and sizes are read as two flat
lists rather than joined here: looking 150,000 digests up in the blobs table cost SQLite
three times what reading both tables does, and the sums are a pass in the service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from seawall.db.store import Row, SqlBackend

# Column order of the rows `linked` and `tags` return, as the service unpacks them.
LINKED_COLUMNS = (
    "repository_id",
    "repository",
    "owner",
    "purpose",
    "digest",
    "linked_at",
    "pushed_by",
    "media_type",
    "artifact_type",
    "subject",
)
TAG_COLUMNS = (
    "repository_id",
    "digest",
    "name",
    "updated_at",
    "pushed_by",
    "channel",
    "deprecation",
)
# And of a scan summary: the digest, status, counts by severity (SEVERITIES' order), secrets,
# malware.
SUMMARY_COLUMNS = (
    "digest",
    "status",
    "critical",
    "high",
    "medium",
    "low",
    "unknown",
    "secrets",
    "malware",
)


def _scope(namespace: str | None, column: str) -> tuple[str, tuple[Any, ...]]:
    if namespace is None:
        return "", ()
    prefix = namespace + "/"
    return f" WHERE substr({column}, 1, ?) = ?", (len(prefix), prefix)


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


class InventoryStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def linked(
        self, namespace: str | None, repository_ids: Sequence[int] | None = None
    ) -> list[Row]:
        """Every manifest linked in a repository (of `namespace`, of `repository_ids`, or
        anywhere), by repository name then digest: the columns of `LINKED_COLUMNS`."""
        where, args = _scope(namespace, "r.name")
        if repository_ids is not None:
            where, args = " WHERE r.id IN (" + _marks(repository_ids) + ")", tuple(repository_ids)
        return await self.backend.fetchall(
            "SELECT r.id, r.name, r.owner, r.purpose, rm.digest, rm.created_at, rm.pushed_by,"  # noqa: S608
            " m.media_type, m.artifact_type, m.subject_digest FROM repositories r"
            " JOIN repository_manifests rm ON rm.repository_id = r.id"
            " JOIN manifests m ON m.digest = rm.digest" + where + " ORDER BY r.name, rm.digest",
            *args,
        )

    async def tags(
        self, namespace: str | None, repository_ids: Sequence[int] | None = None
    ) -> list[Row]:
        """Every tag (of `namespace`, of `repository_ids`, or anywhere), by repository id then
        name: the columns of `TAG_COLUMNS`."""
        if repository_ids is not None:
            return await self.backend.fetchall(
                "SELECT repository_id, digest, name, updated_at, pushed_by, channel, deprecation"  # noqa: S608
                f" FROM tags WHERE repository_id IN ({_marks(repository_ids)})"
                " ORDER BY repository_id, name",
                *repository_ids,
            )
        if namespace is None:
            return await self.backend.fetchall(
                "SELECT repository_id, digest, name, updated_at, pushed_by, channel, deprecation"
                " FROM tags ORDER BY repository_id, name"
            )
        where, args = _scope(namespace, "r.name")
        return await self.backend.fetchall(
            "SELECT t.repository_id, t.digest, t.name, t.updated_at, t.pushed_by, t.channel,"  # noqa: S608
            " t.deprecation FROM tags t JOIN repositories r ON r.id = t.repository_id"
            + where
            + " ORDER BY t.repository_id, t.name",
            *args,
        )

    async def children(self) -> list[Row]:
        """(index, child manifest) pairs, registry-wide."""
        return await self.backend.fetchall(
            "SELECT parent_digest, child_digest FROM manifest_references WHERE is_manifest = ?",
            True,
        )

    async def blob_references(self) -> list[Row]:
        """(manifest, blob) pairs, registry-wide: whether a blob is shared is a question about
        every manifest."""
        return await self.backend.fetchall(
            "SELECT parent_digest, child_digest FROM manifest_references WHERE is_manifest = ?",
            False,
        )

    async def blob_sizes(self) -> dict[str, int]:
        rows = await self.backend.fetchall("SELECT digest, size FROM blobs")
        return dict(cast("list[tuple[str, int]]", rows))

    # -- the same, for a page: what `digests` (the page's manifests) reference --------------

    async def repositories_from(
        self, first: str, namespace: str | None, limit: int, inclusive: bool
    ) -> list[Row]:
        """(id, name) of up to `limit` repositories holding a manifest, by name from `first`
        (itself included when `inclusive`), of `namespace` or anywhere."""
        where, args = _scope(namespace, "r.name")
        op = ">=" if inclusive else ">"
        clause = (where + " AND" if where else " WHERE") + f" r.name {op} ?"
        return await self.backend.fetchall(
            "SELECT r.id, r.name FROM repositories r"  # noqa: S608
            + clause
            + " AND EXISTS (SELECT 1 FROM repository_manifests rm WHERE rm.repository_id = r.id)"
            " ORDER BY r.name LIMIT ?",
            *args,
            first,
            limit,
        )

    async def children_of(self, parents: Sequence[str]) -> list[Row]:
        """(index, child manifest) pairs of these indexes."""
        return await self._by_digest(
            "SELECT parent_digest, child_digest FROM manifest_references"
            " WHERE is_manifest = ? AND parent_digest IN",
            (True,),
            parents,
        )

    async def blob_references_of(self, parents: Sequence[str]) -> list[Row]:
        """(manifest, blob) pairs of these manifests, a manifest's together."""
        rows = await self._by_digest(
            "SELECT parent_digest, child_digest FROM manifest_references"
            " WHERE is_manifest = ? AND parent_digest IN",
            (False,),
            parents,
        )
        rows.sort(key=lambda row: str(row[0]))
        return rows

    async def reference_counts(self, blobs: Sequence[str]) -> dict[str, int]:
        """How many manifests, registry-wide, reference each of these blobs."""
        rows = await self._by_digest(
            "SELECT child_digest, COUNT(*) FROM manifest_references"
            " WHERE is_manifest = ? AND child_digest IN",
            (False,),
            blobs,
            " GROUP BY child_digest",
        )
        return {str(r[0]): int(r[1]) for r in rows}

    async def blob_sizes_of(self, blobs: Sequence[str]) -> dict[str, int]:
        rows = await self._by_digest("SELECT digest, size FROM blobs WHERE digest IN", (), blobs)
        return {str(r[0]): int(r[1]) for r in rows}

    async def summaries_of(self, digests: Sequence[str]) -> dict[str, Row]:
        rows = await self._by_digest(
            "SELECT digest, status, critical, high, medium, low, unknown, secrets, malware"
            " FROM scan_reports WHERE digest IN",
            (),
            digests,
        )
        return {r[0]: r for r in rows}

    async def _by_digest(
        self, sql: str, args: tuple[Any, ...], digests: Sequence[str], tail: str = ""
    ) -> list[Row]:
        """`sql` + " (?, ...)" + `tail` over `digests`, 500 at a time."""
        found: list[Row] = []
        unique = list(dict.fromkeys(digests))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            found += await self.backend.fetchall(f"{sql} ({_marks(part)}){tail}", *args, *part)
        return found

    async def payloads(self, digests: Sequence[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(digests))
        for start in range(0, len(unique), 500):
            part = unique[start : start + 500]
            rows = await self.backend.fetchall(
                "SELECT digest, payload FROM manifests WHERE digest IN"  # noqa: S608
                f" ({', '.join('?' for _ in part)})",
                *part,
            )
            found.update({str(r[0]): bytes(r[1]) for r in rows})
        return found

    async def summaries(self) -> dict[str, Row]:
        """Every scan report's summary by digest: the columns of `SUMMARY_COLUMNS`."""
        rows = await self.backend.fetchall(
            "SELECT digest, status, critical, high, medium, low, unknown, secrets, malware"
            " FROM scan_reports"
        )
        return {r[0]: r for r in rows}
