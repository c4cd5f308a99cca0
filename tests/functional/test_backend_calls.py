"""A transaction's imperative work (`Call`) on both databases: whatever it raises reaches the
caller and rolls the transaction back, a `StopIteration` included (asyncio cannot carry one out
of a worker thread: the awaiting future would never finish, and the transaction would stay open
with its locks)."""

from __future__ import annotations

import asyncio

import pytest

from seawall.db.store import Call, Step, Tx
from tests.support.databases import Database, backend_for


def test_a_stop_iteration_in_the_work_is_raised_and_rolls_back(database: Database) -> None:
    def work(tx: Tx) -> None:
        tx.run("DELETE FROM gc_reviews")
        tx.run(
            "INSERT INTO gc_reviews (kind, repository_id, digest, since, reason)"
            " VALUES ('blob', 0, 'sha256:' || ?, 1.0, 'test')",
            "0" * 64,
        )
        next(iter(()))

    async def scenario() -> None:
        backend = backend_for(database.url)
        await backend.start()
        try:
            with pytest.raises(RuntimeError, match="StopIteration"):
                await asyncio.wait_for(backend.transaction([Call(work)]), 10)
            row = await backend.fetchone(
                "SELECT COUNT(*) FROM gc_reviews WHERE digest = ?", "sha256:" + "0" * 64
            )
            assert row is not None and int(row[0]) == 0
            # The connection (SQLite's writer) is free for the next transaction.
            (count,) = await asyncio.wait_for(
                backend.transaction([Step("SELECT COUNT(*) FROM gc_reviews", (), "one")]), 10
            )
            assert count is not None
        finally:
            await backend.close()

    asyncio.run(scenario())
