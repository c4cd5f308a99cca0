"""The garbage collector's SQL: reviewing what the queue (`gc_reviews`) says may have lost its
last reference, a batch per transaction.

Every review locks the row it may delete before it looks for references (on PostgreSQL; SQLite
runs one writer at a time), so it never races the transaction that adds a reference: a push
referencing a blob share-locks the blob's link (store.py `_linked_sizes`), a link's insert
key-share-locks the blob row, an upload locks the blob row before it puts the file in place.
Whichever comes second sees what the first committed: the push finds the link gone and is
refused (nothing acknowledged is lost), or the review finds the reference and keeps the row.

The kinds, reviewed in this order in a pass (a review queues the next level's with its own
`since`, so one pass past the grace period goes all the way down):

    manifest-link  (repository, manifest)  the link went: queue its blobs, platform manifests,
                   referrers and cosign tags there, drop its scan job and verdict, queue the
                   manifest; or (queued as `child`/`referrer`) it is a platform of an index
                   that went, or a referrer whose subject went: unlink it, then the same
    blob-link      (repository, blob)      no manifest linked there (or trashed there)
                   references it, and it was not linked again within the grace: unlink it
    manifest       (0, manifest)           no repository links or trashes it: delete its rows
    blob           (0, blob)               no repository links it: delete its row and its file
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from seawall.db.store import Call, Contended, SqlBackend, Step, Tx, reviews_step
from seawall.domain.digests import Digest
from seawall.domain.signatures import cosign_tags

KINDS = ("manifest-link", "blob-link", "manifest", "blob")
# On PostgreSQL a review never makes a push wait long, nor deadlocks with one: it gives up a
# lock it cannot have within this (the push goes on, the batch rolls back and comes again).
LOCK_TIMEOUT = "'100ms'"
DRY_RUN_BATCH = 200
_ANALYZE_QUEUE = "ANALYZE gc_reviews"
# Reviews queued for an index's platforms and a subject's referrers may unlink them.
CASCADED = ("child", "referrer")


@dataclass(slots=True)
class Tally:
    """What reviews did, summed over a pass."""

    reviewed: int = 0
    contended: int = 0  # batches that gave way to pushes (rolled back, tried again)
    kept: int = 0
    deferred: int = 0  # linked again within the grace, or held by the trash: looked at later
    manifest_links: int = 0  # manifest links removed (platforms of a deleted index, referrers)
    blob_links: int = 0
    manifests: int = 0  # manifests removed from the registry
    manifest_bytes: int = 0
    blobs: int = 0  # blobs removed, with their files
    blob_bytes: int = 0
    signature_tags: int = 0  # cosign tags of a deleted image
    scan_rows: int = 0  # scan jobs, reports, layer analyses, verdicts
    trash_expired: int = 0
    orphan_files: int = 0  # blob files no row named, removed by a storage sweep
    missing_files: list[str] = field(default_factory=list)  # a blob row whose file was gone

    def add(self, other: Tally) -> None:
        for name in self.__dataclass_fields__:
            mine = getattr(self, name)
            if isinstance(mine, list):
                mine.extend(getattr(other, name))
            else:
                setattr(self, name, mine + getattr(other, name))

    @property
    def bytes(self) -> int:
        return self.manifest_bytes + self.blob_bytes

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tally:
        """The tally `as_dict` gave (a pass run in another process reports it so)."""
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["bytes"] = self.bytes
        return data


class _DryRun(Exception):
    """Rolls back a dry run's transaction once it has counted what a pass would do."""

    def __init__(self, tally: Tally, complete: bool) -> None:
        self.tally = tally
        self.complete = complete


# Remove a blob's file (True: it existed); blocking, inside the transaction.
Remove = Callable[[Digest], bool]


class _Review:
    """Reviews in one transaction."""

    def __init__(self, tx: Tx, now: float, cutoff: float, remove: Remove | None) -> None:
        self.tx = tx
        self.now = now
        self.cutoff = cutoff
        self.remove = remove  # None: a dry run, which removes no file
        self.lock = " FOR UPDATE" if tx.dialect == "postgresql" else ""
        self.tally = Tally()

    def batch(self, kind: str, limit: int) -> int:
        """Review up to `limit` due reviews of `kind`; how many there were."""
        skip = ""
        if self.tx.dialect == "postgresql":
            skip = " FOR UPDATE SKIP LOCKED"
            self.tx.run("SET LOCAL lock_timeout = " + LOCK_TIMEOUT)
        due = self.tx.all(
            _suffixed(
                "SELECT repository_id, digest, since, reason FROM gc_reviews"
                " WHERE kind = ? AND since <= ? ORDER BY since LIMIT ?",
                skip,
            ),
            kind,
            self.cutoff,
            limit,
        )
        if not due:
            return 0
        self.tally.reviewed += len(due)
        if kind in ("blob-link", "blob"):  # the many: decided a batch at a time
            getattr(self, "_" + kind.replace("-", "_") + "s")(due)
            return len(due)
        review = getattr(self, "_" + kind.replace("-", "_"))
        for repository_id, digest, since, reason in due:
            self.tx.run(
                "DELETE FROM gc_reviews WHERE kind = ? AND repository_id = ? AND digest = ?",
                kind,
                repository_id,
                digest,
            )
            review(int(repository_id), str(digest), float(since), reason)
        return len(due)

    def _queue(self, kind: str, repository_id: int, digest: str, since: float, reason: str) -> None:
        self._queue_many(kind, [((repository_id, digest), since, reason)])

    def _exists(self, sql: str, *args: Any) -> bool:
        return self.tx.one(sql + " LIMIT 1", *args) is not None

    def _trashed(self, repository_id: int, digest: str) -> float | None:
        """When the last live trash entry for this manifest here expires."""
        row = self.tx.one(
            "SELECT MAX(expires_at) FROM tag_trash"
            " WHERE repository_id = ? AND digest = ? AND expires_at > ?",
            repository_id,
            digest,
            self.now,
        )
        return None if row is None or row[0] is None else float(row[0])

    # -- the kinds --------------------------------------------------------------------------

    def _manifest_link(self, repository_id: int, digest: str, since: float, reason: str) -> None:
        linked = self.tx.one(
            _suffixed(
                "SELECT 1 FROM repository_manifests WHERE repository_id = ? AND digest = ?",
                self.lock,
            ),
            repository_id,
            digest,
        )
        if linked is not None:
            if reason not in CASCADED or not self._orphaned(repository_id, digest, reason):
                self.tally.kept += 1
                return
            self.tx.run(
                "DELETE FROM repository_manifests WHERE repository_id = ? AND digest = ?",
                repository_id,
                digest,
            )
            self.tally.manifest_links += 1
        elif (expires := self._trashed(repository_id, digest)) is not None:
            # A deleted tag pointing at it can still be restored: look again once it expired.
            self._queue("manifest-link", repository_id, digest, expires, reason or "deleted")
            self.tally.deferred += 1
            return
        self._went(repository_id, digest, since)

    def _orphaned(self, repository_id: int, digest: str, reason: str) -> bool:
        """A platform whose index went, or a referrer whose subject went, that nothing else
        here keeps: no tag, no index linked here holding it, no trashed tag."""
        if self._exists(
            "SELECT 1 FROM tags WHERE repository_id = ? AND digest = ?", repository_id, digest
        ):
            return False
        if self._exists(
            "SELECT 1 FROM manifest_references mr JOIN repository_manifests rm"
            " ON rm.digest = mr.parent_digest AND rm.repository_id = ?"
            " WHERE mr.child_digest = ? AND mr.is_manifest = ?",
            repository_id,
            digest,
            True,
        ):
            return False
        if self._trashed(repository_id, digest) is not None:
            return False
        if reason == "referrer":
            row = self.tx.one("SELECT subject_digest FROM manifests WHERE digest = ?", digest)
            subject = row[0] if row is not None else None
            if subject is not None and (
                self._exists(
                    "SELECT 1 FROM repository_manifests WHERE repository_id = ? AND digest = ?",
                    repository_id,
                    subject,
                )
                or self._trashed(repository_id, subject) is not None
            ):
                return False
        return True

    def _went(self, repository_id: int, digest: str, since: float) -> None:
        """The manifest is no longer linked here: queue what it referenced here."""
        for child, is_manifest in self.tx.all(
            "SELECT child_digest, is_manifest FROM manifest_references WHERE parent_digest = ?",
            digest,
        ):
            if is_manifest:
                self._queue("manifest-link", repository_id, str(child), since, "child")
            else:
                self._queue("blob-link", repository_id, str(child), since, "unreferenced")
        for (referrer,) in self.tx.all(
            "SELECT m.digest FROM repository_manifests rm JOIN manifests m ON m.digest = rm.digest"
            " WHERE rm.repository_id = ? AND m.subject_digest = ?",
            repository_id,
            digest,
        ):
            self._queue("manifest-link", repository_id, str(referrer), since, "referrer")
        # cosign's signatures, attestations and SBOMs of it, tagged after its digest.
        names = cosign_tags(digest)
        marks = ", ".join("?" for _ in names)
        for (signature,) in self.tx.all(
            f"DELETE FROM tags WHERE repository_id = ? AND name IN ({marks})"  # noqa: S608
            " RETURNING digest",
            repository_id,
            *names,
        ):
            self.tally.signature_tags += 1
            self._queue("manifest-link", repository_id, str(signature), since, "referrer")
        self.tally.scan_rows += self.tx.run(
            "DELETE FROM scan_jobs WHERE digest = ? AND repository ="
            " (SELECT name FROM repositories WHERE id = ?)",
            digest,
            repository_id,
        )
        self.tally.scan_rows += self.tx.run(
            "DELETE FROM pull_verdicts WHERE repository_id = ? AND digest = ?",
            repository_id,
            digest,
        )
        self._queue("manifest", 0, digest, since, "unlinked")

    def _blob_links(self, due: list[Any]) -> None:
        """Blob links no manifest linked there (or trashed there) references, and not linked
        again within the grace period, go; their blobs are queued."""
        since = {(int(r), str(d)): (float(t), reason) for r, d, t, reason in due}
        keys = sorted(since)
        self.tx.run(
            _keyed(
                "DELETE FROM gc_reviews WHERE kind = 'blob-link' AND (repository_id, digest)"
                " IN (SELECT repository_id, digest FROM k)",
                len(keys),
            ),
            *_flat(keys),
        )
        linked = {
            (int(r), str(d)): float(t)
            for r, d, t in self.tx.all(
                _keyed(
                    _suffixed(
                        "SELECT rb.repository_id, rb.digest, rb.created_at FROM k CROSS JOIN"
                        " repository_blobs rb WHERE rb.repository_id = k.repository_id AND"
                        " rb.digest = k.digest ORDER BY rb.repository_id, rb.digest",
                        self.lock_of("rb"),
                    ),
                    len(keys),
                ),
                *_flat(keys),
            )
        }
        # Linked again (an upload, a mount) within the grace: looked at again after it.
        renewed = [(k, t) for k, t in linked.items() if t > self.cutoff]
        self._queue_many("blob-link", [(k, t, since[k][1]) for k, t in renewed])
        self.tally.deferred += len(renewed)
        candidates = sorted(k for k, t in linked.items() if t <= self.cutoff)
        if not candidates:
            return
        kept = {
            (int(r), str(d))
            for r, d in self.tx.all(
                _keyed(
                    "SELECT k.repository_id, k.digest FROM k WHERE EXISTS (SELECT 1 FROM"
                    " manifest_references mr JOIN repository_manifests rm ON rm.digest ="
                    " mr.parent_digest AND rm.repository_id = k.repository_id WHERE"
                    " mr.child_digest = k.digest) OR EXISTS (SELECT 1 FROM manifest_references"
                    " mr JOIN tag_trash t ON t.digest = mr.parent_digest AND t.repository_id ="
                    " k.repository_id AND t.expires_at > ? WHERE mr.child_digest = k.digest)",
                    len(candidates),
                ),
                *_flat(candidates),
                self.now,
            )
        }
        self.tally.kept += len(kept)
        gone = [k for k in candidates if k not in kept]
        if not gone:
            return
        self.tx.run(
            _keyed(
                "DELETE FROM repository_blobs WHERE (repository_id, digest)"
                " IN (SELECT repository_id, digest FROM k)",
                len(gone),
            ),
            *_flat(gone),
        )
        self.tally.blob_links += len(gone)
        self._queue_many("blob", [((0, d), since[(r, d)][0], "unlinked") for r, d in gone])

    def _blobs(self, due: list[Any]) -> None:
        """Blobs no repository links go: rows first, then (last in the transaction, under the
        rows' locks) their files, so a batch rolled back never leaves a row without its file."""
        digests = sorted({str(d) for _, d, _, _ in due})
        keys = [(0, d) for d in digests]
        self.tx.run(
            _keyed(
                "DELETE FROM gc_reviews WHERE kind = 'blob' AND repository_id = 0"
                " AND digest IN (SELECT digest FROM k)",
                len(keys),
            ),
            *_flat(keys),
        )
        sizes = {
            str(d): int(size)
            for d, size in self.tx.all(
                _keyed(
                    _suffixed(
                        "SELECT b.digest, b.size FROM k CROSS JOIN blobs b WHERE b.digest ="
                        " k.digest ORDER BY b.digest",
                        self.lock_of("b"),
                    ),
                    len(keys),
                ),
                *_flat(keys),
            )
        }
        linked = {
            str(d)
            for (d,) in self.tx.all(
                _keyed(
                    "SELECT k.digest FROM k WHERE EXISTS (SELECT 1 FROM repository_blobs rb"
                    " WHERE rb.digest = k.digest)",
                    len(keys),
                ),
                *_flat(keys),
            )
        }
        gone = [d for d in digests if d in sizes and d not in linked]
        self.tally.kept += len(sizes) - len(gone)
        if not gone:
            return
        marks = "(" + ", ".join("?" for _ in gone) + ")"
        self.tally.scan_rows += self.tx.run(
            _suffixed("DELETE FROM layer_analyses WHERE digest IN ", marks), *gone
        )
        self.tx.run(_suffixed("DELETE FROM blobs WHERE digest IN ", marks), *gone)
        self.tally.blobs += len(gone)
        self.tally.blob_bytes += sum(sizes[d] for d in gone)
        # The files go under the rows' locks, before the commit: an upload of the same bytes
        # waits for this transaction, then records the blob anew and puts its file back.
        if self.remove is not None:
            for digest in gone:
                if not self.remove(Digest.parse(digest)):
                    self.tally.missing_files.append(digest)

    def lock_of(self, table: str) -> str:
        """Lock the rows read from `table` (PostgreSQL; SQLite has one writer)."""
        return f" FOR UPDATE OF {table}" if self.lock else ""

    def _queue_many(self, kind: str, rows: list[tuple[tuple[int, str], float, str]]) -> None:
        """Queue reviews of `kind` ((repository, digest), since, reason) in one statement."""
        earliest: dict[tuple[int, str], tuple[float, str]] = {}
        for key, since, why in rows:  # one row per key: the earliest
            if key not in earliest or since < earliest[key][0]:
                earliest[key] = (since, why)
        if not earliest:
            return
        step = reviews_step(
            [(kind, r, d, since, why) for (r, d), (since, why) in sorted(earliest.items())]
        )
        self.tx.run(step.sql, *step.args)

    def _manifest(self, _repository_id: int, digest: str, since: float, reason: str) -> None:
        row = self.tx.one(
            _suffixed("SELECT size FROM manifests WHERE digest = ?", self.lock), digest
        )
        if row is None:
            return
        if (
            self._exists("SELECT 1 FROM repository_manifests WHERE digest = ?", digest)
            or self._exists(
                "SELECT 1 FROM tag_trash WHERE digest = ? AND expires_at > ?", digest, self.now
            )
            # A repository's link review still to come reads what it referenced.
            or self._exists(
                "SELECT 1 FROM gc_reviews WHERE digest = ? AND kind = ?", digest, "manifest-link"
            )
        ):
            self.tally.kept += 1
            return
        self.tally.scan_rows += self.tx.run("DELETE FROM scan_reports WHERE digest = ?", digest)
        self.tally.scan_rows += self.tx.run("DELETE FROM scan_jobs WHERE digest = ?", digest)
        self.tally.scan_rows += self.tx.run("DELETE FROM pull_verdicts WHERE digest = ?", digest)
        self.tx.run("DELETE FROM manifest_references WHERE parent_digest = ?", digest)
        self.tx.run("DELETE FROM manifests WHERE digest = ?", digest)
        self.tally.manifests += 1
        self.tally.manifest_bytes += int(row[0])

    def _blob(self, _repository_id: int, digest: str, since: float, reason: str) -> None:
        row = self.tx.one(_suffixed("SELECT size FROM blobs WHERE digest = ?", self.lock), digest)
        if row is None:
            return
        if self._exists("SELECT 1 FROM repository_blobs WHERE digest = ?", digest):
            self.tally.kept += 1
            return
        self.tally.scan_rows += self.tx.run("DELETE FROM layer_analyses WHERE digest = ?", digest)
        self.tx.run("DELETE FROM blobs WHERE digest = ?", digest)
        self.tally.blobs += 1
        self.tally.blob_bytes += int(row[0])
        # The file goes under the row's lock, before the commit: an upload of the same bytes
        # waits for this transaction, then records the blob anew and puts its file back.
        if self.remove is not None and not self.remove(Digest.parse(digest)):
            self.tally.missing_files.append(digest)


class GcStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend
        # Whether another connection wrote between this store's last two batches (SQLite's
        # `data_version`: the registry is busy); PostgreSQL gives no such count, so: always.
        self.others_wrote = True
        self._version: int | None = None

    async def review(
        self, kind: str, now: float, cutoff: float, limit: int, remove: Remove
    ) -> tuple[int, Tally, float]:
        """Review up to `limit` due reviews of `kind` in one transaction: (how many, tally,
        seconds the transaction's work took); (-1, a tally of one contended batch, 0) when it
        gave way to another transaction."""

        def work(tx: Tx) -> tuple[int, Tally, float]:
            began = time.perf_counter()
            if tx.dialect == "sqlite":
                row = tx.one("PRAGMA data_version")
                version = int(row[0]) if row is not None else None
                self.others_wrote = version != self._version
                self._version = version
            review = _Review(tx, now, cutoff, remove)
            reviewed = review.batch(kind, limit)
            return reviewed, review.tally, time.perf_counter() - began

        try:
            # Not waiting for stable storage (the writer is held the shorter for it): a pass
            # lost to a power cut only leaves reviews to do again, or a blob row whose file it
            # removed, which no repository links (fsck drops it).
            (result,) = await self.backend.transaction([Call(work)], durable=False)
        except Contended:
            return -1, Tally(contended=1), 0.0
        # On SQLite, the batch's pages wait in the WAL unsynced; left there, the next push's
        # durable commit would sync them, and its automatic checkpoint copy them, on the
        # push's time (p99 of a push during a pass: 2-3x idle). The pass pays for them here.
        await self.backend.checkpoint()
        return result  # type: ignore[no-any-return]

    async def analyze_queue(self) -> None:
        """Bring PostgreSQL's statistics of the review queue up to date, before a pass reviews
        a kind. Most reviews of a kind are queued by the kind before it in the same pass, after
        autovacuum last counted them: the planner then believes there are none of them and
        runs a batch's delete as a nested loop over every one queued (measured: 155 ms a batch
        of 100 with 10,000 blob reviews queued, 0.4 ms once analyzed; the pass's time grew with
        the square of its size)."""
        if self.backend.dialect == "postgresql":
            await self.backend.transaction([Step(_ANALYZE_QUEUE, (), "all")])

    async def dry_run(self, now: float, cutoff: float, budget: float) -> tuple[Tally, bool]:
        """What a pass would do now, worked out in one transaction that is rolled back (and
        removes no file): (the tally, whether it got through everything due). It stops after
        `budget` seconds, since its transaction holds the locks (on SQLite the one writer's)
        that pushes need."""

        def work(tx: Tx) -> None:
            review = _Review(tx, now, cutoff, None)
            review.tally.trash_expired = _purge_trash(tx, now)
            deadline = time.monotonic() + budget
            for kind in KINDS:
                if tx.dialect == "postgresql":  # what analyze_queue says, in this transaction
                    tx.all(_ANALYZE_QUEUE)
                while review.batch(kind, DRY_RUN_BATCH):
                    if time.monotonic() > deadline:
                        raise _DryRun(review.tally, complete=False)
            raise _DryRun(review.tally, complete=True)

        try:
            await self.backend.transaction([Call(work)])
        except _DryRun as done:
            return done.tally, done.complete
        raise AssertionError("a dry run always rolls back")  # pragma: no cover

    async def purge_trash(self, now: float) -> int:
        """Drop trash entries that expired (their content is then the collector's)."""
        (count,) = await self.backend.transaction([Call(lambda tx: _purge_trash(tx, now))])
        return int(count)

    async def has_work(self, now: float, cutoff: float) -> bool:
        """Whether a pass now would do anything: a review due (of any kind, each found through
        the `(kind, since)` index) or a trash entry expired."""
        row = await self.backend.fetchone(_HAS_WORK, *[v for k in KINDS for v in (k, cutoff)], now)
        assert row is not None
        return int(row[0]) > 0

    async def pending(self, cutoff: float) -> tuple[int, int]:
        """(reviews due now, reviews queued in all)."""
        row = await self.backend.fetchone(
            "SELECT COUNT(*), COALESCE(SUM(CASE WHEN since <= ? THEN 1 ELSE 0 END), 0)"
            " FROM gc_reviews",
            cutoff,
        )
        assert row is not None
        return int(row[1]), int(row[0])


# One row per kind with a review due, one if a trash entry expired: each found by its index.
_HAS_WORK = (
    "SELECT COUNT(*) FROM ("  # noqa: S608 (fixed text, the arguments are bound)
    + " UNION ALL ".join(
        ["SELECT 1 FROM (SELECT 1 AS one FROM gc_reviews WHERE kind = ? AND since <= ? LIMIT 1) d"]
        * len(KINDS)
        + ["SELECT 1 FROM (SELECT 1 AS one FROM tag_trash WHERE expires_at <= ? LIMIT 1) t"]
    )
    + ") work"
)


def _keyed(sql: str, count: int) -> str:
    """`sql` preceded by a table `k(repository_id, digest)` of `count` rows, given as arguments
    (typed, so PostgreSQL compares them with the columns' own types)."""
    rows = ", ".join("(CAST(? AS INTEGER), CAST(? AS VARCHAR(140)))" for _ in range(count))
    return "WITH k(repository_id, digest) AS (VALUES " + rows + ") " + sql


def _flat(keys: list[tuple[int, str]]) -> list[Any]:
    return [v for key in keys for v in key]


def _suffixed(sql: str, suffix: str) -> str:
    """A fixed statement with its locking clause (empty on SQLite)."""
    return sql + suffix


def _purge_trash(tx: Tx, now: float) -> int:
    return tx.run("DELETE FROM tag_trash WHERE expires_at <= ?", now)
