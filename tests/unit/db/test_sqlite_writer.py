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
