"""Read models for the console's repository page: a page of tags (keyset on the tags primary
key, (repository_id, name)) with what each tag's manifest weighs and what its scan found, and a
page of the repository's untagged manifests. Every query is bounded by its page's rows, so a
repository of 50,000 tags costs what one of 50 does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from seawall.db.store import SqlBackend
from seawall.domain.pulls import BY_DIGEST

SEVERITY_COLUMNS = ("critical", "high", "medium", "low", "unknown", "secrets", "malware")


@dataclass(frozen=True, slots=True)
class TagRow:
    name: str
    digest: str
    pushed_at: float
    pushed_by: str | None
    channel: str | None
    deprecation: str | None  # JSON, as the tags table keeps it
    media_type: str
    artifact_type: str | None


@dataclass(frozen=True, slots=True)
class UntaggedRow:
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    subject: str | None  # the manifest it refers to, for a referrer
    linked_at: float


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


class ConsoleRepositoryStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend

    async def repository_id(self, name: str) -> int | None:
        row = await self.backend.fetchone("SELECT id FROM repositories WHERE name = ?", name)
        return None if row is None else int(row[0])

    async def tags(self, repository_id: int, after: str, limit: int) -> list[TagRow]:
        """Tags named after `after`, by name: a range of the tags primary key."""
        rows = await self.backend.fetchall(
            "SELECT t.name, t.digest, t.updated_at, t.pushed_by, t.channel, t.deprecation,"
            " m.media_type, m.artifact_type FROM tags t JOIN manifests m ON m.digest = t.digest"
            " WHERE t.repository_id = ? AND t.name > ? ORDER BY t.name LIMIT ?",
            repository_id,
            after,
            limit,
        )
        return [
            TagRow(str(r[0]), str(r[1]), float(r[2]), r[3], r[4], r[5], str(r[6]), r[7])
            for r in rows
        ]

    async def untagged(self, repository_id: int, after: str, limit: int) -> list[UntaggedRow]:
        """Manifests linked to the repository that no tag there names, by digest after
        `after`. The anti-join walks the repository's links in digest order (its primary
        key) and asks the tags' digest index for each, stopping at `limit` found."""
        rows = await self.backend.fetchall(
            "SELECT rm.digest, m.media_type, m.size, m.artifact_type, m.subject_digest,"
            " rm.created_at FROM repository_manifests rm JOIN manifests m ON m.digest = rm.digest"
            " WHERE rm.repository_id = ? AND rm.digest > ? AND NOT EXISTS (SELECT 1 FROM tags t"
            " WHERE t.repository_id = rm.repository_id AND t.digest = rm.digest)"
            " ORDER BY rm.digest LIMIT ?",
            repository_id,
            after,
            limit,
        )
        return [UntaggedRow(str(r[0]), str(r[1]), int(r[2]), r[3], r[4], float(r[5])) for r in rows]

    async def sizes(self, digests: Sequence[str]) -> dict[str, int]:
        """What each manifest's blobs weigh: an image's config and layers; for an index, the
        sum over its platform images (a layer two platforms share counts twice)."""
        if not digests:
            return {}
        marks = _marks(digests)
        found: dict[str, int] = {}
        for row in await self.backend.fetchall(
            "SELECT mr.parent_digest, SUM(b.size) FROM manifest_references mr"  # noqa: S608
            " JOIN blobs b ON b.digest = mr.child_digest"
            f" WHERE mr.parent_digest IN ({marks}) AND mr.is_manifest = ?"
            " GROUP BY mr.parent_digest",
            *digests,
            False,
        ):
            found[str(row[0])] = int(row[1] or 0)
        for row in await self.backend.fetchall(
            "SELECT ix.parent_digest, SUM(b.size) FROM manifest_references ix"  # noqa: S608
            " JOIN manifest_references mr ON mr.parent_digest = ix.child_digest"
            " AND mr.is_manifest = ? JOIN blobs b ON b.digest = mr.child_digest"
            f" WHERE ix.parent_digest IN ({marks}) AND ix.is_manifest = ?"
            " GROUP BY ix.parent_digest",
            False,
            *digests,
            True,
        ):
            found[str(row[0])] = found.get(str(row[0]), 0) + int(row[1] or 0)
        return found

    async def scans(self, digests: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Per manifest: its scan's status and counts; for an index, those of its platform
        images added up (status `failed` if one failed, `pending` if one has no report)."""
        if not digests:
            return {}
        marks = _marks(digests)
        columns = ", ".join(f"s.{c}" for c in SEVERITY_COLUMNS)
        found: dict[str, dict[str, Any]] = {}
        for row in await self.backend.fetchall(
            f"SELECT s.digest, s.status, {columns} FROM scan_reports s"  # noqa: S608
            f" WHERE s.digest IN ({marks})",
            *digests,
        ):
            found[str(row[0])] = _scan(str(row[1]), row[2:])
        platforms: dict[str, dict[str, Any]] = {}
        for row in await self.backend.fetchall(
            f"SELECT ix.parent_digest, s.status, {columns} FROM manifest_references ix"  # noqa: S608
            " LEFT JOIN scan_reports s ON s.digest = ix.child_digest"
            f" WHERE ix.parent_digest IN ({marks}) AND ix.is_manifest = ?",
            *digests,
            True,
        ):
            parent = str(row[0])
            one = _scan(str(row[1]) if row[1] is not None else "pending", row[2:])
            total = platforms.setdefault(
                parent, {"status": "complete", **dict.fromkeys(SEVERITY_COLUMNS, 0)}
            )
            for key in SEVERITY_COLUMNS:
                total[key] += one[key]
            if one["status"] == "failed" or total["status"] == "failed":
                total["status"] = "failed"
            elif one["status"] != "complete":
                total["status"] = one["status"]
        for parent, total in platforms.items():
            found.setdefault(parent, total)
        return found

    async def last_pulls(
        self, repository_id: int, digests: Sequence[str]
    ) -> dict[tuple[str, str], float]:
        """The last recorded pull per (tag, digest) of the page's digests; a pull by digest
        has the tag `BY_DIGEST` (""). Reads the pull counts primary key's (repository_id,
        digest) prefix only."""
        if not digests:
            return {}
        rows = await self.backend.fetchall(
            "SELECT tag, digest, MAX(last_at) FROM pull_counts"  # noqa: S608
            f" WHERE repository_id = ? AND digest IN ({_marks(digests)}) GROUP BY tag, digest",
            repository_id,
            *digests,
        )
        return {(str(r[0]), str(r[1])): float(r[2]) for r in rows}


def _scan(status: str, counts: Sequence[Any]) -> dict[str, Any]:
    return {
        "status": status,
        **{key: int(value or 0) for key, value in zip(SEVERITY_COLUMNS, counts, strict=True)},
    }


def last_pull(pulls: dict[tuple[str, str], float], tag: str, digest: str) -> float | None:
    """A tag's last pull while it named `digest`: by the tag, or by that digest."""
    found = [pulls[key] for key in ((tag, digest), (BY_DIGEST, digest)) if key in pulls]
    return max(found) if found else None
