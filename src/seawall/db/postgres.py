"""`PostgresBackend`: an asyncpg pool. asyncpg prepares and caches every statement per
connection; the pool's reset on release is skipped since no session state is ever changed."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import asyncpg

from seawall.db.store import (
    LISTENING,
    Call,
    Contended,
    DatabaseUnavailable,
    Each,
    Row,
    Rows,
    Step,
    Steps,
    Then,
)

# A new connection that takes longer gives up (asyncpg's own default is a minute): a server
# that lost its database says so soon (/readyz) rather than holding requests.
CONNECT_TIMEOUT_SECONDS = 10.0
RELISTEN_SECONDS = 1.0  # how often a lost LISTEN connection is tried again


@lru_cache(maxsize=512)
def numbered(sql: str) -> str:
    """`?` placeholders to PostgreSQL's `$1, $2, ...` (our SQL has no `?` inside literals), as
    many as there are (PostgreSQL takes up to 32,767)."""
    counter = itertools.count(1)
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


async def _no_reset(_connection: Any) -> None:
    return None


def asyncpg_dsn(database_url: str) -> str:
    return "postgresql://" + database_url.split("://", 1)[1]


async def _execute(conn: Any, step: Step | Rows | Each) -> Any:
    if isinstance(step, Rows):
        await conn.copy_records_to_table(step.table, records=step.records, columns=step.columns)
        return None
    if isinstance(step, Each):
        await conn.executemany(numbered(step.sql), step.records)
        return None
    sql = numbered(step.sql)
    if step.want == "rowcount":
        status: str = await conn.execute(sql, *step.args)
        return int(status.rsplit(" ", 1)[-1])
    if step.want == "one":
        return await conn.fetchrow(sql, *step.args)
    return await conn.fetch(sql, *step.args)


class _BridgedTx:
    """A `Tx` for a `Call`'s worker thread: each statement runs on the event loop, on the
    transaction's connection, and the thread waits for it."""

    dialect = "postgresql"

    def __init__(self, conn: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._conn = conn
        self._loop = loop

    def _wait(self, coroutine: Any) -> Any:
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()
        except (
            asyncpg.exceptions.LockNotAvailableError,
            asyncpg.exceptions.DeadlockDetectedError,
        ) as exc:
            raise Contended(str(exc)) from exc

    def one(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = self._wait(self._conn.fetchrow(numbered(sql), *args))
        return row

    def all(self, sql: str, *args: Any) -> list[Row]:
        rows: list[Row] = self._wait(self._conn.fetch(numbered(sql), *args))
        return rows

    def run(self, sql: str, *args: Any) -> int:
        status: str = self._wait(self._conn.execute(numbered(sql), *args))
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0


class PostgresBackend:
    dialect = "postgresql"

    def __init__(self, database_url: str, pool_size: int) -> None:
        self.dsn = asyncpg_dsn(database_url)
        self.pool_size = pool_size
        self._pool: Any = None
        self._listener: Any = None
        self._subscribers: list[tuple[str, Callable[[str | None], None]]] = []
        self._relisten: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                timeout=CONNECT_TIMEOUT_SECONDS,
                min_size=1,
                max_size=self.pool_size,
                reset=_no_reset,
                statement_cache_size=512,
            )
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # OSError: refused, unreachable, unknown host, timed out; PostgresError: no such
            # database, refused credentials. asyncpg never puts the password in a message.
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise DatabaseUnavailable(f"cannot connect: {reason}") from exc

    async def fetchone(self, sql: str, *args: Any) -> Row | None:
        row: Row | None = await self._pool.fetchrow(numbered(sql), *args)
        return row

    async def fetchall(self, sql: str, *args: Any) -> list[Row]:
        rows: list[Row] = await self._pool.fetch(numbered(sql), *args)
        return rows

    async def transaction(self, steps: Steps, durable: bool = True) -> list[Any]:
        results: list[Any] = []
        async with self._pool.acquire() as conn, conn.transaction():
            if not durable:
                await conn.execute("SET LOCAL synchronous_commit = off")
            for step in steps:
                if isinstance(step, Then):
                    results.append([await _execute(conn, s) for s in step.build(results)])
                elif isinstance(step, Call):
                    tx = _BridgedTx(conn, asyncio.get_running_loop())
                    results.append(await asyncio.to_thread(step, tx))
                else:
                    results.append(await _execute(conn, step))
        return results

    async def checkpoint(self) -> None:
        return None  # every commit is the server's to carry

    async def subscribe(self, channel: str, callback: Callable[[str | None], None]) -> bool:
        """LISTEN on a dedicated connection. If it drops (the server restarted, the connection
        was terminated), every subscriber hears `callback(None)`, and the connection is opened
        again in the background, every `RELISTEN_SECONDS`, until it listens again: then every
        subscriber hears `callback(LISTENING)`."""
        self._subscribers.append((channel, callback))
        if self._listener is None:
            self._listener = await self._listen()
        else:
            await self._listener.add_listener(channel, self._receiver(callback))
        return True

    @staticmethod
    def _receiver(callback: Callable[[str | None], None]) -> Callable[..., None]:
        def received(_connection: Any, _pid: int, _channel: str, payload: str) -> None:
            callback(payload)

        return received

    async def _listen(self) -> Any:
        """A new listening connection, with every subscription on it."""
        listener = await asyncpg.connect(self.dsn, timeout=CONNECT_TIMEOUT_SECONDS)
        try:
            for channel, callback in self._subscribers:
                await listener.add_listener(channel, self._receiver(callback))
        except BaseException:
            listener.terminate()
            raise
        listener.add_termination_listener(self._lost)
        return listener

    def _lost(self, _connection: Any) -> None:
        if self._closing:
            return
        self._listener = None
        for _, callback in self._subscribers:
            callback(None)
        if self._relisten is None or self._relisten.done():
            self._relisten = asyncio.get_running_loop().create_task(self._listen_again())

    async def _listen_again(self) -> None:
        while not self._closing:
            await asyncio.sleep(RELISTEN_SECONDS)
            try:
                listener = await self._listen()
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                continue  # still unreachable: try again
            if self._closing:
                listener.terminate()
                return
            self._listener = listener
            for _, callback in self._subscribers:
                callback(LISTENING)
            return

    def notify_step(self, channel: str, payload: str) -> Step | None:
        return Step("SELECT pg_notify(?, ?)", (channel, payload), "one")

    async def close(self) -> None:
        self._closing = True
        if self._relisten is not None:
            self._relisten.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._relisten
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        if self._pool is not None:
            await self._pool.close()
