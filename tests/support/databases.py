"""Migrated databases for the `MetadataStore` suite: a SQLite file or a fresh PostgreSQL database.

pytest-asyncio is not a dependency: a test hands an async scenario to `Database.run`, which opens
a store in a new event loop (asyncpg pools belong to one loop), runs it and closes the store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from seawall.db.identities import IdentityStore
from seawall.db.migrate import upgrade
from seawall.db.postgres import PostgresBackend
from seawall.db.sqlite import SqliteBackend
from seawall.db.store import MetadataStore, SqlBackend, Step
from seawall.db.tables import metadata
from seawall.domain.audit import GENESIS
from tests.support.server import postgres_database

T = TypeVar("T")
POOL_SIZE = 10  # the default pg_pool_size; below the 20-way concurrency tests, so some wait


@contextmanager
def migrated_database(kind: str, tmp: Path) -> Iterator[str]:
    """A new database of `kind` ("sqlite" or "postgres") at the head revision; yields its URL."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'seawall.db'}"
        upgrade(url)
        yield url
    elif kind == "postgres":
        with postgres_database() as url:
            upgrade(url)
            yield url
    else:
        raise ValueError(kind)


def backend_for(url: str) -> SqlBackend:
    if url.startswith("sqlite:///"):
        return SqliteBackend(Path(url.removeprefix("sqlite:///")))
    return PostgresBackend(url, POOL_SIZE)


@dataclass(frozen=True)
class Database:
    kind: str
    url: str

    def run(self, scenario: Callable[[MetadataStore], Awaitable[T]]) -> T:
        """Run `scenario` against a started store in a fresh event loop."""
        return asyncio.run(self._run(scenario))

    async def _run(self, scenario: Callable[[MetadataStore], Awaitable[T]]) -> T:
        store = MetadataStore(backend_for(self.url))
        await store.start()
        try:
            return await scenario(store)
        finally:
            await store.close()

    def empty(self) -> None:
        """Delete every row, children before parents, so each test starts from nothing."""
        self.run(_empty)


async def _empty(store: MetadataStore) -> None:
    await store.backend.transaction(
        [
            *(Step(f"DELETE FROM {table.name}") for table in reversed(metadata.sorted_tables)),
            # The audit chain's head row, as the migration creates it.
            Step(
                "INSERT INTO audit_chain (id, seq, hash, archive_lease_until) VALUES (1, 0, ?, 0)",
                (GENESIS,),
            ),
        ]
    )


async def count(store: MetadataStore, table: str) -> int:
    row = await store.backend.fetchone(f"SELECT COUNT(*) FROM {table}")
    assert row is not None
    return int(row[0])


def query(url: str, sql: str, *args: object) -> list[tuple[object, ...]]:
    """Run one read against the database at `url` (e.g. a running server's) and return its rows."""

    async def read(store: MetadataStore) -> list[tuple[object, ...]]:
        return [tuple(row) for row in await store.backend.fetchall(sql, *args)]

    return Database("any", url).run(read)


def run_identities(database: Database, test: Callable[[IdentityStore], Awaitable[None]]) -> None:
    """Run `test` against the `IdentityStore` of a started store on `database`."""

    async def with_store(store: MetadataStore) -> None:
        await test(IdentityStore(store.backend))

    database.run(with_store)
