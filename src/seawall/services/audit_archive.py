"""`AuditArchiver`: moving the oldest audit rows into files without losing the proof, and
verifying the table.

The file format is in audit_files.py (sequence numbers zero-padded in names, so they sort in
chain order). Rows are
verified while they are written, so a broken chain is never archived (that would launder the
tampering); only then are they removed from the table, in the same transaction that records the
archive as the chain's new anchor. Archives chain to each other as the rows did.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from seawall.db.audit import Anchor, ArchiveRecord, AuditStore
from seawall.domain.audit import (
    GENESIS,
    AuditAction,
    Break,
    Origin,
    Outcome,
    StoredEvent,
    timestamp,
    verify_chain,
)
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.services.audit import AuditLog
from seawall.services.audit_files import (
    ArchiveFile,
    Manifest,
    Verification,
    manifest_path,
    write_durably,
)

LEASE_SECONDS = 600  # one file's work; the lease is taken again for the next file
FILE_ROWS = 1_000_000  # rows per archive file: bounds a file and the delete that follows it
BATCH_ROWS = 2000  # rows verified and compressed at a time, off the event loop
VERIFY_ATTEMPTS = 3  # walks of the table when archiving cuts rows under one


class ChainBroken(Exception):
    """The rows do not prove out, so they are not archived."""

    def __init__(self, broken: Break) -> None:
        super().__init__(f"audit log broken at row {broken.seq}: {broken.reason}")
        self.broken = broken


class ArchiveBusy(Exception):
    """Another process (a server's retention, another command) is archiving."""


@dataclass(frozen=True, slots=True)
class Archived:
    path: Path
    first_seq: int
    last_seq: int
    rows: int
    last_hash: str


class AuditArchiver:
    def __init__(
        self,
        store: AuditStore,
        log: AuditLog,
        directory: Path,
        file_rows: int = FILE_ROWS,
        batch_rows: int = BATCH_ROWS,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.log = log
        self.directory = directory
        self.file_rows = file_rows
        self.batch_rows = batch_rows
        self.clock = clock  # retention ages, the archive lease, archive timestamps

    async def archive_before(self, at: str, origin: Origin) -> list[Archived]:
        """Archive every row older than `at` (the stored time form); [] when there is none."""
        last_seq = await self.store.last_seq_before(at)
        return [] if last_seq is None else await self._archive_until(last_seq, origin)

    async def enforce(
        self, max_rows: int, max_age_days: int, now: float | None = None
    ) -> list[Archived]:
        """Archive what the retention limits (0: none) put beyond the table. A process that
        finds another archiving leaves the work to it."""
        now = self.clock.now() if now is None else now
        targets: list[int | None] = []
        if max_age_days > 0:
            cutoff = timestamp(now - max_age_days * 86400)
            targets.append(await self.store.last_seq_before(cutoff))
        if max_rows > 0:
            head_seq, _ = await self.store.head()
            anchor = await self.store.anchor()
            if head_seq - anchor.next_seq + 1 > max_rows:  # spares the OFFSET scan otherwise
                targets.append(await self.store.seq_keeping(max_rows))
        through = max((t for t in targets if t is not None), default=None)
        if through is None:
            return []
        try:
            return await self._archive_until(through, Origin.system())
        except ArchiveBusy:
            return []

    async def _archive_until(self, through: int, origin: Origin) -> list[Archived]:
        """Archive up to row `through` a file at a time, each under the archive lease."""
        done: list[Archived] = []
        while True:
            if not await self.store.take_archive_lease(self.clock.now(), LEASE_SECONDS):
                if done:  # another archiver took over between two files
                    return done
                raise ArchiveBusy("another process is archiving the audit log")
            try:
                anchor = await self.store.anchor()
                if anchor.next_seq > through:
                    return done
                last = min(through, anchor.next_seq + self.file_rows - 1)
                archived = await self.archive_through(last, origin)
            finally:
                await self.store.release_archive_lease()
            if archived is None:
                return done
            done.append(archived)

    async def archive_through(self, last_seq: int, origin: Origin) -> Archived | None:
        """Archive the rows from the anchor through `last_seq` into one file and cut them from
        the table. The caller holds the archive lease. None when nothing is that old."""
        anchor = await self.store.anchor()
        first = anchor.next_seq
        if last_seq < first:
            return None
        try:
            written = await self._write(anchor, last_seq)
        except ChainBroken as exc:
            await self.log.record(
                origin, AuditAction.AUDIT_ARCHIVED, Outcome.FAILED, reason=str(exc)
            )
            raise
        path, manifest = written
        await self.store.cut(
            ArchiveRecord(
                first_seq=first,
                last_seq=last_seq,
                previous_hash=anchor.previous_hash,
                last_hash=manifest.last_hash,
                rows=manifest.rows,
                path=str(path),
                file_sha256=manifest.file_sha256,
                created_at=self.clock.now(),
            )
        )
        await self.log.record(
            origin,
            AuditAction.AUDIT_ARCHIVED,
            detail={
                "file": str(path),
                "first_seq": first,
                "last_seq": last_seq,
                "rows": manifest.rows,
                "first_hash": manifest.first_hash,
                "last_hash": manifest.last_hash,
            },
        )
        return Archived(path, first, last_seq, manifest.rows, manifest.last_hash)

    async def _write(self, anchor: Anchor, last_seq: int) -> tuple[Path, Manifest]:
        """Verify and write the rows anchor..last_seq, then their manifest, both durably."""
        name = f"audit-{anchor.next_seq:012d}-{last_seq:012d}.jsonl.gz"
        file = await asyncio.to_thread(ArchiveFile, self.directory, name)
        chain = _Chain(anchor)
        first_hash = ""
        try:
            rows = self.store.walk(anchor.next_seq - 1, last_seq)
            async for batch in _batches(rows, self.batch_rows):
                broken = chain.check(batch)
                if broken is not None:
                    raise ChainBroken(broken)
                first_hash = first_hash or batch[0].hash
                await asyncio.to_thread(file.write, batch)
            if chain.next_seq <= last_seq:
                missing = f"rows {chain.next_seq}..{last_seq} are missing"
                raise ChainBroken(Break(chain.next_seq, missing))
            sha256 = await asyncio.to_thread(file.commit)
        except BaseException:
            file.abort()
            raise
        manifest = Manifest(
            first_seq=anchor.next_seq,
            last_seq=last_seq,
            rows=chain.rows,
            previous_hash=anchor.previous_hash,
            first_hash=first_hash,
            last_hash=chain.previous,
            file_sha256=sha256,
            created_at=timestamp(self.clock.now()),
        )
        await asyncio.to_thread(write_durably, manifest_path(file.final), manifest.to_json())
        return file.final, manifest

    async def verify_table(self) -> Verification:
        """Prove the rows in the table from the anchor up to the chain head, and that the
        archive records chain to each other. A break seen while a server archived (and cut)
        rows under the walk is no break: the walk starts again from the new anchor."""
        for _ in range(VERIFY_ATTEMPTS - 1):
            anchor = await self.store.anchor()
            verified = await self._verify_from(anchor)
            if verified.ok or await self.store.anchor() == anchor:
                return verified
        return await self._verify_from(await self.store.anchor())

    async def _verify_from(self, anchor: Anchor) -> Verification:
        head_seq, head_hash = await self.store.head()
        notes: list[str] = []
        chain = _Chain(anchor)
        broken = await self._check_archive_records(notes)
        hash_at_head = anchor.previous_hash if head_seq == anchor.next_seq - 1 else None
        if broken is None:
            async for batch in _batches(self.store.walk(anchor.next_seq - 1), self.batch_rows):
                broken = chain.check(batch)
                if broken is not None:
                    break
                hash_at_head = next((r.hash for r in batch if r.seq == head_seq), hash_at_head)
        last = chain.next_seq - 1
        if broken is None and last < head_seq:
            reason = f"rows {last + 1}..{head_seq} are missing: the chain head is row {head_seq}"
            broken = Break(last + 1, reason)
        elif broken is None and hash_at_head != head_hash:
            reason = f"the chain head (row {head_seq}, {head_hash}) is not this row's hash"
            broken = Break(head_seq, reason)
        elif broken is None and last > head_seq:
            now_seq, _ = await self.store.head()  # rows appended while this walk ran are fine
            if last > now_seq:
                reason = f"rows {now_seq + 1}..{last} were not written through the chain head"
                broken = Break(now_seq + 1, reason)
        pending = await self.store.pending_count()
        if pending:
            notes.append(
                f"{pending} row(s) are committed with their changes but not chained yet; a"
                " running server chains them within audit_flush_seconds"
            )
        return Verification(
            rows=chain.rows,
            first_seq=anchor.next_seq if chain.rows else None,
            last_seq=last if chain.rows else None,
            last_hash=chain.previous,
            broken=broken,
            notes=tuple(notes),
            previous_hash=anchor.previous_hash,
        )

    async def _check_archive_records(self, notes: list[str]) -> Break | None:
        previous: ArchiveRecord | None = None
        for record in await self.store.archives():
            if previous is None:
                if record.first_seq != 1:
                    notes.append(
                        f"the oldest recorded archive starts at row {record.first_seq}; rows"
                        " before it are not proved here"
                    )
                elif record.previous_hash != GENESIS:
                    reason = f"archive {record.path} does not start from the chain's beginning"
                    return Break(1, reason)
            elif (
                record.first_seq != previous.last_seq + 1
                or record.previous_hash != previous.last_hash
            ):
                reason = f"archive {record.path} does not follow archive {previous.path}"
                return Break(record.first_seq, reason)
            previous = record
        return None


class _Chain:
    """Verifies rows a batch at a time, carrying the hash and the next seq across batches."""

    def __init__(self, anchor: Anchor) -> None:
        self.next_seq = anchor.next_seq
        self.previous = anchor.previous_hash
        self.rows = 0

    def check(self, batch: Sequence[StoredEvent]) -> Break | None:
        report = verify_chain(batch, self.previous, self.next_seq)
        self.rows += report.rows
        self.next_seq += report.rows
        self.previous = report.last_hash
        return report.broken


async def _batches(rows: AsyncIterator[StoredEvent], size: int) -> AsyncIterator[list[StoredEvent]]:
    batch: list[StoredEvent] = []
    async for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
