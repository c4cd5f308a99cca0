"""`AuditLog`: how the rest of Seawall records events.

A change to the registry records itself through `recorder` / `if_done`: its rows are written
in the change's own transaction (to `audit_pending`), and the change returns once the writer
task has chained them. `record` writes an event that goes with no change (a login, a refusal)
before it returns. `later` queues an event and returns at once: pulls use it, so a pull never
waits for the database. One writer task per process does all three: a waiting `record` and the
pending rows are written at once together with whatever is queued (group commit); otherwise the
queue is written every `flush_seconds`, so a crash loses at most that interval of queued pulls
(never a change's rows, which are committed with it). Chained rows go to the forwarders (syslog,
webhook), which never block the writer.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

import structlog

from seawall.db.audit import AuditStore, Trail
from seawall.db.store import Change
from seawall.domain.audit import AuditAction, AuditEvent, Origin, Outcome, StoredEvent
from seawall.domain.clock import SYSTEM_CLOCK, Clock

log = structlog.get_logger("seawall.audit")
BATCH = 1000  # events per transaction
T = TypeVar("T")


class Forwarder(Protocol):
    """Ships committed rows somewhere else, as they happen."""

    def offer(self, rows: Sequence[StoredEvent]) -> None:
        """Queue rows for sending; never blocks, drops (and counts) when its queue is full."""

    async def start(self) -> None: ...

    async def close(self) -> None:
        """Send what is queued, within a short grace period."""


class AuditCounters(Protocol):
    """Where the log reports what it wrote and what it had to drop (the server's metrics)."""

    def offer(self, rows: Sequence[StoredEvent]) -> None:
        """Rows just committed."""

    def dropped(self, stage: str, count: int) -> None:
        """Events lost at `stage` ("queue", or a forwarder's name)."""


class AuditLog:
    def __init__(
        self,
        store: AuditStore,
        flush_seconds: float = 1.0,
        queue_limit: int = 100_000,
        forwarders: Sequence[Forwarder] = (),
        counters: AuditCounters | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.store = store
        self.clock = clock  # stamps events
        self.counters = counters
        self.flush_seconds = flush_seconds
        self.queue_limit = queue_limit
        self.forwarders = list(forwarders)
        self.dropped = 0
        # Pull events wait here as they came (time, who, what); rows are built by the writer.
        self._queued: list[tuple[float, Origin, AuditAction, Outcome, dict[str, Any]]] = []
        self._waiting: list[tuple[AuditEvent, asyncio.Future[None]]] = []
        # Writes whose rows wait in `audit_pending` until the next chaining pass.
        self._settling: list[asyncio.Future[None]] = []
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        """Start the writer task; without it (commands), `record` writes directly."""
        self._wake = asyncio.Event()
        await self.start_forwarders()
        self._task = asyncio.create_task(self._run(), name="audit-writer")

    async def start_forwarders(self) -> None:
        """Start sending the rows this process chains to the forwarders: `start` does, and a
        command does alone (it writes its rows directly, and `close` gives the forwarders a
        short grace to send them), so a row a command chains, e.g. `image:blocked` after
        `seawall vulndb import`, reaches the webhook and syslog too."""
        for forwarder in self.forwarders:
            await forwarder.start()

    async def close(self) -> None:
        """Write what is queued and stop. The writer is asked to stop, never cancelled in the
        middle of a transaction (that would drop the batch it was writing)."""
        if self._task is not None and self._wake is not None:
            self._closing = True
            self._wake.set()
            await self._task
            self._task = None
        await self._flush()  # anything left (e.g. when the writer had failed)
        for forwarder in self.forwarders:
            await forwarder.close()

    async def record(
        self,
        origin: Origin,
        action: AuditAction,
        outcome: Outcome = Outcome.ALLOWED,
        **where: Any,  # AuditEvent.of's keywords: namespace, repository, reference, digest, …
    ) -> None:
        """Write one event; returns once it is committed."""
        await self.record_all([self.event(origin, action, outcome, **where)])

    def event(
        self,
        origin: Origin,
        action: AuditAction,
        outcome: Outcome = Outcome.ALLOWED,
        **where: Any,
    ) -> AuditEvent:
        """An event stamped now, for `record_all`."""
        return AuditEvent.of(origin, action, outcome, at=self.clock.now(), **where)

    async def record_all(self, events: Sequence[AuditEvent]) -> None:
        """Write events that one action caused (a push and its tag) in one commit, in order."""
        if self._task is None or self._wake is None:
            await self._write(list(events))
            return
        loop = asyncio.get_running_loop()
        waits = []
        for event in events:
            done: asyncio.Future[None] = loop.create_future()
            self._waiting.append((event, done))
            waits.append(done)
        self._wake.set()
        await asyncio.gather(*waits)

    def later(
        self, origin: Origin, action: AuditAction, outcome: Outcome = Outcome.ALLOWED, **where: Any
    ) -> None:
        """Queue one event for the next batch; never waits."""
        if len(self._queued) >= self.queue_limit:
            self.dropped += 1
            if self.counters is not None:
                self.counters.dropped("queue", 1)
            if self.dropped == 1 or self.dropped % 10_000 == 0:
                log.error("audit queue full: events dropped", dropped=self.dropped)
            return
        self._queued.append((self.clock.now(), origin, action, outcome, where))
        if len(self._queued) >= BATCH and self._wake is not None:
            self._wake.set()

    async def _settle(self) -> None:
        """Returns once rows committed to `audit_pending` before this call are chained: by the
        next pass of the writer task (one pass chains every write waiting, in batches), or here
        when there is no writer (commands)."""
        if self._task is None or self._wake is None:
            await self._chain_pending()
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._settling.append(done)
        self._wake.set()
        await done

    async def _chain_pending(self) -> None:
        """Chain every committed pending row, whichever write (or process) left it."""
        while True:
            stored = await self.store.chain_pending(BATCH)
            self._delivered(stored)
            if len(stored) < BATCH:
                return

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._closing:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.flush_seconds)
            self._wake.clear()
            try:
                await self._flush()
            except Exception:
                log.exception("audit write failed; retrying")
                if not self._closing:
                    await asyncio.sleep(min(self.flush_seconds, 1.0))

    async def _flush(self) -> None:
        """Write what is waiting and queued now. Events arriving meanwhile wait for the next
        round: looping until the queue is empty would, under steady pulls, turn one batch per
        interval into a stream of tiny transactions, each paying for a commit."""
        waiting, self._waiting = self._waiting, []
        queued, self._queued = self._queued, []
        settling, self._settling = self._settling, []
        try:
            # Rows a crashed process committed but never chained are picked up here too.
            if settling or await self.store.has_pending():
                await self._chain_pending()
        except BaseException as exc:
            error = exc if isinstance(exc, Exception) else RuntimeError("audit chaining cancelled")
            for done in settling:
                if not done.done():
                    done.set_exception(error)
            self._waiting[:0] = waiting
            self._queued[:0] = queued
            raise
        for done in settling:
            if not done.done():
                done.set_result(None)
        while waiting or queued:
            these, waiting = waiting[:BATCH], waiting[BATCH:]
            room = BATCH - len(these)
            some, queued = queued[:room], queued[room:]
            built = [AuditEvent.of(o, a, out, at=at, **where) for at, o, a, out, where in some]
            events = sorted([e for e, _ in these] + built, key=lambda e: e.at)
            try:
                await self._write(events)
            except BaseException as exc:
                error = exc if isinstance(exc, Exception) else RuntimeError("audit write cancelled")
                for _, done in these:
                    if not done.done():
                        done.set_exception(error)
                # Kept for the next attempt, ahead of what arrived since.
                self._waiting[:0] = waiting
                self._queued[:0] = some + queued
                raise
            for _, done in these:
                if not done.done():
                    done.set_result(None)

    def recorder(self, events: Callable[[T], Sequence[AuditEvent]]) -> Callable[[T], Trail]:
        """How a store's write is recorded: `events(outcome)` are its rows, worked out from
        what the write did (the outcome is filled in inside its transaction), committed in that
        transaction and chained right after (the write returns once they are)."""
        return lambda outcome: self.store.trail(lambda: events(outcome), self._settle)

    def if_done(
        self,
        origin: Origin,
        action: AuditAction,
        outcome: Outcome = Outcome.ALLOWED,
        **where: Any,
    ) -> Callable[[Change], Trail]:
        """The one audit row of a store write, committed in the write's transaction if it changed
        something (a request that changes nothing writes nothing)."""

        def events(change: Change) -> list[AuditEvent]:
            return [self.event(origin, action, outcome, **where)] if change.done else []

        return self.recorder(events)

    async def _write(self, events: list[AuditEvent]) -> None:
        self._delivered(await self.store.append(events))

    def _delivered(self, stored: list[StoredEvent]) -> None:
        if self.counters is not None:
            self.counters.offer(stored)
        for forwarder in self.forwarders:
            forwarder.offer(stored)
