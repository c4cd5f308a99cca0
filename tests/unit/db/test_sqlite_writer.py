"""The SQLite writer waits for another process's write lock by polling finely, not with
SQLite's own backoff (1, 2, 5, 10 ms ... between tries), and gives up after the timeout."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from seawall.db import sqlite as sqlite_backend
from seawall.db.sqlite import SqliteBackend
from seawall.db.store import Step


def _other_writer(path: Path, hold: float, taken: threading.Event) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    taken.set()
    time.sleep(hold)
    conn.execute("COMMIT")
    conn.close()


async def _backend(tmp_path: Path) -> SqliteBackend:
    path = tmp_path / "t.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.execute("CREATE TABLE t (x INTEGER)")
    setup.close()
    backend = SqliteBackend(path)
    await backend.start()
    return backend


def test_a_write_waits_for_another_writer_and_goes_in_soon_after(tmp_path: Path) -> None:
    async def run() -> tuple[float, list[tuple[int]]]:
        backend = await _backend(tmp_path)
        try:
            await backend.transaction([Step("INSERT INTO t VALUES (0)", ())])  # writer open
            taken = threading.Event()
            other = threading.Thread(target=_other_writer, args=(backend.path, 0.03, taken))
            other.start()
            taken.wait()
            began = time.monotonic()
            await backend.transaction([Step("INSERT INTO t VALUES (1)", ())])
            waited = time.monotonic() - began
            other.join()
            return waited, await backend.fetchall("SELECT x FROM t ORDER BY x")
        finally:
            await backend.close()

    waited, rows = asyncio.run(run())
    assert rows == [(0,), (1,)]
    assert 0.02 <= waited < 1, waited


def test_a_write_gives_up_after_the_busy_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_backend, "BUSY_TIMEOUT_MS", 50)

    async def run() -> None:
        backend = await _backend(tmp_path)
        try:
            taken = threading.Event()
            other = threading.Thread(target=_other_writer, args=(backend.path, 0.5, taken))
            other.start()
            taken.wait()
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                await backend.transaction([Step("INSERT INTO t VALUES (1)", ())])
            other.join()
        finally:
            await backend.close()

    asyncio.run(run())


def _in_database_file(path: Path) -> list[tuple[int]]:
    """What the database file itself holds, leaving out what is still only in the WAL."""
    conn = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return conn.execute("SELECT x FROM t ORDER BY x").fetchall()
    finally:
        conn.close()


def test_checkpoint_carries_commits_that_did_not_wait_for_the_disk_into_the_file(
    tmp_path: Path,
) -> None:
    """A commit with `durable=False` stays in the WAL (the next durable commit, a push's, would
    sync it and checkpoint it) until `checkpoint` carries it into the database file."""

    async def run() -> tuple[list[tuple[int]], list[tuple[int]]]:
        backend = await _backend(tmp_path)
        try:
            await backend.checkpoint()  # nothing written by this backend yet: nothing to do
            await backend.transaction([Step("INSERT INTO t VALUES (7)", ())], durable=False)
            before = _in_database_file(backend.path)
            await backend.checkpoint()
            return before, _in_database_file(backend.path)
        finally:
            await backend.close()

    before, after = asyncio.run(run())
    assert before == []
    assert after == [(7,)]
