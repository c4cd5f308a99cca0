"""The `MetadataStore`: every question and change the services put to the database.

The logic is written once here, in plain SQL with `?` placeholders; a backend supplies only the
primitives in `SqlBackend` (run a read, run a write transaction). `SqliteBackend` (stdlib sqlite3)
and `PostgresBackend` (asyncpg) implement them, so one test suite covers both databases.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from seawall.domain.clock import SYSTEM_CLOCK, Clock

Row = Sequence[Any]
Want = Literal["rowcount", "one", "all"]


@dataclass(frozen=True, slots=True)
class Step:
    """One statement of a write transaction and what to return from it."""

    sql: str
    args: tuple[Any, ...] = ()
    want: Want = "rowcount"


@dataclass(frozen=True, slots=True)
class Rows:
    """Insert many rows into one table: `executemany` on SQLite, binary COPY on PostgreSQL
    (about half the server's work per row of `executemany` there). Its result is None."""

    table: str
    columns: tuple[str, ...]
    records: Sequence[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Each:
    """One statement run once per record (`executemany`): the upserts of many rows. asyncpg
    sends them in one pipeline, not a round trip each. Its result is None."""

    sql: str
    records: Sequence[tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class Then:
    """Steps worked out inside the transaction from the results so far (pure code, no I/O):
    read-then-write under the transaction's lock. Its result is the list of its steps' results."""

    build: Callable[[list[Any]], Sequence[Step | Rows | Each]]


class Tx(Protocol):
    """The open transaction a `Call` works in: statements with `?` placeholders, run in order,
    blocking (a `Call` runs in a worker thread)."""

    dialect: str

    def one(self, sql: str, *args: Any) -> Row | None:
        """Run a statement, return its first row."""

    def all(self, sql: str, *args: Any) -> list[Row]:
        """Run a statement, return every row."""

    def run(self, sql: str, *args: Any) -> int:
        """Run a statement, return the number of rows it changed."""


class Contended(Exception):
    """A `Call`'s statement gave way to another transaction (it waited longer than the lock
    timeout it set, or was chosen to break a deadlock); its transaction was rolled back."""


@dataclass(frozen=True, slots=True)
class Call:
    """Imperative work inside the transaction: `work(tx)` runs in a worker thread (on SQLite the
    writer's own) with the transaction's locks held, and may do blocking I/O that must happen
    under them (removing a blob's file with its row). Its result is what `work` returns; an
    exception rolls the transaction back. For maintenance (garbage collection, repairs), not the
    request path: every statement is a thread hop on PostgreSQL."""

    work: Callable[[Tx], Any]

    def __call__(self, tx: Tx) -> Any:
        """`work(tx)`, for the backends to run. A `StopIteration` escaping it becomes a
        `RuntimeError`: asyncio cannot carry one out of a thread into the awaiting future, which
        would then never finish, holding the transaction open."""
        try:
            return self.work(tx)
        except StopIteration as exc:
            raise RuntimeError(f"a transaction's work raised StopIteration: {exc!r}") from exc


Steps = Sequence[Step | Rows | Each | Then | Call]


class Trailer(Protocol):
    """What a write transaction runs at its end (the audit rows that record it, see
    `seawall.db.audit.Trail`), and is told once it committed."""

    def steps(self) -> Sequence[Step | Rows | Then]:
        """The steps to run after the transaction's own."""

    async def done(self) -> None:
        """The transaction committed."""


async def commit(
    backend: SqlBackend, steps: Steps, trail: Trailer | None, durable: bool = True
) -> list[Any]:
    """Run `steps` in one write transaction that ends with `trail`'s steps; the results of
    `steps`. What the trail records commits with the change it records, or neither does."""
    if trail is None:
        return await backend.transaction(steps, durable)
    results = await backend.transaction([*steps, *trail.steps()], durable)
    await trail.done()
    return results[: len(steps)]


async def commit_counted(
    backend: SqlBackend, steps: Steps, audit: Audit | None, counted: int = 0
) -> bool:
    """Run `steps` in one write transaction ending with `audit`'s rows; True when step
    `counted` changed a row (`Change.done`, which the audit rows are worked out from)."""
    change = Change()

    def seen(results: list[Any]) -> list[Step]:
        change.done = bool(results[counted])
        return []

    await commit(backend, [*steps, Then(seen)], audit(change) if audit is not None else None)
    return change.done


# What `SqlBackend.subscribe` callbacks hear once notifications flow again after a loss (no
# payload of ours is empty).
LISTENING = ""


class DatabaseUnavailable(Exception):
    """The database cannot be opened or reached (no server, no such database, refused
    credentials, not a database file). The message says why, in one line, without secrets."""


class SqlBackend(Protocol):
    dialect: str

    async def start(self) -> None:
        """Open connections; called once inside the event loop that will use them. Raises
        `DatabaseUnavailable` when the database cannot be opened or reached."""

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        """Run a read, return the first row."""

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        """Run a read, return every row."""

    async def transaction(self, steps: Steps, durable: bool = True) -> list[Any]:
        """Run the steps in one write transaction; one result per step (rowcount, row, rows).

        `durable=False` may skip waiting for stable storage at commit: for state whose loss
        in a power cut costs a client a retry, never an acknowledged push (upload progress and
        leases). Later durable commits still carry it to disk, in order."""

    async def close(self) -> None:
        """Release connections."""

    async def checkpoint(self) -> None:
        """Carry what this process committed without waiting for stable storage into the
        database file now, off any writer's path (SQLite: a passive WAL checkpoint, which
        neither waits for nor blocks a writer). Nothing to do on PostgreSQL."""

    async def subscribe(self, channel: str, callback: Callable[[str | None], None]) -> bool:
        """Call `callback(payload)` for every `notify_step(channel, …)` committed by any
        process, `callback(None)` if notifications may have been missed from now on, and
        `callback(LISTENING)` once they arrive again after that. False when the backend has no
        notifications (then callers must not cache what they would invalidate)."""

    def notify_step(self, channel: str, payload: str) -> Step | None:
        """A transaction step that notifies subscribers on commit, or None without support."""


@dataclass(frozen=True, slots=True)
class PullFacts:
    """What a pull reads with its manifest for the lifecycle policy: the stored pull-gate
    verdict (None when none is stored) and the deprecation of the tag pulled (by digest: of a
    tag pointing at it), as stored JSON."""

    repository_id: int
    outcome: str | None
    rule: str | None
    message: str | None
    valid_until: float | None
    deprecation: str | None


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    digest: str
    media_type: str
    payload: bytes
    facts: PullFacts | None = None
    warnings: tuple[str, ...] = ()  # for the puller (deprecation, a warning verdict)


@dataclass(frozen=True, slots=True)
class ManifestHead:
    digest: str
    media_type: str
    size: int
    facts: PullFacts | None = None
    warnings: tuple[str, ...] = ()


class TagGuard(Protocol):
    """Decides, inside the transaction that changes tags, whether they may change (the
    lifecycle policy's immutable tags): its reads run in that transaction, locked against a
    concurrent policy change on PostgreSQL."""

    def reads(self) -> Sequence[Step]:
        """What the decision needs, read inside the transaction."""

    def refuse(self, read: list[Any], tags: Sequence[str], action: str) -> None:
        """Raise when one of `tags` may not change: `action` "move" (point it elsewhere),
        "delete" (remove it, or the manifest it points at), "hold" (remove a manifest that the
        index it points at holds), or when the repository takes no pushes ("push", no tags: a
        stage written only by promotion). `read` holds the results of `reads()`."""

    def trash_seconds(self, read: list[Any]) -> float:
        """How long a tag deleted under this guard stays restorable (0: not at all)."""


@dataclass(frozen=True, slots=True)
class NewManifest:
    digest: str
    media_type: str
    payload: bytes
    artifact_type: str | None
    subject_digest: str | None
    annotations_json: str | None
    blob_digests: tuple[str, ...]
    manifest_digests: tuple[str, ...]


DEFAULT_TRASH_SECONDS = 14 * 86_400


@dataclass(frozen=True, slots=True)
class Trash:
    """Deleted tags go to the trash (`tag_trash`), restorable for `seconds` (None: as long as
    the guard's policy says, else `DEFAULT_TRASH_SECONDS`; 0: not kept)."""

    deleted_by: str
    reason: str
    seconds: float | None = None

    def keep_for(self, guard: TagGuard | None, read: list[Any]) -> float:
        if self.seconds is not None:
            return self.seconds
        return guard.trash_seconds(read) if guard is not None else DEFAULT_TRASH_SECONDS


@dataclass(slots=True)
class TagChange:
    """What a push did to its tag, worked out inside the push's transaction."""

    existed: bool = False
    before: str | None = None  # the digest the tag pointed at before


class TagMoveRefused(Exception):
    """The push would point an existing tag at another manifest, and was not allowed to."""

    def __init__(self, tag: str, before: str) -> None:
        super().__init__(f"tag {tag!r} points at {before}")
        self.tag = tag
        self.before = before


@dataclass(slots=True)
class Change:
    """What a write did, worked out inside its transaction, for the audit rows that record it
    (which commit in that same transaction)."""

    done: bool = False  # it changed something (a row deleted, a blob mounted, ...)
    digest: str | None = None  # a deleted tag's: the manifest it pointed at
    tags: list[str] = field(default_factory=list)  # a deleted manifest's tags in the repository
    created: int | None = None  # the id of the row it created (a pull-gate exception)


# How a write is recorded: given what it did (filled in inside its transaction), the audit
# trail that ends that transaction (`AuditLog.recorder` makes one).
Audit = Callable[[Change], Trailer]


@dataclass(frozen=True, slots=True)
class Referrer:
    digest: str
    media_type: str
    size: int
    artifact_type: str | None
    annotations_json: str | None


@dataclass(frozen=True, slots=True)
class UploadRecord:
    id: str
    repository_id: int
    size: int
    lease_until: float
    updated_at: float


_TAGGED = (
    " FROM repositories r JOIN tags t ON t.repository_id = r.id"
    " JOIN manifests m ON m.digest = t.digest"
    " LEFT JOIN pull_verdicts v ON v.repository_id = r.id AND v.digest = m.digest"
    " WHERE r.name = ? AND t.name = ?"
)
# What a pull reads besides the manifest (`PullFacts`), by tag and by digest.
_TAG_FACTS = ", r.id, v.outcome, v.rule, v.message, v.valid_until, t.deprecation"
_DIGEST_FACTS = (
    ", r.id, v.outcome, v.rule, v.message, v.valid_until, (SELECT d.deprecation FROM tags d"
    " WHERE d.repository_id = r.id AND d.digest = m.digest AND d.deprecation IS NOT NULL"
    " ORDER BY d.name LIMIT 1)"
)
_LINKED_BLOB = (
    "SELECT b.size FROM repositories r JOIN repository_blobs rb ON rb.repository_id = r.id"
    " JOIN blobs b ON b.digest = rb.digest WHERE r.name = ? AND rb.digest = ?"
)
_BLOB_SIZES = (
    "SELECT rb.digest, b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest"
    " WHERE rb.repository_id = ? AND rb.digest IN"
)
_MANIFEST_SIZES = (
    "SELECT rm.digest, m.size FROM repository_manifests rm JOIN manifests m"
    " ON m.digest = rm.digest WHERE rm.repository_id = ? AND rm.digest IN"
)
_TAG_DIGEST = "SELECT digest FROM tags WHERE repository_id = ? AND name = ?"
_LINKED = (
    " FROM repositories r JOIN repository_manifests rm ON rm.repository_id = r.id"
    " JOIN manifests m ON m.digest = rm.digest"
    " LEFT JOIN pull_verdicts v ON v.repository_id = r.id AND v.digest = m.digest"
    " WHERE r.name = ? AND rm.digest = ?"
)


class MetadataStore:
    """Repository metadata over any `SqlBackend`."""

    def __init__(self, backend: SqlBackend, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self.backend = backend
        self.clock = clock  # stamps rows; upload leases and expiry

    async def start(self) -> None:
        await self.backend.start()

    async def close(self) -> None:
        await self.backend.close()

    async def ping(self) -> None:
        await self.backend.fetchone("SELECT 1")

    # -- repositories ---------------------------------------------------------------------

    async def repository_id(self, name: str) -> int | None:
        row = await self.backend.fetchone("SELECT id FROM repositories WHERE name = ?", name)
        return None if row is None else int(row[0])

    async def ensure_repository(self, name: str) -> int:
        repo_id = await self.repository_id(name)
        if repo_id is not None:
            return repo_id
        results = await self.backend.transaction(
            [
                Step(
                    "INSERT INTO repositories (name, created_at) VALUES (?, ?)"
                    " ON CONFLICT (name) DO NOTHING",
                    (name, self.clock.now()),
                ),
                Step("SELECT id FROM repositories WHERE name = ?", (name,), "one"),
            ]
        )
        return int(results[1][0])

    async def catalog(self, n: int, last: str | None) -> list[str]:
        rows = await self.backend.fetchall(
            "SELECT r.name FROM repositories r WHERE r.name > ? AND EXISTS"
            " (SELECT 1 FROM repository_manifests rm WHERE rm.repository_id = r.id)"
            " ORDER BY r.name LIMIT ?",
            last or "",
            n,
        )
        return [row[0] for row in rows]

    # -- blobs ----------------------------------------------------------------------------

    async def blob_size_in(self, repository: str, digest: str) -> int | None:
        """Size of a blob if `repository` links to it."""
        row = await self.backend.fetchone(_LINKED_BLOB, repository, digest)
        return None if row is None else int(row[0])

    async def blob_size(self, digest: str) -> int | None:
        """Size of a blob known anywhere in the registry."""
        row = await self.backend.fetchone("SELECT size FROM blobs WHERE digest = ?", digest)
        return None if row is None else int(row[0])

    async def repositories_with_blob(self, digest: str, limit: int) -> list[str]:
        rows = await self.backend.fetchall(
            "SELECT r.name FROM repository_blobs rb JOIN repositories r ON r.id = rb.repository_id"
            " WHERE rb.digest = ? ORDER BY r.name LIMIT ?",
            digest,
            limit,
        )
        return [row[0] for row in rows]

    async def link_blob(self, repository_id: int, digest: str, size: int) -> None:
        now = self.clock.now()
        await self.backend.transaction(link_blob_steps(repository_id, digest, size, now))

    async def mount_blob(
        self,
        repository_id: int,
        digest: str,
        source: str,
        audit: Audit | None = None,
    ) -> bool:
        """Link into the repository a blob that `source` links, in one transaction with the
        check that it does (share-locked on PostgreSQL until the commit, so the source cannot
        lose it in between) and with `audit(mounted)`'s rows. False: `source` does not link it."""
        now = self.clock.now()
        mounted = Change()  # done: the source had it, and it is linked here now
        held = _LINKED_BLOB + (" FOR SHARE OF rb" if self.backend.dialect == "postgresql" else "")

        def link(results: list[Any]) -> list[Step]:
            if results[0] is None:
                return []
            mounted.done = True
            return link_blob_steps(repository_id, digest, int(results[0][0]), now)

        await commit(
            self.backend,
            [
                Step(held, (source, digest), "one"),
                Then(link),
            ],
            audit(mounted) if audit is not None else None,
        )
        return mounted.done

    async def unlink_blob(self, repository: str, digest: str, audit: Audit | None = None) -> bool:
        """Unlink a blob from a repository, with `audit(change)`'s rows in the same transaction;
        False when the repository did not link it."""
        return await commit_counted(
            self.backend,
            [
                Step(
                    "DELETE FROM repository_blobs WHERE digest = ? AND repository_id ="
                    " (SELECT id FROM repositories WHERE name = ?)",
                    (digest, repository),
                ),
                review_step("blob", 0, digest, self.clock.now(), "deleted"),
            ],
            audit,
        )

    # -- manifests ------------------------------------------------------------------------

    async def manifest_by_tag(self, repository: str, tag: str) -> ManifestRecord | None:
        row = await self.backend.fetchone(
            "SELECT m.digest, m.media_type, m.payload" + _TAG_FACTS + _TAGGED, repository, tag
        )
        return None if row is None else ManifestRecord(row[0], row[1], bytes(row[2]), _facts(row))

    async def manifest_by_digest(self, repository: str, digest: str) -> ManifestRecord | None:
        row = await self.backend.fetchone(
            "SELECT m.digest, m.media_type, m.payload" + _DIGEST_FACTS + _LINKED, repository, digest
        )
        return None if row is None else ManifestRecord(row[0], row[1], bytes(row[2]), _facts(row))

    async def manifest_head_by_tag(self, repository: str, tag: str) -> ManifestHead | None:
        row = await self.backend.fetchone(
            "SELECT m.digest, m.media_type, m.size" + _TAG_FACTS + _TAGGED, repository, tag
        )
        return None if row is None else ManifestHead(row[0], row[1], int(row[2]), _facts(row))

    async def manifest_head_by_digest(self, repository: str, digest: str) -> ManifestHead | None:
        row = await self.backend.fetchone(
            "SELECT m.digest, m.media_type, m.size" + _DIGEST_FACTS + _LINKED, repository, digest
        )
        return None if row is None else ManifestHead(row[0], row[1], int(row[2]), _facts(row))

    async def put_manifest(
        self,
        repository_id: int,
        m: NewManifest,
        tag: str | None,
        *,
        check: Callable[[dict[str, int], dict[str, int]], None] | None = None,
        may_move: bool = True,
        also: Sequence[Step] = (),
        audit: Callable[[TagChange], Trailer] | None = None,
        guard: TagGuard | None = None,
        pushed_by: str | None = None,
    ) -> TagChange:
        """In one transaction: look up what the manifest references (locked against removal
        until the commit) and let `check(blob_sizes, manifest_sizes)` refuse it; store the
        manifest (once per registry), link it to the repository, point the tag at it, run `also`
        (e.g. queueing its scan), and write `audit(change)`'s rows.

        Pointing an existing tag elsewhere raises `TagMoveRefused` unless `may_move`, and
        whatever `guard` raises (an immutable tag, for every caller): decided here, under the
        tag row's lock, so a tag created by a concurrent push is never moved by a caller who
        may only create tags, nor an immutable one by anybody."""
        now = self.clock.now()
        change = TagChange()
        steps: list[Step | Rows | Then] = []
        if guard is not None:
            reads = list(guard.reads())

            def may_push(results: list[Any]) -> list[Step]:
                guard.refuse(results[: len(reads)], [], "push")
                return []

            steps += [*reads, Then(may_push)]
        blobs = self._linked_sizes(_BLOB_SIZES, "rb", repository_id, m.blob_digests)
        manifests = self._linked_sizes(_MANIFEST_SIZES, "rm", repository_id, m.manifest_digests)
        steps += [*blobs, *manifests]

        def checked(results: list[Any]) -> list[Step]:
            if check is not None:
                found = iter(results[len(results) - len(blobs) - len(manifests) :])
                check(*(_sizes(next(found)) if read else {} for read in (blobs, manifests)))
            return []

        steps += [
            Then(checked),
            *self.manifest_steps(repository_id, m, now, pushed_by),
            *also,
        ]
        if tag is not None:
            steps += self.tag_steps(
                repository_id, tag, m.digest, now, may_move, change, guard, pushed_by
            )
        await commit(self.backend, steps, audit(change) if audit is not None else None)
        return change

    def manifest_steps(
        self, repository_id: int, m: NewManifest, now: float, pushed_by: str | None
    ) -> list[Step]:
        """Store a manifest (once per registry) with what it references, and link it to the
        repository (its first pusher kept)."""
        return [
            Step(
                "INSERT INTO manifests (digest, media_type, size, payload, artifact_type,"
                " subject_digest, annotations, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (digest) DO NOTHING",
                (
                    m.digest,
                    m.media_type,
                    len(m.payload),
                    m.payload,
                    m.artifact_type,
                    m.subject_digest,
                    m.annotations_json,
                    now,
                ),
            ),
            *(
                Step(
                    "INSERT INTO manifest_references (parent_digest, child_digest, is_manifest)"
                    " VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    (m.digest, child, is_manifest),
                )
                for is_manifest, children in ((False, m.blob_digests), (True, m.manifest_digests))
                for child in dict.fromkeys(children)
            ),
            Step(
                "INSERT INTO repository_manifests (repository_id, digest, created_at, pushed_by)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (repository_id, digest) DO NOTHING",
                (repository_id, m.digest, now, pushed_by),
            ),
            *self._link_lock(repository_id, m.digest),
        ]

    def _link_lock(self, repository_id: int, digest: str) -> list[Step]:
        """On PostgreSQL, hold the link row until the commit, so that a concurrent delete of
        the manifest waits for this push's tag and then removes it too (no dangling tag). A key
        share lock: pushes of the same manifest (many tags of one image) do not queue on it.
        SQLite's one writer needs none."""
        if self.backend.dialect != "postgresql":
            return []
        return [
            Step(
                "SELECT 1 FROM repository_manifests WHERE repository_id = ? AND digest = ?"
                " FOR KEY SHARE",
                (repository_id, digest),
                "one",
            )
        ]

    def _linked_sizes(
        self, sql: str, link: str, repository_id: int, digests: Sequence[str]
    ) -> list[Step]:
        """The read of (digest, size) of those of `digests` the repository links (none when
        there are none to look up). On PostgreSQL the link rows (alias `link`) are share-locked,
        so that nothing unlinks them, nor so removes what they name, before the transaction that
        references them commits. Only the links: an upload of the same blob locks its `blobs`
        row and then the link, so a push that held the link and waited for the blob row would
        deadlock with it."""
        unique = tuple(dict.fromkeys(digests))
        if not unique:
            return []
        lock = f" FOR SHARE OF {link}" if self.backend.dialect == "postgresql" else ""
        marks = ", ".join("?" for _ in unique)
        return [Step(sql + " (" + marks + ")" + lock, (repository_id, *unique), "all")]

    def tag_steps(
        self,
        repository_id: int,
        tag: str,
        digest: str,
        now: float,
        may_move: bool,
        change: TagChange,
        guard: TagGuard | None,
        pushed_by: str | None,
    ) -> list[Step | Rows | Then]:
        """Create the tag, or else lock it, read where it points and decide there whether it
        may move. A tag created meanwhile by another push is seen here: the insert waits for
        that push to commit or roll back."""
        where = (repository_id, tag)
        current = _TAG_DIGEST + (" FOR UPDATE" if self.backend.dialect == "postgresql" else "")
        insert = Step(
            "INSERT INTO tags (repository_id, name, digest, updated_at, pushed_by)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (repository_id, name) DO NOTHING",
            (repository_id, tag, digest, now, pushed_by),
        )

        def read(results: list[Any]) -> list[Step]:
            if results[-1]:  # created
                return []
            return [Step(current, where, "one"), *(guard.reads() if guard else ())]

        def decide(results: list[Any]) -> list[Step]:
            if not results[-1]:  # created by the insert
                return []
            row = results[-1][0]
            if row is None:
                # Deleted since the insert found it: this push creates it after all (a third
                # push creating it in this instant is moved, not refused).
                return [
                    Step(
                        "INSERT INTO tags (repository_id, name, digest, updated_at, pushed_by)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (repository_id, name)"
                        " DO UPDATE SET digest = excluded.digest, updated_at ="
                        " excluded.updated_at, pushed_by = excluded.pushed_by",
                        (repository_id, tag, digest, now, pushed_by),
                    )
                ]
            change.existed, change.before = True, str(row[0])
            if change.before != digest:
                if guard is not None:
                    guard.refuse(results[-1][1:], [tag], "move")
                if not may_move:
                    raise TagMoveRefused(tag, change.before)
            return [
                Step(
                    "UPDATE tags SET digest = ?, updated_at = ?, pushed_by = ?"
                    " WHERE repository_id = ? AND name = ?",
                    (digest, now, pushed_by, *where),
                )
            ]

        return [insert, Then(read), Then(decide)]

    async def delete_manifest(
        self,
        repository: str,
        digest: str,
        audit: Audit | None = None,
        guard: TagGuard | None = None,
        trash: Trash | None = None,
    ) -> list[str] | None:
        """Unlink a manifest from a repository, with every tag there that points at it (into
        the `trash`, if given), queue what it referenced for the garbage collector, and write
        `audit(removed)`'s rows in the same transaction. The tags removed, or None when it was
        not there. `guard` may refuse it for the tags it would remove (nothing changes)."""
        repo_id = await self.repository_id(repository)
        if repo_id is None:
            return None
        now = self.clock.now()
        removed = Change()
        reads: list[Step] = []
        if guard is not None:
            # The tags of the indexes here that hold this manifest (a platform of theirs).
            holders = Step(
                "SELECT t.name FROM tags t JOIN manifest_references mr"
                " ON mr.parent_digest = t.digest WHERE t.repository_id = ?"
                " AND mr.child_digest = ? AND mr.is_manifest = ? ORDER BY t.name",
                (repo_id, digest, True),
                "all",
            )
            reads = [*guard.reads(), holders]

        def seen(results: list[Any]) -> list[Step]:
            unlinked, tags = results[len(reads)], results[len(reads) + 1]
            removed.done = bool(unlinked)
            removed.tags[:] = sorted(str(t[0]) for t in tags) if removed.done else []
            if not removed.done:
                return []
            policy_read = results[: len(reads) - 1]
            if guard is not None:
                guard.refuse(policy_read, removed.tags, "delete")
                guard.refuse(policy_read, [str(t[0]) for t in results[len(reads) - 1]], "hold")
            steps = [review_step("manifest-link", repo_id, digest, now, "deleted")]
            if trash is not None:
                seconds = trash.keep_for(guard, policy_read)
                steps += [_trash_step(repo_id, tag, trash, now, seconds) for tag in tags]
            return steps

        # The link first: it waits for a push holding it, and the tag delete that follows
        # then sees that push's tags.
        await commit(
            self.backend,
            [
                *reads,
                Step(
                    "DELETE FROM repository_manifests WHERE repository_id = ? AND digest = ?",
                    (repo_id, digest),
                ),
                Step(
                    "DELETE FROM tags WHERE repository_id = ? AND digest = ?"
                    " RETURNING name, digest, pushed_by, channel, deprecation",
                    (repo_id, digest),
                    "all",
                ),
                Then(seen),
            ],
            audit(removed) if audit is not None else None,
        )
        return removed.tags if removed.done else None

    async def referrers(
        self, repository: str, subject: str, artifact_type: str | None
    ) -> list[Referrer]:
        sql = (
            "SELECT m.digest, m.media_type, m.size, m.artifact_type, m.annotations"
            " FROM repositories r JOIN repository_manifests rm ON rm.repository_id = r.id"
            " JOIN manifests m ON m.digest = rm.digest"
            " WHERE r.name = ? AND m.subject_digest = ?"
        )
        args: list[Any] = [repository, subject]
        if artifact_type is not None:
            sql += " AND m.artifact_type = ?"
            args.append(artifact_type)
        rows = await self.backend.fetchall(sql + " ORDER BY m.digest", *args)
        return [Referrer(r[0], r[1], int(r[2]), r[3], r[4]) for r in rows]

    # -- tags -----------------------------------------------------------------------------

    async def list_tags(self, repository: str, n: int, last: str | None) -> list[str] | None:
        """Tags in byte order after `last`; None when the repository is unknown."""
        repo_id = await self.repository_id(repository)
        if repo_id is None:
            return None
        rows = await self.backend.fetchall(
            "SELECT name FROM tags WHERE repository_id = ? AND name > ? ORDER BY name LIMIT ?",
            repo_id,
            last or "",
            n,
        )
        return [row[0] for row in rows]

    async def delete_tag(
        self,
        repository: str,
        tag: str,
        audit: Audit | None = None,
        guard: TagGuard | None = None,
        trash: Trash | None = None,
    ) -> str | None:
        """Remove a tag (into the `trash`, if given), with `audit(removed)`'s rows in the same
        transaction; the digest it pointed at, or None when there was no such tag. `guard` may
        refuse it."""
        now = self.clock.now()
        removed = Change()
        reads = list(guard.reads()) if guard is not None else []

        def seen(results: list[Any]) -> list[Step]:
            if not results[len(reads)]:
                return []
            if guard is not None:
                guard.refuse(results[: len(reads)], [tag], "delete")
            row = results[len(reads)][0]
            removed.done, removed.digest = True, str(row[1])
            if trash is None:
                return []
            seconds = trash.keep_for(guard, results[: len(reads)])
            return [_trash_step(int(row[5]), row, trash, now, seconds)]

        await commit(
            self.backend,
            [
                *reads,
                Step(
                    "DELETE FROM tags WHERE name = ? AND repository_id ="
                    " (SELECT id FROM repositories WHERE name = ?)"
                    " RETURNING name, digest, pushed_by, channel, deprecation, repository_id",
                    (tag, repository),
                    "all",
                ),
                Then(seen),
            ],
            audit(removed) if audit is not None else None,
        )
        return removed.digest

    # -- upload sessions ------------------------------------------------------------------

    async def create_upload(
        self, upload_id: str, repository_id: int, lease_seconds: float = 0.0
    ) -> UploadRecord:
        """A new, empty session; with `lease_seconds`, already claimed for writing by the
        request that creates it (`claim_upload` without a second transaction)."""
        now = self.clock.now()
        lease_until = now + lease_seconds if lease_seconds > 0 else 0.0
        await self.backend.transaction(
            [
                Step(
                    "INSERT INTO uploads (id, repository_id, size, lease_until, created_at,"
                    " updated_at) VALUES (?, ?, 0, ?, ?, ?)",
                    (upload_id, repository_id, lease_until, now, now),
                )
            ],
            durable=False,
        )
        return UploadRecord(upload_id, repository_id, 0, lease_until, now)

    async def get_upload(self, repository: str, upload_id: str) -> UploadRecord | None:
        row = await self.backend.fetchone(
            "SELECT u.id, u.repository_id, u.size, u.lease_until, u.updated_at"
            " FROM uploads u JOIN repositories r ON r.id = u.repository_id"
            " WHERE u.id = ? AND r.name = ?",
            upload_id,
            repository,
        )
        if row is None:
            return None
        return UploadRecord(row[0], int(row[1]), int(row[2]), float(row[3]), float(row[4]))

    async def claim_upload(self, upload_id: str, offset: int, lease_seconds: float) -> bool:
        """Take the session for writing at `offset`; False if the size differs or it is busy."""
        now = self.clock.now()
        (count,) = await self.backend.transaction(
            [
                Step(
                    "UPDATE uploads SET lease_until = ?, updated_at = ?"
                    " WHERE id = ? AND size = ? AND lease_until < ?",
                    (now + lease_seconds, now, upload_id, offset, now),
                )
            ],
            durable=False,
        )
        return bool(count)

    async def renew_upload(self, upload_id: str, lease_seconds: float) -> None:
        now = self.clock.now()
        await self.backend.transaction(
            [
                Step(
                    "UPDATE uploads SET lease_until = ?, updated_at = ? WHERE id = ?",
                    (now + lease_seconds, now, upload_id),
                )
            ],
            durable=False,
        )

    async def release_upload(self, upload_id: str, size: int) -> None:
        now = self.clock.now()
        await self.backend.transaction(
            [
                Step(
                    "UPDATE uploads SET size = ?, lease_until = 0, updated_at = ? WHERE id = ?",
                    (size, now, upload_id),
                )
            ],
            durable=False,
        )

    async def commit_upload(
        self,
        upload_id: str,
        repository_id: int,
        digest: str,
        size: int,
        place: Callable[[], None],
    ) -> None:
        """In one transaction: record the blob (its row locked first), `place` its bytes, link
        it to the repository, end the session. The garbage collector removes a blob's file in
        the transaction that deletes its row, under the same lock, so a blob placed here is
        never removed before this commits and sees its link."""
        now = self.clock.now()
        await self.backend.transaction(
            [
                Step(
                    "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (digest) DO UPDATE SET size = blobs.size",
                    (digest, size, now),
                ),
                Call(lambda _tx: place()),
                *link_blob_steps(repository_id, digest, size, now),
                Step("DELETE FROM uploads WHERE id = ?", (upload_id,)),
            ]
        )

    async def delete_upload(self, upload_id: str, audit: Audit | None = None) -> bool:
        """End an upload session, with `audit(change)`'s rows in the same transaction;
        False when it was gone already (another process swept it)."""
        return await commit_counted(
            self.backend, [Step("DELETE FROM uploads WHERE id = ?", (upload_id,))], audit
        )

    async def expired_uploads(self, idle_before: float) -> list[tuple[str, str]]:
        """(upload id, repository) of every session idle since before `idle_before`."""
        rows = await self.backend.fetchall(
            "SELECT u.id, r.name FROM uploads u JOIN repositories r ON r.id = u.repository_id"
            " WHERE u.updated_at < ? AND u.lease_until < ?",
            idle_before,
            self.clock.now(),
        )
        return [(str(row[0]), str(row[1])) for row in rows]

    async def count_uploads(self) -> int:
        row = await self.backend.fetchone("SELECT COUNT(*) FROM uploads")
        return int(row[0]) if row else 0

    async def known_uploads(self, upload_ids: Sequence[str]) -> set[str]:
        """Those of `upload_ids` that are sessions (the sweep of files no session names)."""
        known: set[str] = set()
        for start in range(0, len(upload_ids), 500):
            batch = list(upload_ids[start : start + 500])
            marks = ", ".join("?" for _ in batch)
            rows = await self.backend.fetchall(
                f"SELECT id FROM uploads WHERE id IN ({marks})",  # noqa: S608 - placeholders only
                *batch,
            )
            known.update(str(row[0]) for row in rows)
        return known


def _facts(row: Row) -> PullFacts:
    return PullFacts(
        int(row[3]),
        row[4],
        row[5],
        row[6],
        float(row[7]) if row[7] is not None else None,
        row[8],
    )


def _sizes(rows: Sequence[Row]) -> dict[str, int]:
    return {str(row[0]): int(row[1]) for row in rows}


def link_blob_steps(repository_id: int, digest: str, size: int, now: float) -> list[Step]:
    """Record a blob and link it to a repository. A link made again is renewed (`created_at`),
    and the garbage collector is asked to look at it once the grace period has passed: a blob
    no manifest there comes to reference is garbage in that repository."""
    return [
        Step(
            "INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)"
            " ON CONFLICT (digest) DO NOTHING",
            (digest, size, now),
        ),
        Step(
            "INSERT INTO repository_blobs (repository_id, digest, created_at)"
            " VALUES (?, ?, ?) ON CONFLICT (repository_id, digest)"
            " DO UPDATE SET created_at = excluded.created_at",
            (repository_id, digest, now),
        ),
        review_step("blob-link", repository_id, digest, now, "linked"),
    ]


def review_step(kind: str, repository_id: int, digest: str, since: float, reason: str) -> Step:
    """Queue a garbage-collection review (see `gc_reviews` in tables.py); a review already
    queued keeps the earlier time."""
    return reviews_step([(kind, repository_id, digest, since, reason)])


def reviews_step(rows: Sequence[tuple[str, int, str, float, str]]) -> Step:
    """Queue garbage-collection reviews (kind, repository id, digest, since, reason) in one
    statement, as `review_step` does one; no two rows may share a key."""
    marks = ", ".join("(?, ?, ?, ?, ?)" for _ in rows)
    return Step(
        "INSERT INTO gc_reviews (kind, repository_id, digest, since, reason) VALUES "  # noqa: S608
        + marks
        + " ON CONFLICT (kind, repository_id, digest) DO UPDATE"
        " SET since = excluded.since, reason = excluded.reason"
        " WHERE excluded.since < gc_reviews.since",
        tuple(v for row in rows for v in row),
    )


def _trash_step(repository_id: int, tag: Row, trash: Trash, now: float, seconds: float) -> Step:
    """The trash row of a deleted tag (`tag`: its name, digest, pushed_by, channel and
    deprecation, as the delete returned them)."""
    if seconds <= 0:
        return Step("SELECT 1", (), "one")
    return Step(
        "INSERT INTO tag_trash (repository_id, name, digest, pushed_by, channel, deprecation,"
        " deleted_at, deleted_by, reason, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (repository_id, *tag[:5], now, trash.deleted_by, trash.reason, now + seconds),
    )
