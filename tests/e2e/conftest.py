from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
from tests.support.server import DATABASES, RunningServer, seawall_server


@pytest.fixture(scope="session", params=DATABASES)
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """One real `seawall serve` per database for the whole e2e session."""
    tmp: Path = tmp_path_factory.mktemp(f"seawall-{request.param}")
    with seawall_server(tmp, database=request.param, workers=2) as server:
        yield server


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
