"""`SqliteBackend`: stdlib sqlite3, one read connection used directly on the event loop and one
write connection owned by a single thread. WAL lets reads run while a write commits;
`synchronous=FULL` makes an acknowledged push survive power loss."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from seawall.db.store import Call, DatabaseUnavailable, Each, Row, Rows, Step, Steps, Then

BUSY_TIMEOUT_MS = 10_000
# The writer waits for another process's write (a `seawall gc` beside the server, another
# worker) by polling this often. SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20, 25 ms...
# between tries, so a push behind a 4 ms transaction waited 8 ms, behind a 10 ms one 18 ms.
BUSY_POLL_SECONDS = 0.0005
MMAP_BYTES = 1 << 30  # address space only; the page cache holds what is read


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    # Reads map the file instead of copying pages through read(): measured 0.1 to 0.4 s off the
    # full inventory of 50,000 images. Writes still go through the WAL.
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    return conn


def _execute(conn: sqlite3.Connection, step: Step | Rows | Each) -> Any:
    if isinstance(step, Rows):
        marks = ", ".join("?" for _ in step.columns)
        columns = ", ".join(step.columns)
        sql = f"INSERT INTO {step.table} ({columns}) VALUES ({marks})"  # noqa: S608
        conn.executemany(sql, step.records)
        return None
    if isinstance(step, Each):
        conn.executemany(step.sql, step.records)
        return None
    cursor = conn.execute(step.sql, step.args)
    if step.want == "rowcount":
        return cursor.rowcount
    if step.want == "one":
        return cursor.fetchone()
    return cursor.fetchall()


def _begin(conn: sqlite3.Connection) -> None:
    """Take the write lock, waiting up to `BUSY_TIMEOUT_MS` for another process to let go of
    it. In WAL mode this is the one statement of a write transaction that waits for another
    writer: once it holds the lock, nothing else in the transaction does."""
    deadline: float | None = None
    while True:
        try:
            conn.execute("BEGIN IMMEDIATE")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY:
                raise
            now = time.monotonic()
            if deadline is None:
                deadline = now + BUSY_TIMEOUT_MS / 1000
            elif now >= deadline:
                raise
        time.sleep(BUSY_POLL_SECONDS)


class _SqliteTx:
    """A `Tx` over the writer connection, in the writer thread."""

    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def one(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._conn.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[Row]:
        return self._conn.execute(sql, args).fetchall()

    def run(self, sql: str, *args: Any) -> int:
        return self._conn.execute(sql, args).rowcount


class SqliteBackend:
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: sqlite3.Connection = None  # type: ignore[assignment]  # set by start()
        self._writer_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-writer")
        self._writer: sqlite3.Connection | None = None
        self._durable: bool | None = None  # the writer's `synchronous` setting, once set

    async def start(self) -> None:
        try:
            self._reader = _connect(self.path)
        except sqlite3.Error as exc:
            raise DatabaseUnavailable(f"cannot open: {exc}") from exc

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._reader.execute(sql, args).fetchone()
        return row

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        return self._reader.execute(sql, args).fetchall()

    async def transaction(self, steps: Steps, durable: bool = True) -> list[Any]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer_pool, self._run, steps, durable)

    def _run(self, steps: Steps, durable: bool) -> list[Any]:
        if self._writer is None:
            self._writer = _connect(self.path)
            self._writer.execute("PRAGMA busy_timeout = 0")  # `_begin` waits instead
        conn = self._writer
        # In WAL mode, NORMAL skips the fsync at commit; the next FULL commit syncs the WAL,
        # this transaction's frames included. Set only when it changes: every statement is a
        # hop of this thread through the GIL.
        if durable is not self._durable:
            conn.execute("PRAGMA synchronous = FULL" if durable else "PRAGMA synchronous = NORMAL")
            self._durable = durable
        _begin(conn)
        try:
            results: list[Any] = []
            for step in steps:
                if isinstance(step, Then):
                    results.append([_execute(conn, s) for s in step.build(results)])
                elif isinstance(step, Call):
                    results.append(step(_SqliteTx(conn)))
                else:
                    results.append(_execute(conn, step))
            conn.execute("COMMIT")
            return results
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def checkpoint(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer_pool, self._checkpoint)

    def _checkpoint(self) -> None:
        if self._writer is None:
            return  # nothing committed here
        try:
            self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                raise  # another checkpoint is running: it carries these pages too

    async def subscribe(self, channel: str, callback: Callable[[str | None], None]) -> bool:
        return False  # reads are cheap and local: nothing worth caching

    def notify_step(self, channel: str, payload: str) -> Step | None:
        return None

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._writer is not None:
            writer = self._writer
            await asyncio.get_running_loop().run_in_executor(self._writer_pool, writer.close)
        self._writer_pool.shutdown(wait=True)
