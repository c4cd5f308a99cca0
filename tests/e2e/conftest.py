"""The e2e suite's clients. The registry they talk to is the shared `registry` fixture (a real
`seawall serve` per database, tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.clients import (
    Containerd,
    CtrClient,
    DockerClient,
    PodmanClient,
    containerd_daemon,
    ctr_client,
    docker_daemon,
    podman_client,
)
from tests.support.server import RunningServer, require_tool
from tests.support.skopeo import Skopeo


@pytest.fixture
def skopeo(registry: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> Skopeo:
    """skopeo logged in as the registry's admin (a module's own `registry`, if it has one)."""
    return Skopeo.logged_in(require_tool("skopeo"), registry, tmp_path_factory.mktemp("skopeo"))


# --- session-wide clients, for the client matrix and the auth tests -----------------------
# Each starts on first use; see tests/support/clients.py.


@pytest.fixture(scope="session")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    with containerd_daemon(tmp_path_factory.mktemp("containerd")) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def docker(
    tmp_path_factory: pytest.TempPathFactory, containerd: Containerd
) -> Iterator[DockerClient]:
    with docker_daemon(tmp_path_factory.mktemp("docker"), containerd) as client:
        yield client


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanClient]:
    with podman_client(tmp_path_factory.mktemp("podman")) as client:
        yield client


@pytest.fixture(scope="session")
def ctr(tmp_path_factory: pytest.TempPathFactory, containerd: Containerd) -> Iterator[CtrClient]:
    with ctr_client(tmp_path_factory.mktemp("ctr"), containerd) as client:
        yield client
