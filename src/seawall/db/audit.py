"""`AuditStore`: appending to the hash-chained audit log, reading it back, and cutting archived
rows off its start. Rows are only ever inserted; the one delete removes rows that an archive
file already holds (see services/audit_archive.py). The transaction that appends pull rows also
counts them (seawall.db.pulls)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from seawall.db.pulls import count_steps
from seawall.db.store import Each, Row, Rows, SqlBackend, Step, Then
from seawall.domain.audit import (
    COLUMNS,
    GENESIS,
    AuditEvent,
    AuditFilter,
    StoredEvent,
    chain_hash,
)

# Built once from the fixed column names of domain/audit.py; values always go as parameters.
_SELECT = f"SELECT seq, {', '.join(COLUMNS)}, hash FROM audit_events"  # noqa: S608
_ROW_COLUMNS = ("seq", *COLUMNS, "hash")
PAGE = 5000
_INSERT_PENDING = f"INSERT INTO audit_pending ({', '.join(COLUMNS)}) VALUES "  # noqa: S608
_PENDING_ROW = f"({', '.join('?' for _ in COLUMNS)})"
_SELECT_PENDING = f"SELECT id, {', '.join(COLUMNS)} FROM audit_pending"  # noqa: S608
# Up to this many pending rows go in as one multi-row INSERT; more go as one COPY (a round trip
# for its column types on top).
FEW_ROWS = 8


@dataclass(frozen=True, slots=True)
class Anchor:
    """Where the stored chain starts: after the last archive, or at the beginning."""

    next_seq: int
    previous_hash: str


@dataclass(frozen=True, slots=True)
class ArchiveRecord:
    first_seq: int
    last_seq: int
    previous_hash: str
    last_hash: str
    rows: int
    path: str
    file_sha256: str
    created_at: float


def _stored(row: Row) -> StoredEvent:
    values = dict(zip(COLUMNS, row[1:-1], strict=True))
    return StoredEvent(int(row[0]), AuditEvent(**values), str(row[-1]))


class AuditStore:
    def __init__(self, backend: SqlBackend) -> None:
        self.backend = backend
        # SQLite's writer already holds the database lock (BEGIN IMMEDIATE); PostgreSQL locks
        # the head row, so concurrent writers in every process queue behind each other.
        self._head_sql = (
            "SELECT seq, hash FROM audit_chain WHERE id = 1 FOR UPDATE"
            if backend.dialect == "postgresql"
            else "SELECT seq, hash FROM audit_chain WHERE id = 1"
        )

    def trail(
        self,
        events: Callable[[], Sequence[AuditEvent]],
        settle: Callable[[], Awaitable[None]] | None = None,
    ) -> Trail:
        """The audit rows of a write transaction, committed with it: `events()`, called at the
        end of the transaction, works them out from what its steps did. They go to
        `audit_pending` in the transaction (taking the chain head there would queue every write
        of every process behind it), and `settle()`, awaited after the commit, returns once
        they are chained (`chain_pending`, in batches)."""
        return Trail(events, settle)

    async def pending_count(self) -> int:
        row = await self.backend.fetchone("SELECT count(*) FROM audit_pending")
        return int(row[0]) if row else 0

    async def has_pending(self) -> bool:
        """Are there committed rows waiting to be chained (a cheap read)?"""
        return await self.backend.fetchone("SELECT 1 FROM audit_pending LIMIT 1") is not None

    async def chain_pending(self, limit: int) -> list[StoredEvent]:
        """Chain up to `limit` committed pending rows, oldest first, in one transaction that
        moves them into the log; the rows as stored. Whoever holds the head does it: a row is
        chained exactly once, by whichever process gets there first."""
        stored: list[StoredEvent] = []

        def chained(results: list[Any]) -> list[Step | Rows | Each]:
            rows = results[1]
            if not rows:
                return []
            events = [AuditEvent(*row[1:]) for row in rows]
            ids = [int(row[0]) for row in rows]
            marks = ", ".join("?" for _ in ids)
            return [
                *_chain(results[0], events, stored),
                # Only placeholders are joined in; the ids go as parameters.
                Step(f"DELETE FROM audit_pending WHERE id IN ({marks})", tuple(ids)),  # noqa: S608
            ]

        await self.backend.transaction(
            [
                Step(self._head_sql, want="one"),
                Step(_SELECT_PENDING + " ORDER BY id LIMIT ?", (limit,), "all"),
                Then(chained),
            ]
        )
        return stored

    async def append(self, events: Sequence[AuditEvent]) -> list[StoredEvent]:
        """Chain and insert `events`, in order, in one transaction; the rows as stored."""
        stored: list[StoredEvent] = []

        def chained(results: list[Any]) -> list[Step | Rows | Each]:
            return _chain(results[0], events, stored)

        await self.backend.transaction([Step(self._head_sql, want="one"), Then(chained)])
        return stored

    async def head(self) -> tuple[int, str]:
        row = await self.backend.fetchone("SELECT seq, hash FROM audit_chain WHERE id = 1")
        return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))

    async def anchor(self) -> Anchor:
        row = await self.backend.fetchone(
            "SELECT last_seq, last_hash FROM audit_archives ORDER BY last_seq DESC LIMIT 1"
        )
        return Anchor(1, GENESIS) if row is None else Anchor(int(row[0]) + 1, str(row[1]))

    async def archives(self) -> list[ArchiveRecord]:
        rows = await self.backend.fetchall(
            "SELECT first_seq, last_seq, previous_hash, last_hash, rows, path, file_sha256,"
            " created_at FROM audit_archives ORDER BY last_seq"
        )
        return [ArchiveRecord(*(r[i] for i in range(8))) for r in rows]

    async def walk(self, after: int = 0, through: int | None = None) -> AsyncIterator[StoredEvent]:
        """Every row with `after` < seq (≤ `through`), in sequence order, a page at a time."""
        while True:
            if through is None:
                rows = await self.backend.fetchall(
                    f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT ?", after, PAGE
                )
            else:
                rows = await self.backend.fetchall(
                    f"{_SELECT} WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                    after,
                    through,
                    PAGE,
                )
            for row in rows:
                yield _stored(row)
            if len(rows) < PAGE:
                return
            after = int(rows[-1][0])

    async def query(
        self, where: AuditFilter, before: int | None = None, limit: int = 100
    ) -> list[StoredEvent]:
        """Newest first, with seq < `before` when given."""
        clauses: list[str] = []
        args: list[Any] = []
        for column in ("actor", "namespace", "repository", "action", "outcome"):
            value = getattr(where, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if where.since is not None:
            clauses.append("at >= ?")
            args.append(where.since)
        if where.until is not None:
            clauses.append("at < ?")
            args.append(where.until)
        if before is not None:
            clauses.append("seq < ?")
            args.append(before)
        sql = _SELECT + (f" WHERE {' AND '.join(clauses)}" if clauses else "")
        rows = await self.backend.fetchall(f"{sql} ORDER BY seq DESC LIMIT ?", *args, limit)
        return [_stored(row) for row in rows]

    async def count(self) -> int:
        row = await self.backend.fetchone("SELECT count(*) FROM audit_events")
        return int(row[0]) if row else 0

    async def last_seq_before(self, at: str) -> int | None:
        """The newest row older than `at` (the stored time form)."""
        row = await self.backend.fetchone("SELECT max(seq) FROM audit_events WHERE at < ?", at)
        return None if row is None or row[0] is None else int(row[0])

    async def seq_keeping(self, newest: int) -> int | None:
        """The last seq to archive so that at most `newest` rows stay."""
        row = await self.backend.fetchone(
            "SELECT seq FROM audit_events ORDER BY seq DESC LIMIT 1 OFFSET ?", newest
        )
        return None if row is None else int(row[0])

    async def take_archive_lease(self, now: float, seconds: float) -> bool:
        """One archiver at a time, across processes and nodes."""
        (count,) = await self.backend.transaction(
            [
                Step(
                    "UPDATE audit_chain SET archive_lease_until = ?"
                    " WHERE id = 1 AND archive_lease_until < ?",
                    (now + seconds, now),
                )
            ],
            durable=False,
        )
        return bool(count)

    async def release_archive_lease(self) -> None:
        await self.backend.transaction(
            [Step("UPDATE audit_chain SET archive_lease_until = 0 WHERE id = 1")], durable=False
        )

    async def cut(self, record: ArchiveRecord) -> None:
        """Remove the archived rows and remember the archive as the chain's new anchor, in one
        transaction; refuse if the rows there are not exactly the archived ones."""

        def check(results: list[Any]) -> list[Step]:
            if results[0] != record.rows:
                raise ArchiveMismatch(
                    f"{results[0]} rows in {record.first_seq}..{record.last_seq}, the archive"
                    f" holds {record.rows}"
                )
            return []

        await self.backend.transaction(
            [
                Step(
                    "DELETE FROM audit_events WHERE seq >= ? AND seq <= ?",
                    (record.first_seq, record.last_seq),
                ),
                Then(check),
                Step(
                    "INSERT INTO audit_archives (first_seq, last_seq, previous_hash, last_hash,"
                    " rows, path, file_sha256, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.first_seq,
                        record.last_seq,
                        record.previous_hash,
                        record.last_hash,
                        record.rows,
                        record.path,
                        record.file_sha256,
                        record.created_at,
                    ),
                ),
            ]
        )


class ArchiveMismatch(Exception):
    pass


def _chain(
    head: Row, events: Sequence[AuditEvent], stored: list[StoredEvent]
) -> list[Step | Rows | Each]:
    """The steps that append `events` to the chain whose head row (seq, hash) is `head`, move
    the head, and add the pulls among them to the pull counts; the rows as they will be stored
    go to `stored`."""
    seq, previous = int(head[0]), str(head[1])
    records = []
    for event in events:
        seq += 1
        previous = chain_hash(previous, event.canonical())
        stored.append(StoredEvent(seq, event, previous))
        records.append((seq, *event, previous))
    return [
        Rows("audit_events", _ROW_COLUMNS, records),
        Step("UPDATE audit_chain SET seq = ?, hash = ? WHERE id = 1", (seq, previous)),
        *count_steps(events),
    ]


@dataclass(slots=True)
class Trail:
    """The end of a write transaction: the audit rows its results call for, inserted into
    `audit_pending` in that transaction; `settle()` then waits until they are chained."""

    events: Callable[[], Sequence[AuditEvent]]
    settle: Callable[[], Awaitable[None]] | None = None
    pending: int = 0

    def steps(self) -> list[Step | Rows | Then]:
        """The steps to run after the transaction's own."""
        return [Then(lambda _results: self._pending(self.events()))]

    def _pending(self, events: Sequence[AuditEvent]) -> list[Step | Rows]:
        self.pending = len(events)
        if not events:
            return []
        if len(events) > FEW_ROWS:
            return [Rows("audit_pending", COLUMNS, [tuple(event) for event in events])]
        # One statement for the few rows a write records: one round trip (and, on SQLite,
        # one hop of the writer thread) however many.
        values = ", ".join(_PENDING_ROW for _ in events)
        row_args = tuple(value for event in events for value in event)
        return [Step(_INSERT_PENDING + values, row_args)]

    async def done(self) -> None:
        """The transaction committed: wait until its rows are chained."""
        if self.pending and self.settle is not None:
            await self.settle()
