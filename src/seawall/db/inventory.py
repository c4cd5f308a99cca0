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
from seawall.domain.signatures import COSIGN_ARTIFACT_TYPE, NOTATION_ARTIFACT_TYPE

SIGNATURE_TYPES = (COSIGN_ARTIFACT_TYPE, NOTATION_ARTIFACT_TYPE)

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


# The select of `linked` and `linked_after` (LINKED_COLUMNS), before its WHERE.
_LINKED = (
    "SELECT r.id, r.name, r.owner, r.purpose, rm.digest, rm.created_at, rm.pushed_by,"
    " m.media_type, m.artifact_type, m.subject_digest FROM repositories r"
    " JOIN repository_manifests rm ON rm.repository_id = r.id"
    " JOIN manifests m ON m.digest = rm.digest"
)
_SUMMARIES = f"SELECT {', '.join(SUMMARY_COLUMNS)} FROM scan_reports"  # noqa: S608


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

    async def linked(self, namespace: str | None) -> list[Row]:
        """Every manifest linked in a repository (of `namespace`, or anywhere), by repository
        name then digest: the columns of `LINKED_COLUMNS`."""
        where, args = _scope(namespace, "r.name")
        return await self.backend.fetchall(
            _LINKED + where + " ORDER BY r.name, rm.digest",
            *args,
        )

    async def tags(self, namespace: str | None) -> list[Row]:
        """Every tag (of `namespace`, or anywhere), by repository id then name: the columns of
        `TAG_COLUMNS`."""
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

    # -- the same, for a page: a window of linked manifests and what they reference ---------

    async def linked_after(
        self, after: tuple[str, str] | None, namespace: str | None, limit: int
    ) -> list[Row]:
        """Up to `limit` linked manifests after (repository, digest) `after`, in that order,
        of `namespace` or anywhere: the columns of `LINKED_COLUMNS` (a page's window)."""
        where, args = _scope(namespace, "r.name")
        if after is not None:
            clause = "(r.name > ? OR (r.name = ? AND rm.digest > ?))"
            where = (where + " AND " if where else " WHERE ") + clause
            args = (*args, after[0], after[0], after[1])
        return await self.backend.fetchall(
            _LINKED + where + " ORDER BY r.name, rm.digest LIMIT ?",
            *args,
            limit,
        )

    async def tags_of(
        self, by_digest: Sequence[tuple[int, str]], by_name: Sequence[tuple[int, str]]
    ) -> list[Row]:
        """The tags that name one of the (repository id, digest) pairs `by_digest`, and those
        that are one of the (repository id, tag) pairs `by_name` (cosign's tags of them), by
        repository id then name: `TAG_COLUMNS`. Joined on a table of the pairs, so that
        PostgreSQL's plan for the statement, prepared once, walks the index whatever the
        repository's size (`repository_id IN (...) AND digest IN (...)` fell back, after a few
        runs, to a plan that read every tag of a 50,000-tag repository)."""
        found: dict[tuple[int, str], Row] = {}
        for column, size, pairs in (("digest", 140, by_digest), ("name", 128, by_name)):
            unique = list(dict.fromkeys(pairs))
            for start in range(0, len(unique), 500):
                part = unique[start : start + 500]
                rows = ", ".join(f"(CAST(? AS INTEGER), CAST(? AS VARCHAR({size})))" for _ in part)
                sql = (
                    f"WITH k(repository_id, v) AS (VALUES {rows})"  # noqa: S608
                    " SELECT t.repository_id, t.digest, t.name, t.updated_at, t.pushed_by,"
                    " t.channel, t.deprecation FROM k JOIN tags t"
                    f" ON t.repository_id = k.repository_id AND t.{column} = k.v"
                )
                for row in await self.backend.fetchall(sql, *(v for pair in part for v in pair)):
                    found[int(row[0]), str(row[2])] = row
        return sorted(found.values(), key=lambda row: (int(row[0]), str(row[2])))

    async def parents_of(self, children: Sequence[str]) -> list[Row]:
        """(index, child manifest) pairs of the indexes that hold these manifests."""
        return await self._by_digest(
            "SELECT parent_digest, child_digest FROM manifest_references"
            " WHERE is_manifest = ? AND child_digest IN",
            (True,),
            children,
        )

    async def linked_among(
        self, repository_ids: Sequence[int], digests: Sequence[str]
    ) -> set[tuple[int, str]]:
        """Which of `digests` these repositories link: (repository id, digest)."""
        if not repository_ids:
            return set()
        rows = await self._by_digest(
            "SELECT repository_id, digest FROM repository_manifests"  # noqa: S608
            f" WHERE repository_id IN ({_marks(repository_ids)}) AND digest IN",
            tuple(repository_ids),
            digests,
        )
        return {(int(r[0]), str(r[1])) for r in rows}

    async def signature_referrers(
        self, repository_ids: Sequence[int], subjects: Sequence[str]
    ) -> list[Row]:
        """(repository id, subject) of the signatures (cosign's or notation's referrers)
        linked in these repositories whose subject is one of `subjects`."""
        if not repository_ids:
            return []
        return await self._by_digest(
            "SELECT rm.repository_id, m.subject_digest FROM manifests m"  # noqa: S608
            " JOIN repository_manifests rm ON rm.digest = m.digest"
            f" WHERE rm.repository_id IN ({_marks(repository_ids)})"
            " AND m.artifact_type IN (?, ?) AND m.subject_digest IN",
            (*repository_ids, *SIGNATURE_TYPES),
            subjects,
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
            _SUMMARIES + " WHERE digest IN",
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
        rows = await self._by_digest(
            "SELECT digest, payload FROM manifests WHERE digest IN", (), digests
        )
        return {str(r[0]): bytes(r[1]) for r in rows}

    async def summaries(self) -> dict[str, Row]:
        """Every scan report's summary by digest: the columns of `SUMMARY_COLUMNS`."""
        rows = await self.backend.fetchall(_SUMMARIES)
        return {r[0]: r for r in rows}
