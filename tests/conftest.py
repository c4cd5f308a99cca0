"""The fixtures every suite shares, in one place.

- `server` / `client`: the app in this process over a real database and data directory
  (tests/support/app.py), one per database for the whole session. Functional tests use it.
- `registry`: a real `seawall serve` (two Granian workers) per database for the session, for
  what needs a process: real registry clients (e2e), sockets, the HTTP server's own behaviour.
- `migrated` / `database`: a migrated database per module and kind, emptied for each test, for
  the store contract suites.
- `moto`: moto's standalone S3 server (a real process) for the session; `moto.store()` is an
  `S3BlobStore` over a fresh bucket.

Which databases: `migrated` always runs on both (the store is the seam both backends
implement). `server` and `registry` run on SQLite only, unless the test or its module is marked
`both_databases` (behaviour that differs by backend) or is an e2e test (the e2e suite runs on
both). The parameter shows in the test id: `test_x[sqlite]`, `test_x[postgres]`.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.support.app import InProcessServer, app_server
from tests.support.databases import Database, migrated_database
from tests.support.s3 import MotoServer, moto_server
from tests.support.server import DATABASES, RunningServer, seawall_server

BOTH = "both_databases"
# Fixtures whose database follows the rule in the module docstring.
BY_DATABASE = ("server", "registry")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{BOTH}: run on SQLite and PostgreSQL (the behaviour differs by backend)"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    both = metafunc.definition.get_closest_marker(BOTH) or metafunc.definition.get_closest_marker(
        "e2e"
    )
    kinds = list(DATABASES) if both else ["sqlite"]
    for name in BY_DATABASE:
        # A module may define a fixture of the same name for itself; that one is left alone.
        if name in metafunc.fixturenames and not hasattr(metafunc.module, name):
            metafunc.parametrize(name, kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessServer]:
    """The app in this process, as the functional suite's `seawall serve` was configured."""
    kind: str = getattr(request, "param", "sqlite")
    with app_server(tmp_path_factory.mktemp(f"app-{kind}"), kind) as running:
        yield running


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    """Signed in as the first site admin."""
    with server.client(auth=server.auth) as c:
        yield c


@pytest.fixture(scope="session")
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One real `seawall serve` per database for the whole session."""
    kind: str = getattr(request, "param", "sqlite")
    with seawall_server(tmp_path_factory.mktemp(f"seawall-{kind}"), kind, workers=2) as running:
        yield running


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


@pytest.fixture(scope="session")
def moto() -> Iterator[MotoServer]:
    """moto's standalone S3 server, started once per session (per xdist worker)."""
    with moto_server() as server:
        yield server


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist (`-n 2`), the e2e suite runs in one worker: its session-wide
    registries and client daemons (docker, containerd, podman) start once, not once per worker."""
    for item in items:
        if item.get_closest_marker("e2e") is not None or "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.xdist_group("e2e"))
