"""Fixtures for unit tests that need a real database (time-driven rules) or a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.clock import FakeClock
from tests.support.databases import Database, migrated_database


@pytest.fixture
def clock() -> FakeClock:
    """A frozen clock the test moves by hand."""
    return FakeClock()


@pytest.fixture(scope="module")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One migrated SQLite database per test module (migrating costs more than emptying)."""
    with migrated_database("sqlite", tmp_path_factory.mktemp("sqlite")) as url:
        yield Database("sqlite", url)


@pytest.fixture
def sqlite_database(migrated_sqlite: Database) -> Database:
    """The module's SQLite database, emptied for this test."""
    migrated_sqlite.empty()
    return migrated_sqlite
