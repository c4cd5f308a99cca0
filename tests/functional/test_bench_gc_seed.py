"""The garbage-collection benchmark's registry (bench/gc_db.py), on both databases: it holds
exactly the garbage it says it does, queued past the grace period and no further, so that a
pass over it removes exactly that and the benchmark's figures mean what they say."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from bench.gc_db import HOUR, Shape, blob_path, seed

from seawall.config import Settings
from seawall.db.gc import GcStore, _flat, _keyed
from seawall.db.store import Step
from seawall.domain.audit import Origin
from seawall.wiring import Services
from tests.support.clock import FakeClock
from tests.support.databases import Database, backend_for

SHAPE = Shape(blobs=400, garbage=25, kept=60, layers=3, bases=5)


def test_a_pass_removes_exactly_the_seeded_garbage(database: Database, tmp_path: Path) -> None:
    clock = FakeClock()

    async def scenario() -> None:
        backend = backend_for(database.url)
        await backend.start()
        settings = Settings(data_dir=tmp_path, database_url=database.url, gc_interval_seconds=0)
        services = Services.build(settings, clock=clock, backend=backend)
        try:
            seeded = await seed(backend, tmp_path, SHAPE, clock.now())
            assert (seeded.blobs, len(seeded.garbage), seeded.kept_reviews) == (400, 25, 60)
            unreferenced = await backend.fetchall(
                "SELECT digest FROM blobs WHERE digest NOT IN"
                " (SELECT child_digest FROM manifest_references)"
            )
            assert sorted(str(r[0]) for r in unreferenced) == sorted(seeded.garbage)
            assert seeded.files == len(seeded.garbage) + len(seeded.kept_files)
            assert all(blob_path(tmp_path, d).is_file() for d in seeded.garbage)

            # Queued two hours ago: not yet due with a grace of three, all due with one.
            early = await services.gc.run(Origin.system(), grace_seconds=3 * HOUR)
            assert early.tally.reviewed == 0
            report = await services.gc.run(Origin.system(), grace_seconds=HOUR)
            tally = report.tally
            assert (tally.blobs, tally.blob_links, tally.kept) == (25, 25, 60)
            assert tally.reviewed == 2 * 25 + 60
            assert tally.missing_files == []
            assert report.queued == 0
            left = {str(r[0]) for r in await backend.fetchall("SELECT digest FROM blobs")}
            assert len(left) == 400 - 25
            assert not left.intersection(seeded.garbage)
            assert not any(blob_path(tmp_path, d).exists() for d in seeded.garbage)
            assert all(blob_path(tmp_path, d).is_file() for d in seeded.kept_files)
        finally:
            await services.close()

    asyncio.run(scenario())


def test_seeding_again_adds_a_registry_beside_the_first(database: Database, tmp_path: Path) -> None:
    """The latency benchmark seeds a second registry into the same database."""

    async def scenario() -> None:
        backend = backend_for(database.url)
        await backend.start()
        try:
            first = await seed(backend, tmp_path, SHAPE, FakeClock().now(), prefix="a-")
            second = await seed(backend, tmp_path, SHAPE, FakeClock().now(), prefix="b-")
            row = await backend.fetchone("SELECT COUNT(*) FROM blobs")
            assert row is not None and int(row[0]) == 800
            assert not set(first.garbage).intersection(second.garbage)
            assert not set(first.repository_names).intersection(second.repository_names)
        finally:
            await backend.close()

    asyncio.run(scenario())


def test_a_pass_in_batches_of_more_than_a_thousand_placeholders_finishes(
    database: Database, tmp_path: Path
) -> None:
    """A blob-link batch names each review's (repository, digest): 1,200 reviews are 2,400
    placeholders in one statement. PostgreSQL's placeholder numbering once stopped at 999, and
    the pass then hung with its transaction open; `gc_batch` allows up to 10,000."""
    clock = FakeClock()
    shape = Shape(blobs=1500, garbage=1300, kept=0, layers=1, bases=5)

    async def scenario() -> None:
        backend = backend_for(database.url)
        await backend.start()
        settings = Settings(
            data_dir=tmp_path, database_url=database.url, gc_interval_seconds=0, gc_batch=1200
        )
        services = Services.build(settings, clock=clock, backend=backend)
        try:
            seeded = await seed(backend, tmp_path, shape, clock.now())
            report = await asyncio.wait_for(
                services.gc.run(Origin.system(), grace_seconds=HOUR), 60
            )
            assert (report.tally.blob_links, report.tally.blobs) == (1300, 1300)
            assert report.tally.contended == 0
            assert not any(blob_path(tmp_path, d).exists() for d in seeded.garbage)
        finally:
            await services.close()

    asyncio.run(scenario())


def test_a_pass_plans_its_batches_on_current_statistics(database: Database, tmp_path: Path) -> None:
    """Most blob reviews are queued by the blob-link reviews of the same pass, after the
    queue was last analyzed: PostgreSQL then believes there are none and deleted a batch's
    reviews by a nested loop over every queued one (155 ms a batch of 100 with 10,000 queued;
    the pass grew with the square of its size). Before each kind the pass analyzes the queue."""
    if database.kind != "postgres":
        return  # SQLite plans from sqlite_stat1, which a pass leaves alone
    clock = FakeClock()
    shape = Shape(blobs=3000, garbage=2000, kept=0, layers=1, bases=5)

    async def scenario() -> None:
        backend = backend_for(database.url)
        await backend.start()
        store = GcStore(backend)
        try:
            await seed(backend, tmp_path, shape, clock.now())
            now = clock.now()
            while (await store.review("blob-link", now, now - HOUR, 500, lambda _: True))[0] > 0:
                pass
            queued = await backend.fetchone("SELECT COUNT(*) FROM gc_reviews WHERE kind = 'blob'")
            assert queued is not None and int(queued[0]) == 2000
            await store.analyze_queue()
            keys = [
                (0, str(row[0]))
                for row in await backend.fetchall(
                    "SELECT digest FROM gc_reviews WHERE kind = 'blob' LIMIT 100"
                )
            ]
            plan = await backend.fetchall(
                "EXPLAIN "
                + _keyed(
                    "DELETE FROM gc_reviews WHERE kind = 'blob' AND repository_id = 0"
                    " AND digest IN (SELECT digest FROM k)",
                    len(keys),
                ),
                *_flat(keys),
            )
            text = "\n".join(str(row[0]) for row in plan)
            # The planner knows the 2,000 queued (it thought there was one, and looped over all
            # of them for each key), and never compares every queued row with every key.
            scan = re.search(r"Scan (?:using \S+ )?on gc_reviews .*? rows=(\d+)", text)
            assert scan is not None and int(scan.group(1)) >= 1000, text
            assert "Join Filter" not in text, text
        finally:
            await backend.close()

    asyncio.run(scenario())


def test_passes_with_the_benchmarks_graces_take_the_queue_in_slices(
    database: Database, tmp_path: Path
) -> None:
    """The latency benchmark runs several passes over one seeded queue, each with a grace that
    ends just after its slice (bench/phases_gc.py `_graces`): each pass takes a part, none
    takes the harness's own younger reviews, and together they take all of it."""
    from bench.phases_gc import _graces

    from seawall.domain.policy import parse_duration

    async def scenario() -> None:
        backend = backend_for(database.url)
        await backend.start()
        settings = Settings(data_dir=tmp_path, database_url=database.url, gc_interval_seconds=0)
        services = Services.build(settings, backend=backend)  # the real clock, as the bench's
        try:
            # A review every 10 ms: 1,300 span 13 s, a slice 4 s, graces are whole seconds.
            shape = Shape(blobs=3000, garbage=300, kept=1000, layers=3, bases=5)
            seeded = await seed(backend, tmp_path, shape, time.time())
            reviewed = []
            blobs = 0
            for grace in _graces(seeded, 3):
                report = await services.gc.run(
                    Origin.system(), grace_seconds=parse_duration(grace())
                )
                reviewed.append(report.tally.reviewed)
                blobs += report.tally.blobs
            assert all(n > 0 for n in reviewed), reviewed
            assert max(reviewed) < sum(reviewed) * 0.6, reviewed
            assert sum(reviewed) == 2 * 300 + seeded.kept_reviews
            assert blobs == 300
            assert (await services.gc.store.pending(time.time()))[1] == 0
        finally:
            await services.close()

    asyncio.run(scenario())


def test_a_pass_knows_whether_others_wrote_between_its_batches(
    database: Database, tmp_path: Path
) -> None:
    """What sets a pass's pause on SQLite (`GcStore.others_wrote`, from `data_version`): a
    commit by another connection between two batches, never the pass's own. PostgreSQL has no
    such count: there it is always so."""

    async def scenario() -> None:
        mine, other = backend_for(database.url), backend_for(database.url)
        await mine.start()
        await other.start()
        store = GcStore(mine)

        async def batch() -> bool:
            await store.review("blob", time.time(), 0.0, 10, lambda _digest: True)
            return store.others_wrote

        try:
            await batch()  # the first has nothing to compare with
            assert await batch() is (database.kind != "sqlite")
            assert await batch() is (database.kind != "sqlite")
            later = time.time() + HOUR  # not due: no batch takes it
            await other.transaction(
                [
                    Step(
                        "INSERT INTO gc_reviews (kind, repository_id, digest, since, reason)"
                        " VALUES ('blob', 0, ?, ?, 'test')",
                        ("sha256:" + "0" * 64, later),
                    )
                ]
            )
            assert await batch() is True
            assert await batch() is (database.kind != "sqlite")
        finally:
            await mine.close()
            await other.close()

    asyncio.run(scenario())
