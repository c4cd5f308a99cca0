"""Connections that never finish cannot take the registry offline (issue 10), and a port is
never shared with another registry. Real processes: sockets, timeouts and the kernel are the
point."""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.registry import OCI_MANIFEST, image_manifest, put_manifest
from tests.support.server import (
    ADMIN_PASSWORD,
    SEAWALL,
    RunningServer,
    cli_env,
    seawall_server,
)

STALLED = 1500


@contextlib.contextmanager
def stalled_connections(server: RunningServer, count: int, half_headers: bool) -> Iterator[int]:
    """`count` connections that each stop mid-request: either after headers announcing a
    100-byte body that never comes, or in the middle of the headers."""
    host, port = server.host.split(":")
    auth = base64.b64encode(server.creds.encode()).decode()
    sockets: list[socket.socket] = []
    try:
        for i in range(count):
            s = socket.create_connection((host, int(port)), timeout=10)
            if half_headers:
                s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nUser-Agent: slow")
            else:
                s.sendall(
                    f"PUT /v2/stall/app/manifests/t{i} HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Basic {auth}\r\nContent-Type: {OCI_MANIFEST}\r\n"
                    "Content-Length: 100\r\n\r\n".encode()
                )
            sockets.append(s)
        yield len(sockets)
    finally:
        for s in sockets:
            s.close()


def timed_pull(server: RunningServer, repo: str) -> tuple[int, float]:
    started = time.monotonic()
    response = httpx.get(
        f"{server.url}/v2/{repo}/manifests/v1",
        auth=server.auth,
        headers={"Accept": OCI_MANIFEST},
        timeout=10,
    )
    return response.status_code, time.monotonic() - started


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Default limits, two workers (one per core here), SQLite: the database is not the point."""
    with seawall_server(tmp_path_factory.mktemp("limits"), workers=2) as server:
        yield server


def test_a_pull_succeeds_while_thousands_of_connections_stall(registry: RunningServer) -> None:
    repo = "limits/app"
    with httpx.Client(base_url=registry.url, auth=registry.auth, timeout=30) as client:
        assert put_manifest(client, repo, "v1", image_manifest(client, repo)).status_code == 201
    with (
        stalled_connections(registry, STALLED, half_headers=False) as bodies,
        stalled_connections(registry, STALLED, half_headers=True) as headers,
    ):
        assert (bodies, headers) == (STALLED, STALLED)
        time.sleep(1)  # let the workers accept them all
        for _ in range(3):
            status, seconds = timed_pull(registry, repo)
            assert status == 200
            assert seconds < 2, f"a pull took {seconds:.2f} s with {2 * STALLED} stalled"


def test_a_stalled_body_ends_with_408(tmp_path: Path) -> None:
    env = {"SEAWALL_BODY_TIMEOUT_SECONDS": "1", "SEAWALL_HEADER_TIMEOUT_SECONDS": "1"}
    with seawall_server(tmp_path, extra_env=env) as server:
        host, port = server.host.split(":")
        auth = base64.b64encode(server.creds.encode()).decode()
        with socket.create_connection((host, int(port)), timeout=10) as s:
            started = time.monotonic()
            s.sendall(
                f"PUT /v2/slow/app/manifests/v1 HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}"
                f"\r\nContent-Type: {OCI_MANIFEST}\r\nContent-Length: 100\r\n\r\n{{".encode()
            )
            answer = _read_all(s)
            assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
            assert b"REQUEST_TIMEOUT" in answer
            assert 0.9 < time.monotonic() - started < 5
        with socket.create_connection((host, int(port)), timeout=10) as s:
            started = time.monotonic()
            s.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")  # never finished
            assert _read_all(s) == b""  # closed without an answer
            assert time.monotonic() - started < 5
        # The registry is unharmed, and the stalled push stored nothing.
        with httpx.Client(base_url=server.url, auth=server.auth, timeout=10) as client:
            assert client.get("/v2/slow/app/tags/list").status_code == 404


def _read_all(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    return data


# -- one address, one registry --------------------------------------------------------------


def _serve(server: RunningServer, tmp: Path, port: str) -> subprocess.CompletedProcess[str]:
    """A second `seawall serve` with its own data directory, on `port`."""
    env = {**cli_env(server), "SEAWALL_DATABASE_URL": "", "SEAWALL_ADMIN_PASSWORD": ADMIN_PASSWORD}
    command = ["serve", "--host", "127.0.0.1", "--port", port, "--data-dir", str(tmp / "second")]
    return subprocess.run([SEAWALL, *command], env=env, capture_output=True, text=True, timeout=60)


def test_a_second_server_on_the_same_port_refuses_to_start(
    registry: RunningServer, tmp_path: Path
) -> None:
    port = registry.host.split(":")[1]
    result = _serve(registry, tmp_path, port)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "already in use" in lines[0] and port in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "second" / "seawall.db").exists()  # refused before touching data
    # Every request still reaches the one registry: same answer ten times in a row.
    statuses = {
        httpx.get(f"{registry.url}/v2/", auth=registry.auth, timeout=10).status_code
        for _ in range(10)
    }
    assert statuses == {200}


def test_a_port_held_by_another_program_is_one_line(
    registry: RunningServer, tmp_path: Path
) -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = str(other.getsockname()[1])
        result = _serve(registry, tmp_path, port)
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "already in use" in lines[0], result.stderr


def test_the_claim_is_not_a_listener(registry: RunningServer) -> None:
    # The claim socket never accepts: every connection reaches a worker (asked 20 times, fresh
    # connections each, none hangs or is refused).
    for _ in range(20):
        with httpx.Client(timeout=5) as client:  # a new connection each time
            assert client.get(f"{registry.url}/healthz").status_code == 200
