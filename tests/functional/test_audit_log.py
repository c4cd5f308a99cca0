"""`AuditLog` and `AuditStore` on both databases: when events are written, in what order, how the
chain is continued by concurrent writers, and what a full queue does."""

from __future__ import annotations

import asyncio
from typing import Any

from seawall.db.audit import AuditFilter, AuditStore
from seawall.db.store import MetadataStore
from seawall.domain.audit import (
    GENESIS,
    ActorKind,
    AuditAction,
    Origin,
    StoredEvent,
    verify_chain,
)
from seawall.services.audit import AuditLog
from tests.support.databases import Database

ALICE = Origin("alice", ActorKind.USER, "10.1.2.3", "skopeo/1.13", "req-1")


async def _all(store: AuditStore) -> list[StoredEvent]:
    return [row async for row in store.walk()]


class Recording:
    """Forwarder that keeps what it was offered."""

    def __init__(self) -> None:
        self.rows: list[StoredEvent] = []

    def offer(self, rows: Any) -> None:
        self.rows.extend(rows)

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass


def test_record_writes_before_returning_and_later_waits_for_the_batch(database: Database) -> None:
    async def scenario(meta: MetadataStore) -> None:
        store = AuditStore(meta.backend)
        forwarded = Recording()
        log = AuditLog(store, flush_seconds=30, forwarders=[forwarded])
        await log.start()
        try:
            log.later(ALICE, AuditAction.MANIFEST_PULLED, repository="a/b", reference="v1")
            await asyncio.sleep(0.2)
            assert await store.count() == 0  # queued: the flush interval has not passed
            await log.record(ALICE, AuditAction.MANIFEST_PUSHED, repository="a/b", digest="d")
            # The durable write carried the queued pull with it (group commit).
            rows = await _all(store)
            assert [r.event.action for r in rows] == ["manifest:pulled", "manifest:pushed"]
            assert rows[1].event.namespace == "a" and rows[1].event.actor == "alice"
            assert rows[1].event.user_agent == "skopeo/1.13"
            assert [r.seq for r in forwarded.rows] == [1, 2]
            log.later(ALICE, AuditAction.MANIFEST_PULLED, repository="a/b", reference="v2")
        finally:
            await log.close()  # flushes what is queued
        rows = await _all(store)
        assert rows[-1].event.reference == "v2"
        assert verify_chain(rows, GENESIS, 1).broken is None
        assert await store.head() == (rows[-1].seq, rows[-1].hash)

    database.run(scenario)


def test_batched_events_are_written_within_the_flush_interval(database: Database) -> None:
    async def scenario(meta: MetadataStore) -> None:
        store = AuditStore(meta.backend)
        log = AuditLog(store, flush_seconds=0.1)
        await log.start()
        try:
            for i in range(50):
                log.later(ALICE, AuditAction.MANIFEST_PULLED, repository="a/b", reference=f"{i}")
            for _ in range(50):
                if await store.count() == 50:
                    break
                await asyncio.sleep(0.05)
            assert await store.count() == 50
        finally:
            await log.close()

    database.run(scenario)


def test_a_full_queue_drops_and_counts_instead_of_growing(database: Database) -> None:
    async def scenario(meta: MetadataStore) -> None:
        store = AuditStore(meta.backend)
        log = AuditLog(store, flush_seconds=30, queue_limit=100)
        await log.start()
        try:
            for i in range(150):
                log.later(ALICE, AuditAction.MANIFEST_PULLED, reference=str(i))
            assert log.dropped == 50
        finally:
            await log.close()
        assert await store.count() == 100

    database.run(scenario)


def test_concurrent_writers_continue_one_chain(database: Database) -> None:
    """Three logs on separate connections (as three server processes would be) writing at once:
    sequence numbers have no gaps and every hash proves out."""

    async def scenario(meta: MetadataStore) -> None:
        stores = [AuditStore(meta.backend)]
        others = []
        for _ in range(2):
            other = MetadataStore(type(meta.backend)(*_backend_args(meta)))
            await other.start()
            others.append(other)
            stores.append(AuditStore(other.backend))
        logs = [AuditLog(s, flush_seconds=0.05) for s in stores]
        for log in logs:
            await log.start()
        try:
            await asyncio.gather(
                *(
                    log.record(ALICE, AuditAction.MANIFEST_PUSHED, reference=f"{n}-{i}")
                    for n, log in enumerate(logs)
                    for i in range(40)
                )
            )
        finally:
            for log in logs:
                await log.close()
            for other in others:
                await other.close()
        rows = await _all(stores[0])
        assert len(rows) == 120
        assert verify_chain(rows, GENESIS, 1).broken is None
        assert {r.event.reference for r in rows} == {
            f"{n}-{i}" for n in range(3) for i in range(40)
        }

    database.run(scenario)


def _backend_args(meta: MetadataStore) -> tuple[Any, ...]:
    backend: Any = meta.backend
    if backend.dialect == "sqlite":
        return (backend.path,)
    return (backend.dsn, 4)


def test_query_filters_newest_first(database: Database) -> None:
    async def scenario(meta: MetadataStore) -> None:
        store = AuditStore(meta.backend)
        log = AuditLog(store)
        bob = Origin("bob", ActorKind.ROBOT, "10.0.0.9")
        await log.record(ALICE, AuditAction.MANIFEST_PUSHED, repository="a/one")
        await log.record(bob, AuditAction.MANIFEST_PUSHED, repository="a/two")
        await log.record(ALICE, AuditAction.MANIFEST_DELETED, repository="b/one")
        newest = await store.query(AuditFilter())
        assert [r.seq for r in newest] == [3, 2, 1]
        assert [r.seq for r in await store.query(AuditFilter(actor="alice"))] == [3, 1]
        assert [r.seq for r in await store.query(AuditFilter(namespace="a"))] == [2, 1]
        assert [r.seq for r in await store.query(AuditFilter(repository="a/two"))] == [2]
        assert [
            r.seq for r in await store.query(AuditFilter(action="manifest:pushed"), before=2)
        ] == [1]
        assert await store.query(AuditFilter(since=newest[0].event.at, actor="bob")) == []

    database.run(scenario)


def test_close_writes_every_queued_event_even_mid_write(database: Database) -> None:
    """Shutdown asks the writer to stop instead of cancelling it: a batch being written when
    the server stops is not lost (cancelling one dropped 1,000 rows on PostgreSQL)."""

    async def scenario(meta: MetadataStore) -> None:
        store = AuditStore(meta.backend)
        log = AuditLog(store, flush_seconds=0.01)
        await log.start()
        for i in range(5000):
            log.later(ALICE, AuditAction.MANIFEST_PULLED, reference=str(i))
            if i % 1000 == 999:
                await asyncio.sleep(0.005)  # let a write start
        await log.close()
        assert await store.count() == 5000

    database.run(scenario)
