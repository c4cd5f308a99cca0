"""Online garbage collection: what nothing references any more leaves, while the registry serves.

There is no mark phase over all storage. The transactions that drop a reference (a manifest
deleted, a blob unlinked) or add a blob no manifest may ever reference (an upload, a mount)
queue a review of what they touched, with the time; a pass reviews only the queued reviews
older than the grace period, a batch per transaction, each deciding under the row lock of what
it may delete (db/gc.py says how that keeps it safe against pushes). So a pass costs what is
queued, not what is stored, and runs while pushes and pulls go on.

The server runs a pass every `gc_interval_seconds` under the `gc` lease (one node at a time);
`seawall gc` runs one now. Each pass is audited with its totals. The server hands its passes
to a `PassRunner` (services/gc_process.py: a child process), so that a pass's Python never
shares a worker's interpreter and event loop with the requests it serves.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from seawall.db.gc import KINDS, GcStore, Tally
from seawall.db.schedules import ScheduleStore
from seawall.domain.audit import AuditAction, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.services.audit import AuditLog
from seawall.storage.base import BlobStore

LEASE = "gc"
ORPHAN_LEASE = "gc-orphans"
ORPHAN_SWEEP_SECONDS = 86_400.0
DRY_RUN_SECONDS = 5.0  # a dry run's transaction holds what pushes need: it stops after this
# On SQLite a batch is sized to hold the one writer about this long: while other connections
# write, 1 ms (a push's transaction waits at most about that for it; measured under load,
# manifest PUT p99 during a pass: 1.21x idle at 3 ms, 0.87x at 1 ms throughout with the pass
# 40% longer, 0.94x as it is now), and 3 ms when nobody else writes (fewer, fuller batches:
# the pass is what runs).
SQLITE_BATCH_SECONDS = 0.003
SQLITE_BUSY_BATCH_SECONDS = 0.001
# The registry counts as busy for this long after a batch found that others wrote since the
# one before it. A batch and its pause last ~10 ms while pushes commit ~100 times a second, so
# about two gaps in five have no commit in them: read alone, each flips the pass to its quiet
# pace and back (measured: blob push p99 during a pass 1.16x idle, 1.02x held for a second).
BUSY_MEMORY_SECONDS = 1.0
MAX_CONTENDED = 10  # batches of a kind that may give way to pushes before the pass moves on


@runtime_checkable
class GcCounters(Protocol):
    """Where a pass's figures go (the server's metrics)."""

    def collected(self, tally: Tally, seconds: float, due: int) -> None:
        """A pass finished: what it removed, how long it took, the reviews still due."""


class PassRunner(Protocol):
    """Runs a pass somewhere other than this process, and gives back its report."""

    async def run(
        self, origin: Origin, *, grace_seconds: float, dry_run: bool, orphans: bool
    ) -> PassReport:
        """`GarbageCollector.run` there, over the same database and storage, audited as done by
        `origin`. Raises `RegistryError(UNAVAILABLE)` when the pass failed there."""


@dataclass(frozen=True, slots=True)
class PassReport:
    started_at: float
    seconds: float
    grace_seconds: float
    dry_run: bool
    tally: Tally
    due: int  # reviews due after the pass (skipped: another pass holds them)
    queued: int  # reviews queued in all (most wait for their grace period)
    complete: bool = True  # a dry run stopped at its time budget: what it saw until then

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "seconds": round(self.seconds, 3),
            "grace_seconds": self.grace_seconds,
            "dry_run": self.dry_run,
            **self.tally.as_dict(),
            "due": self.due,
            "queued": self.queued,
            "complete": self.complete,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PassReport:
        """The report `as_dict` gave (a pass run in another process prints it so)."""
        return cls(
            float(data["started_at"]),
            float(data["seconds"]),
            float(data["grace_seconds"]),
            bool(data["dry_run"]),
            Tally.from_dict(data),
            int(data["due"]),
            int(data["queued"]),
            bool(data["complete"]),
        )


class GarbageCollector:
    def __init__(
        self,
        store: GcStore,
        blobs: BlobStore,
        audit: AuditLog,
        schedules: ScheduleStore,
        *,
        grace_seconds: float,
        interval_seconds: float,
        batch: int,
        counters: GcCounters | None = None,
        clock: Clock = SYSTEM_CLOCK,
        node: str = "",
        orphan_files: Callable[[float, bool], Awaitable[tuple[int, int]]] | None = None,
        runner: PassRunner | None = None,
    ) -> None:
        self.store = store
        self.blobs = blobs
        self.audit = audit
        self.schedules = schedules
        self.grace_seconds = grace_seconds
        self.interval_seconds = interval_seconds
        self.batch = batch
        self.counters = counters
        self.clock = clock
        self.node = node
        # Walks storage for blob files no row names (fsck's check): not part of a pass, whose
        # cost must not grow with storage; `run(orphans=True)` and a daily scheduled sweep.
        self.orphan_files = orphan_files
        # Where `run` sends a pass (the server: a child process); None: this process runs it.
        self.runner = runner
        # Pause after each batch, as a multiple of the time it took. PostgreSQL: 3x, a quarter
        # of the time (measured: 1x kept the p99 of pushes during a pass at 1.3-1.7x idle, 3x
        # at 1.0-1.4x). SQLite, while other connections write (pushes, pulls' audit): 9x, the
        # one writer a tenth of the time, since each push's transactions queue behind the
        # batch that holds it (traced at 4x under load: their wait for it went from 0.55 to
        # 1.33 ms on average and 0.9 to 4.1 ms at p90, the pass holding it 15% of the time);
        # with nobody else writing, 1x, as long as the batch took.
        self.busy_yield_factor = 9.0 if store.backend.dialect == "sqlite" else 3.0
        self.idle_yield_factor = 1.0 if store.backend.dialect == "sqlite" else 3.0
        # SQLite has one writer: a push waits for the batch that holds it, so batches there
        # are sized to hold it about this long, the shorter while others write. PostgreSQL
        # locks rows: the configured size.
        sqlite = store.backend.dialect == "sqlite"
        self.batch_seconds = SQLITE_BATCH_SECONDS if sqlite else None
        self.busy_batch_seconds = SQLITE_BUSY_BATCH_SECONDS if sqlite else None
        self._busy_until = -1.0  # the clock's monotonic time until which the registry is busy

    async def run(
        self,
        origin: Origin,
        *,
        grace_seconds: float | None = None,
        dry_run: bool = False,
        orphans: bool = False,
    ) -> PassReport:
        """One pass now: every review due (queued before now minus the grace period), in
        order, a batch per transaction. A dry run works the pass out in one transaction that
        it rolls back, so it reports what would go without removing anything. With a `runner`,
        the pass (a dry run too: it holds SQLite's writer for up to 5 s) runs there."""
        grace = self.grace_seconds if grace_seconds is None else grace_seconds
        if self.runner is None or not (orphans or await self._has_work(grace)):
            # Nothing due: not worth a process (~65 MB for a second) to find that out.
            return await self._run_here(origin, grace, dry_run, orphans)
        report = await self.runner.run(
            origin, grace_seconds=grace, dry_run=dry_run, orphans=orphans
        )
        if not dry_run and self.counters is not None:  # the child has none: they are ours
            self.counters.collected(report.tally, report.seconds, report.due)
        return report

    async def _has_work(self, grace: float) -> bool:
        now = self.clock.now()
        return await self.store.has_work(now, now - grace)

    async def _run_here(
        self, origin: Origin, grace: float, dry_run: bool, orphans: bool
    ) -> PassReport:
        now = self.clock.now()
        cutoff = now - grace
        started = time.perf_counter()
        complete = True
        if dry_run:
            tally, complete = await self.store.dry_run(now, cutoff, DRY_RUN_SECONDS)
        else:
            tally = Tally(trash_expired=await self.store.purge_trash(now))
            size = self.batch
            for kind in KINDS:
                await self.store.analyze_queue()
                contended = 0
                while True:
                    reviewed, batch, held = await self.store.review(
                        kind, now, cutoff, size, self.blobs.remove
                    )
                    tally.add(batch)
                    self._note_others(self.store.others_wrote)
                    if reviewed > 0:
                        size = self._next_size(size, held)
                        # Leave the database (on SQLite its one writer) and the CPU to pushes
                        # and pulls for a while: a pass is never urgent.
                        await asyncio.sleep(max(0.002, self._pause_factor() * held))
                    if reviewed < 0:  # gave way to pushes: again in a moment, or next pass
                        contended += 1
                        if contended >= MAX_CONTENDED:
                            break
                        await asyncio.sleep(0.05 * contended)
                    elif not reviewed:  # (a review may queue more of its kind: a cascade)
                        break
        if orphans and self.orphan_files is not None:
            found, removed = await self.orphan_files(grace, dry_run)
            tally.orphan_files = found if dry_run else removed  # a dry run: what would go
        seconds = time.perf_counter() - started
        due, queued = await self.store.pending(cutoff)
        report = PassReport(now, seconds, grace, dry_run, tally, due, queued, complete)
        if not dry_run:
            await self.audit.record(
                origin,
                AuditAction.GARBAGE_COLLECTED,
                reason=f"grace {_duration(grace)}",
                detail={
                    k: v
                    for k, v in report.as_dict().items()
                    if v and k not in ("dry_run", "complete")
                },
            )
            if self.counters is not None:
                self.counters.collected(tally, seconds, due)
        return report

    def _note_others(self, wrote: bool) -> None:
        """After a batch: whether others wrote since the one before (`GcStore.others_wrote`)."""
        if wrote:
            self._busy_until = self.clock.monotonic() + BUSY_MEMORY_SECONDS

    def _busy(self) -> bool:
        """Whether others wrote within the last `BUSY_MEMORY_SECONDS`."""
        return self.clock.monotonic() < self._busy_until

    def _pause_factor(self) -> float:
        """How long to pause after a batch, as a multiple of its time: longer while the
        registry writes."""
        return self.busy_yield_factor if self._busy() else self.idle_yield_factor

    def _next_size(self, size: int, held: float) -> int:
        """The next batch's size after one of `size` held the database `held` seconds:
        halved when it held SQLite's writer longer than its target (`busy_batch_seconds`
        while others write, else `batch_seconds`), grown by a quarter (up to the configured
        batch) when it took less than half of that."""
        target = self.busy_batch_seconds if self._busy() else self.batch_seconds
        if target is None:
            return size
        if held > target:
            return max(1, size // 2)
        if held < target / 2:
            return min(self.batch, size + max(1, size // 4))
        return size

    async def scheduled(self) -> PassReport | None:
        """A pass if one is due (every `interval_seconds`) and no other node runs one; the
        lease outlives any pass, and the next claim takes it over if this process died."""
        now = self.clock.now()
        lease = max(self.interval_seconds, 600.0)
        if not await self.schedules.claim(LEASE, self.node, lease, self.interval_seconds, now):
            return None
        # Once a day, the pass also sweeps storage for files no row names.
        orphans = self.orphan_files is not None and await self.schedules.claim(
            ORPHAN_LEASE, self.node, 3600.0, ORPHAN_SWEEP_SECONDS, now
        )
        report: PassReport | None = None
        try:
            report = await self.run(Origin.system(), orphans=orphans)
        finally:
            if orphans:
                swept = {"orphan_files": report.tally.orphan_files} if report else {}
                await self.schedules.finish(
                    ORPHAN_LEASE, self.node, json.dumps(swept), self.clock.now()
                )
            result = json.dumps(report.as_dict() if report else {"failed": True})
            await self.schedules.finish(LEASE, self.node, result, self.clock.now())
        return report

    async def due(self) -> int:
        """Reviews past their grace period, waiting for a pass."""
        return (await self.store.pending(self.clock.now() - self.grace_seconds))[0]

    async def status(self) -> dict[str, Any]:
        """The queue now and the last scheduled pass."""
        due, queued = await self.store.pending(self.clock.now() - self.grace_seconds)
        last = await self.schedules.last(LEASE)
        return {
            "grace_seconds": self.grace_seconds,
            "interval_seconds": self.interval_seconds,
            "due": due,
            "queued": queued,
            "last_pass": last,
        }


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
