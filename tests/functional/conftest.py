from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.databases import Database, migrated_database
from tests.support.server import DATABASES, RunningServer, seawall_server


@pytest.fixture(scope="session", params=DATABASES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """The real `seawall serve`, two workers, once per database for the functional suite."""
    tmp = tmp_path_factory.mktemp(f"functional-{request.param}")
    with seawall_server(tmp, database=request.param, workers=2) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=30) as c:
        yield c


@pytest.fixture(scope="module", params=DATABASES)
def migrated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    """A migrated database of each kind, one per test module."""
    kind: str = request.param
    module = request.module.__name__.rpartition(".")[2]
    with migrated_database(kind, tmp_path_factory.mktemp(f"{module}-{kind}")) as url:
        yield Database(kind, url)


@pytest.fixture
def database(migrated: Database) -> Database:
    """The module's database, emptied for this test."""
    migrated.empty()
    return migrated
