"""The SQL of `seawall fsck` (services/fsck.py): what the database says is stored, the checks of
the database against itself, and the repairs.

The checks are reads, each one statement (a consistent snapshot on both databases). A repair
never trusts what a check read a while ago: each is a transaction that looks again, under the
locks a push takes, whether what it removes is still what fsck found, and leaves it otherwise.
Files are removed or moved inside those transactions (`Call`), as the garbage collector does
(db/gc.py), so an upload of the same bytes, which records the blob's row before it puts the file
in place (store.py `commit_upload`), either waits for the repair or is seen by it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from seawall.db.store import Call, SqlBackend, Step, Then, Trailer, Tx, commit, review_step
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.digests import Digest

PAGE = 10_000  # blob rows read per query
BATCH = 500  # digests per IN (...) list, and per repair transaction
PLACEHOLDER_SIZE = -1  # the size of the row a removal holds a digest with; never committed

T = TypeVar("T")


def _sql(*parts: str) -> str:
    """A fixed statement put together from the fixed fragments below (no value goes in)."""
    return "".join(parts)


@dataclass(frozen=True, slots=True)
class MissingChild:
    repository: str
    manifest: str
    child: str
    is_manifest: bool


@dataclass(frozen=True, slots=True)
class TagRow:
    repository_id: int
    repository: str
    tag: str
    digest: str


@dataclass(frozen=True, slots=True)
class LinkRow:
    repository_id: int
    repository: str
    digest: str


@dataclass(frozen=True, slots=True)
class ScanJobRow:
    id: int
    repository: str
    digest: str


_MISSING_CHILDREN = (
    "SELECT r.name, rm.digest, mr.child_digest, mr.is_manifest FROM repository_manifests rm"
    " JOIN repositories r ON r.id = rm.repository_id"
    " JOIN manifest_references mr ON mr.parent_digest = rm.digest"
    " WHERE (mr.is_manifest = ? AND NOT EXISTS (SELECT 1 FROM repository_blobs rb"
    " WHERE rb.repository_id = rm.repository_id AND rb.digest = mr.child_digest))"
    " OR (mr.is_manifest = ? AND NOT EXISTS (SELECT 1 FROM repository_manifests c"
    " WHERE c.repository_id = rm.repository_id AND c.digest = mr.child_digest))"
    " ORDER BY r.name, rm.digest, mr.child_digest"
)
_NOT_LINKED_TAG = (
    " NOT EXISTS (SELECT 1 FROM repository_manifests rm"
    " WHERE rm.repository_id = tags.repository_id AND rm.digest = tags.digest)"
)
# Scan rows of a manifest no longer linked (in the job's or the verdict's repository, or for a
# report anywhere), unless a deleted tag that may still be restored points at it (the garbage
# collector keeps those rows until the trash expires), or the garbage collector has the
# manifest's review queued (it removes them with it, after the grace period).
_ORPHAN_JOB = (
    " NOT EXISTS (SELECT 1 FROM repositories r JOIN repository_manifests rm"
    " ON rm.repository_id = r.id WHERE r.name = scan_jobs.repository"
    " AND rm.digest = scan_jobs.digest)"
    " AND NOT EXISTS (SELECT 1 FROM repositories r JOIN tag_trash t ON t.repository_id = r.id"
    " WHERE r.name = scan_jobs.repository AND t.digest = scan_jobs.digest AND t.expires_at > ?)"
    " AND NOT EXISTS (SELECT 1 FROM repositories r JOIN gc_reviews g ON g.repository_id = r.id"
    " WHERE r.name = scan_jobs.repository AND g.kind = 'manifest-link'"
    " AND g.digest = scan_jobs.digest)"
    " AND NOT EXISTS (SELECT 1 FROM gc_reviews g WHERE g.kind = 'manifest'"
    " AND g.repository_id = 0 AND g.digest = scan_jobs.digest)"
)
_ORPHAN_REPORT = (
    " NOT EXISTS (SELECT 1 FROM repository_manifests rm WHERE rm.digest = scan_reports.digest)"
    " AND NOT EXISTS (SELECT 1 FROM tag_trash t WHERE t.digest = scan_reports.digest"
    " AND t.expires_at > ?)"
    " AND NOT EXISTS (SELECT 1 FROM gc_reviews g WHERE g.kind IN ('manifest', 'manifest-link')"
    " AND g.digest = scan_reports.digest)"
)
_ORPHAN_VERDICT = (
    " NOT EXISTS (SELECT 1 FROM repository_manifests rm"
    " WHERE rm.repository_id = pull_verdicts.repository_id AND rm.digest = pull_verdicts.digest)"
    " AND NOT EXISTS (SELECT 1 FROM tag_trash t WHERE t.repository_id ="
    " pull_verdicts.repository_id AND t.digest = pull_verdicts.digest AND t.expires_at > ?)"
    " AND NOT EXISTS (SELECT 1 FROM gc_reviews g WHERE g.kind = 'manifest-link'"
    " AND g.repository_id = pull_verdicts.repository_id AND g.digest = pull_verdicts.digest)"
    " AND NOT EXISTS (SELECT 1 FROM gc_reviews g WHERE g.kind = 'manifest'"
    " AND g.repository_id = 0 AND g.digest = pull_verdicts.digest)"
)
_ORPHAN_ANALYSIS = " NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = layer_analyses.digest)"
# A blob link no manifest linked in that repository (or trashed there) references: what the
# garbage collector's `blob-link` review looks for; unless that review is queued already.
_UNREFERENCED_LINKS = (
    "SELECT rb.repository_id, r.name, rb.digest FROM repository_blobs rb"
    " JOIN repositories r ON r.id = rb.repository_id WHERE rb.created_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM manifest_references mr JOIN repository_manifests rm"
    " ON rm.digest = mr.parent_digest AND rm.repository_id = rb.repository_id"
    " WHERE mr.child_digest = rb.digest)"
    " AND NOT EXISTS (SELECT 1 FROM manifest_references mr JOIN tag_trash t"
    " ON t.digest = mr.parent_digest WHERE t.repository_id = rb.repository_id"
    " AND t.expires_at > ? AND mr.child_digest = rb.digest)"
    " AND NOT EXISTS (SELECT 1 FROM gc_reviews g WHERE g.kind = 'blob-link'"
    " AND g.repository_id = rb.repository_id AND g.digest = rb.digest)"
    " ORDER BY r.name, rb.digest"
)
_UNLINKED_BLOBS = (
    "SELECT b.digest, b.size FROM blobs b WHERE b.created_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM repository_blobs rb WHERE rb.digest = b.digest)"
    " AND NOT EXISTS (SELECT 1 FROM gc_reviews g WHERE g.kind = 'blob' AND g.repository_id = 0"
    " AND g.digest = b.digest)"
    " ORDER BY b.digest"
)
_UNLINKED_MANIFESTS = (
    "SELECT m.digest, m.size FROM manifests m WHERE m.created_at < ?"
    " AND NOT EXISTS (SELECT 1 FROM repository_manifests rm WHERE rm.digest = m.digest)"
    " AND NOT EXISTS (SELECT 1 FROM tag_trash t WHERE t.digest = m.digest AND t.expires_at > ?)"
    " AND NOT EXISTS (SELECT 1 FROM gc_reviews g WHERE g.kind IN ('manifest', 'manifest-link')"
    " AND g.digest = m.digest)"
    " ORDER BY m.digest"
)


class FsckStore:
    def __init__(self, backend: SqlBackend, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.backend = backend
        self.clock = clock
        self._lock = " FOR UPDATE" if backend.dialect == "postgresql" else ""

    # -- what the database says is stored -------------------------------------------------

    async def blob_sizes(self) -> dict[str, int]:
        """Every blob row, digest → size, read a page at a time."""
        sizes: dict[str, int] = {}
        last = ""
        while True:
            rows = await self.backend.fetchall(
                "SELECT digest, size FROM blobs WHERE digest > ? ORDER BY digest LIMIT ?",
                last,
                PAGE,
            )
            sizes.update((str(row[0]), int(row[1])) for row in rows)
            if len(rows) < PAGE:
                return sizes
            last = str(rows[-1][0])

    async def blobs_known(self, digests: Sequence[str]) -> dict[str, int]:
        """Those of `digests` that have a blob row now, with their size."""
        known: dict[str, int] = {}
        for batch in _batches(digests):
            rows = await self.backend.fetchall(
                f"SELECT digest, size FROM blobs WHERE digest IN ({_marks(batch)})",  # noqa: S608
                *batch,
            )
            known.update((str(row[0]), int(row[1])) for row in rows)
        return known

    async def referencing(self, digests: Sequence[str]) -> dict[str, list[str]]:
        """For each of `digests` that a manifest references as a blob: those manifests, as
        `repository@digest` for each repository linking one (`@digest` when none does)."""
        found: dict[str, list[str]] = {}
        for batch in _batches(digests):
            rows = await self.backend.fetchall(
                "SELECT mr.child_digest, r.name, mr.parent_digest FROM manifest_references mr"  # noqa: S608
                " LEFT JOIN repository_manifests rm ON rm.digest = mr.parent_digest"
                " LEFT JOIN repositories r ON r.id = rm.repository_id"
                f" WHERE mr.is_manifest = ? AND mr.child_digest IN ({_marks(batch)})"
                " ORDER BY mr.child_digest, r.name, mr.parent_digest",
                False,
                *batch,
            )
            for child, repository, parent in rows:
                found.setdefault(str(child), []).append(f"{repository or ''}@{parent}")
        return found

    async def upload_sessions(self) -> dict[str, tuple[str, float]]:
        """Every upload session: id → (repository, lease_until)."""
        rows = await self.backend.fetchall(
            "SELECT u.id, r.name, u.lease_until FROM uploads u"
            " JOIN repositories r ON r.id = u.repository_id"
        )
        return {str(row[0]): (str(row[1]), float(row[2])) for row in rows}

    async def counts(self) -> dict[str, int]:
        """How many repositories, manifest links, manifests, tags and scan reports there are."""
        names = ("repositories", "manifest_links", "manifests", "tags", "scan_reports")
        row = await self.backend.fetchone(
            "SELECT (SELECT COUNT(*) FROM repositories), (SELECT COUNT(*) FROM"
            " repository_manifests), (SELECT COUNT(*) FROM manifests), (SELECT COUNT(*) FROM"
            " tags), (SELECT COUNT(*) FROM scan_reports)"
        )
        assert row is not None
        return {name: int(value) for name, value in zip(names, row, strict=True)}

    # -- the database against itself ------------------------------------------------------

    async def missing_children(self) -> list[MissingChild]:
        """Every (repository, manifest linked there, what it references that is not linked
        there): a blob, or a child manifest of an index."""
        rows = await self.backend.fetchall(_MISSING_CHILDREN, False, True)
        return [MissingChild(str(r[0]), str(r[1]), str(r[2]), bool(r[3])) for r in rows]

    async def dangling_tags(self) -> list[TagRow]:
        """Tags pointing at a manifest their repository does not link."""
        rows = await self.backend.fetchall(
            _sql(
                "SELECT tags.repository_id, r.name, tags.name, tags.digest FROM tags"
                " JOIN repositories r ON r.id = tags.repository_id WHERE",
                _NOT_LINKED_TAG,
                " ORDER BY r.name, tags.name",
            )
        )
        return [TagRow(int(r[0]), str(r[1]), str(r[2]), str(r[3])) for r in rows]

    async def orphan_scan_jobs(self, now: float) -> list[ScanJobRow]:
        rows = await self.backend.fetchall(
            _sql(
                "SELECT id, repository, digest FROM scan_jobs WHERE",
                _ORPHAN_JOB,
                " ORDER BY repository, digest",
            ),
            now,
        )
        return [ScanJobRow(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def orphan_scan_reports(self, now: float) -> list[str]:
        rows = await self.backend.fetchall(
            _sql("SELECT digest FROM scan_reports WHERE", _ORPHAN_REPORT, " ORDER BY digest"),
            now,
        )
        return [str(r[0]) for r in rows]

    async def orphan_verdicts(self, now: float) -> list[LinkRow]:
        rows = await self.backend.fetchall(
            _sql(
                "SELECT pull_verdicts.repository_id, r.name, pull_verdicts.digest"
                " FROM pull_verdicts JOIN repositories r ON r.id = pull_verdicts.repository_id"
                " WHERE",
                _ORPHAN_VERDICT,
                " ORDER BY r.name, pull_verdicts.digest",
            ),
            now,
        )
        return [LinkRow(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    async def orphan_analyses(self) -> list[str]:
        rows = await self.backend.fetchall(
            _sql("SELECT digest FROM layer_analyses WHERE", _ORPHAN_ANALYSIS, " ORDER BY digest")
        )
        return [str(r[0]) for r in rows]

    async def unlinked_blobs(self, before: float) -> list[tuple[str, int]]:
        """Blob rows older than `before` that no repository links, and whose review the
        garbage collector does not have queued: (digest, size)."""
        rows = await self.backend.fetchall(_UNLINKED_BLOBS, before)
        return [(str(r[0]), int(r[1])) for r in rows]

    async def unlinked_manifests(self, before: float, now: float) -> list[tuple[str, int]]:
        """Manifests stored before `before` that no repository links, nor a restorable
        deleted tag points at, and whose review is not queued: (digest, size)."""
        rows = await self.backend.fetchall(_UNLINKED_MANIFESTS, before, now)
        return [(str(r[0]), int(r[1])) for r in rows]

    async def unreferenced_links(self, before: float, now: float) -> list[LinkRow]:
        """Blob links made before `before` that no manifest linked (or trashed) in their
        repository references, and whose review is not queued."""
        rows = await self.backend.fetchall(_UNREFERENCED_LINKS, before, now)
        return [LinkRow(int(r[0]), str(r[1]), str(r[2])) for r in rows]

    # -- repairs --------------------------------------------------------------------------

    async def remove_orphan_files(
        self, digests: Sequence[str], remove: Callable[[Digest], bool]
    ) -> list[str]:
        """Remove the files of blobs no row names; the digests whose file was removed. Each
        digest is held for its removal by a row inserted and deleted again in the transaction:
        an upload of the same bytes inserts that row first, so it either committed before (then
        the digest has a row and its file stays) or waits, then puts its own file in place."""
        removed: list[str] = []

        def work(batch: list[str], tx: Tx) -> None:
            now = self.clock.now()
            for digest in batch:
                held = tx.run(
                    "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (digest) DO NOTHING",
                    digest,
                    PLACEHOLDER_SIZE,
                    now,
                )
                if not held:
                    continue
                if remove(Digest.parse(digest)):
                    removed.append(digest)
                tx.run("DELETE FROM blobs WHERE digest = ? AND size = ?", digest, PLACEHOLDER_SIZE)

        for batch in _batches(digests):
            await self.backend.transaction([Call(functools.partial(work, batch))])
        return removed

    async def quarantine(self, digest: str, move: Callable[[Digest], str | None]) -> str | None:
        """Move a blob's file out of service under its row's lock (its rows stay); where it
        went, or None when it was gone."""

        def work(tx: Tx) -> str | None:
            tx.one(_sql("SELECT size FROM blobs WHERE digest = ?", self._lock), digest)
            return move(Digest.parse(digest))

        (moved,) = await self.backend.transaction([Call(work)])
        return moved  # type: ignore[no-any-return]

    async def drop_missing_blob(self, digest: str, present: Callable[[Digest], bool]) -> int | None:
        """Delete the row of a blob whose file is gone, with its repository links and layer
        analysis, if no manifest references it: checked again under the row's lock (a push
        referencing the blob share-locks it, an upload of it waits and records it anew). The
        links deleted, or None when it was kept."""

        def work(tx: Tx) -> int | None:
            if tx.one(_sql("SELECT size FROM blobs WHERE digest = ?", self._lock), digest) is None:
                return None
            referenced = tx.one(
                "SELECT 1 FROM manifest_references WHERE child_digest = ? AND is_manifest = ?"
                " LIMIT 1",
                digest,
                False,
            )
            if referenced is not None or present(Digest.parse(digest)):
                return None
            links = tx.run("DELETE FROM repository_blobs WHERE digest = ?", digest)
            tx.run("DELETE FROM layer_analyses WHERE digest = ?", digest)
            tx.run("DELETE FROM blobs WHERE digest = ?", digest)
            return links

        (dropped,) = await self.backend.transaction([Call(work)])
        return dropped  # type: ignore[no-any-return]

    async def delete_upload_sessions(self, upload_ids: Sequence[str], now: float) -> set[str]:
        """Delete the sessions (whose file is gone) that no request holds; those deleted."""
        deleted: set[str] = set()
        for batch in _batches(upload_ids):
            results = await self.backend.transaction(
                [
                    Step(
                        "DELETE FROM uploads WHERE id = ? AND lease_until < ? RETURNING id",
                        (upload_id, now),
                        "all",
                    )
                    for upload_id in batch
                ]
            )
            deleted.update(str(row[0]) for rows in results for row in rows)
        return deleted

    async def delete_dangling_tags(
        self, tags: Sequence[TagRow], audit: Callable[[list[TagRow]], Trailer] | None
    ) -> list[TagRow]:
        """Delete those of `tags` that still point at a manifest their repository does not
        link, with `audit(deleted)`'s rows in the same transaction; the tags deleted."""
        deleted: list[TagRow] = []
        for batch in _batches(tags):
            done: list[TagRow] = []

            def seen(
                results: list[Any], batch: list[TagRow] = batch, done: list[TagRow] = done
            ) -> list[Step]:
                done.extend(tag for tag, rows in zip(batch, results, strict=False) if rows)
                return []

            steps = [
                Step(
                    _sql(
                        "DELETE FROM tags WHERE repository_id = ? AND name = ? AND digest = ? AND",
                        _NOT_LINKED_TAG,
                        " RETURNING name",
                    ),
                    (tag.repository_id, tag.tag, tag.digest),
                    "all",
                )
                for tag in batch
            ]
            trail = None if audit is None else audit(done)
            await commit(self.backend, [*steps, Then(seen)], trail)
            deleted.extend(done)
        return deleted

    async def delete_orphan_scan_jobs(self, ids: Sequence[int], now: float) -> list[bool]:
        """Delete each scan job whose manifest is still not linked; which were."""
        return await self._delete_each(
            _sql("DELETE FROM scan_jobs WHERE id = ? AND", _ORPHAN_JOB), [(i, now) for i in ids]
        )

    async def delete_orphan_scan_reports(self, digests: Sequence[str], now: float) -> list[bool]:
        return await self._delete_each(
            _sql("DELETE FROM scan_reports WHERE digest = ? AND", _ORPHAN_REPORT),
            [(d, now) for d in digests],
        )

    async def delete_orphan_verdicts(self, verdicts: Sequence[LinkRow], now: float) -> list[bool]:
        return await self._delete_each(
            _sql(
                "DELETE FROM pull_verdicts WHERE repository_id = ? AND digest = ? AND",
                _ORPHAN_VERDICT,
            ),
            [(v.repository_id, v.digest, now) for v in verdicts],
        )

    async def delete_orphan_analyses(self, digests: Sequence[str]) -> list[bool]:
        return await self._delete_each(
            _sql("DELETE FROM layer_analyses WHERE digest = ? AND", _ORPHAN_ANALYSIS),
            [(d,) for d in digests],
        )

    async def queue_reviews(self, reviews: Sequence[tuple[str, int, str]], since: float) -> None:
        """Queue a garbage-collection review (kind, repository id, digest) of each; a review
        already queued keeps its earlier time."""
        for batch in _batches(reviews):
            await self.backend.transaction(
                [review_step(kind, repo, digest, since, "fsck") for kind, repo, digest in batch]
            )

    async def _delete_each(self, sql: str, records: Sequence[tuple[Any, ...]]) -> list[bool]:
        """Run a conditional delete once per record, a batch per transaction; whether each
        deleted a row."""
        deleted: list[bool] = []
        for batch in _batches(records):
            results = await self.backend.transaction([Step(sql, record) for record in batch])
            deleted.extend(bool(count) for count in results)
        return deleted


def _batches(items: Sequence[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), BATCH):
        yield list(items[start : start + BATCH])


def _marks(batch: Sequence[Any]) -> str:
    return ", ".join("?" for _ in batch)
