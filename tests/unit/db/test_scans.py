"""Scan job leases and retry delays run on the store's clock: a fake one drives them."""

from __future__ import annotations

from seawall.db.scans import ScanStore
from seawall.db.store import MetadataStore
from tests.support.clock import FakeClock
from tests.support.databases import Database

REPOSITORY = "team/app"
DIGEST = "sha256:" + "ab" * 32
LEASE = 60.0


def test_a_lapsed_lease_lets_another_worker_take_the_job(
    sqlite_database: Database, clock: FakeClock
) -> None:
    async def scenario(store: MetadataStore) -> None:
        scans = ScanStore(store.backend, clock=clock)
        assert await scans.enqueue(REPOSITORY, DIGEST)
        job = await scans.claim("worker-a", LEASE)
        assert job is not None
        assert job.lease_until == clock.now() + LEASE
        clock.advance(LEASE - 1)
        assert await scans.claim("worker-b", LEASE) is None  # still worker-a's
        assert await scans.renew(job, "worker-a", LEASE)  # now until +2 * LEASE - 1
        clock.advance(LEASE)
        assert await scans.claim("worker-b", LEASE) is None  # the lease ends just now
        clock.advance(1)
        taken = await scans.claim("worker-b", LEASE)
        assert taken is not None
        assert (taken.id, taken.worker, taken.attempts) == (job.id, "worker-b", 2)
        assert not await scans.renew(job, "worker-a", LEASE)  # worker-a lost it

    sqlite_database.run(scenario)


def test_a_retried_job_waits_out_its_delay(sqlite_database: Database, clock: FakeClock) -> None:
    async def scenario(store: MetadataStore) -> None:
        scans = ScanStore(store.backend, clock=clock)
        await scans.enqueue(REPOSITORY, DIGEST)
        job = await scans.claim("worker-a", LEASE)
        assert job is not None
        await scans.retry(job, "worker-a", 30.0, "registry busy")
        clock.advance(29)
        assert await scans.claim("worker-a", LEASE) is None
        clock.advance(1)
        again = await scans.claim("worker-a", LEASE)
        assert again is not None
        assert (again.id, again.attempts, again.error) == (job.id, 2, "registry busy")

    sqlite_database.run(scenario)
