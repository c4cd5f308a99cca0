"""`seawall worker` processes: the shared queue, leases that outlive a dead worker, retries with
backoff, and failure with a reason. The registry (the app in this process, its own worker off)
takes the pushes; the workers are real processes, killed and signalled as in production. On
both databases: how jobs are claimed and leased is SQL of each backend's own."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.app import app_server
from tests.support.databases import Database, query
from tests.support.images import LAYER_TAR, push_image, tar_bytes, wait_for_report
from tests.support.registry import unique_repo
from tests.support.server import DATABASES, SEAWALL, RunningServer, cli_env, stop
from tests.support.stored import StoredObjects, blob_key

FAST = {
    "SEAWALL_SCAN_POLL_SECONDS": "0.2",
    "SEAWALL_SCAN_RETRY_SECONDS": "0.3",
    "SEAWALL_SCAN_MAX_ATTEMPTS": "3",
    "SEAWALL_SCAN_LEASE_SECONDS": "6",
}


@pytest.fixture(scope="module", params=DATABASES)
def registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    tmp = tmp_path_factory.mktemp(f"workers-{request.param}")
    settings = {key.removeprefix("SEAWALL_").lower(): value for key, value in FAST.items()}
    with app_server(tmp, request.param, **settings) as server:
        yield server


@pytest.fixture
def http(registry: RunningServer) -> Iterator[httpx.Client]:
    with registry.client(auth=registry.auth, timeout=60) as c:
        yield c


def start_worker(
    server: RunningServer, *args: str, stderr: Any = subprocess.DEVNULL
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [SEAWALL, "worker", *args],
        env=cli_env(server, FAST),
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        start_new_session=True,
    )


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    # A worker still importing Python when SIGTERM comes ends by the signal; it had claimed
    # nothing. Once started it exits 0 (see test_a_started_worker_exits_cleanly_on_sigterm).
    assert stop(worker) in (0, -signal.SIGTERM)


def jobs(server: RunningServer, repository: str) -> list[tuple[Any, ...]]:
    return query(
        server.database_url or "",
        "SELECT digest, state, attempts, worker, error FROM scan_jobs WHERE repository = ?"
        " ORDER BY id",
        repository,
    )


def wait_until(check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_jobs_wait_in_the_database_until_workers_run_them(
    http: httpx.Client, registry: RunningServer
) -> None:
    repository = unique_repo("workers/queue")
    for n in range(6):
        push_image(http, repository, f"v{n}", [tar_bytes({f"etc/file-{n}": b"x" * n})])
    time.sleep(0.5)
    assert {row[1] for row in jobs(registry, repository)} == {"queued"}
    first, second = start_worker(registry), start_worker(registry, "--concurrency", "2")
    try:
        for n in range(6):
            assert wait_for_report(http, repository, f"v{n}")["status"] == "complete"
    finally:
        stop_worker(first)
        stop_worker(second)
    rows = jobs(registry, repository)
    assert [row[1] for row in rows] == ["done"] * 6
    assert all(row[2] == 1 for row in rows), rows  # each job ran exactly once


def test_a_dead_workers_job_is_taken_up_after_its_lease(
    http: httpx.Client, registry: RunningServer
) -> None:
    repository = unique_repo("workers/lease")
    pushed = push_image(http, repository, "v1", [tar_bytes({"etc/motd": b"hi\n"})])
    # A worker claimed the job and died: the row says running, leased for two more seconds.
    lapse = time.time() + 2

    async def claim(store: Any) -> None:
        from seawall.db.store import Step

        await store.backend.transaction(
            [
                Step(
                    "UPDATE scan_jobs SET state = 'running', attempts = 1, lease_until = ?,"
                    " worker = 'dead-worker' WHERE repository = ? AND digest = ?",
                    (lapse, repository, pushed.digest),
                )
            ]
        )

    Database("any", registry.database_url or "").run(claim)
    worker = start_worker(registry)
    try:
        view = wait_for_report(http, repository, "v1")
    finally:
        stop_worker(worker)
    assert time.time() >= lapse
    assert view["status"] == "complete"
    [(_, state, attempts, name, _)] = jobs(registry, repository)
    assert (state, attempts) == ("done", 2) and name != "dead-worker"


def test_a_killed_worker_leaves_a_job_that_another_finishes(
    http: httpx.Client, registry: RunningServer
) -> None:
    repository = unique_repo("workers/kill")
    big = {f"data/blob-{n}.bin": os.urandom(1024) * 16 * 1024 for n in range(8)}  # 128 MiB
    push_image(http, repository, "v1", [tar_bytes(big)], media_type=LAYER_TAR)
    doomed = start_worker(registry)
    try:
        wait_until(lambda: jobs(registry, repository)[0][1] == "running")
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)
        doomed.wait()
    assert jobs(registry, repository)[0][1] == "running"
    survivor = start_worker(registry)
    try:
        view = wait_for_report(http, repository, "v1", timeout=120)
    finally:
        stop_worker(survivor)
    assert view["status"] == "complete"
    [(_, state, attempts, _, _)] = jobs(registry, repository)
    assert (state, attempts) == ("done", 2)


def test_a_failing_job_is_retried_then_failed_with_its_reason(
    http: httpx.Client, registry: RunningServer
) -> None:
    repository = unique_repo("workers/retry")
    pushed = push_image(http, repository, "v1", [tar_bytes({"etc/lost": os.urandom(64)})])
    stored = StoredObjects.of(registry)
    assert stored.has_blob(pushed.layers[0])
    stored.delete(blob_key(pushed.layers[0]))  # storage lost the layer after the push
    worker = start_worker(registry)
    started = time.monotonic()
    try:
        view = wait_for_report(http, repository, "v1")
    finally:
        stop_worker(worker)
    assert view["state"] == "failed" and view["status"] == "failed"
    assert "gave up after 3 attempts" in view["error"]
    assert "missing from storage" in view["error"]
    # Backoff 0.3 s then 0.6 s between the three attempts.
    assert time.monotonic() - started >= 0.9
    [(_, state, attempts, _, error)] = jobs(registry, repository)
    assert (state, attempts) == ("failed", 3) and "missing from storage" in error


def test_a_started_worker_exits_cleanly_on_sigterm(registry: RunningServer, tmp_path: Path) -> None:
    log = tmp_path / "worker.log"
    with open(log, "wb") as stderr:
        worker = start_worker(registry, stderr=stderr)
    wait_until(lambda: b": scanning" in log.read_bytes(), timeout=30)
    assert stop(worker) == 0, log.read_text()


def test_a_failed_rescan_leaves_the_last_complete_report(
    http: httpx.Client, registry: RunningServer
) -> None:
    repository = unique_repo("workers/rescan")
    pushed = push_image(http, repository, "v1", [tar_bytes({"etc/motd": os.urandom(32)})])
    worker = start_worker(registry)
    try:
        first = wait_for_report(http, repository, "v1")
        assert first["status"] == "complete"
        StoredObjects.of(registry).delete(blob_key(pushed.layers[0]))
        # The layer's analysis is cached, so a rescan would not read the blob: forget it.
        Database("any", registry.database_url or "").run(forget_layer(pushed.layers[0]))
        assert http.post(f"/api/v1/scans/{repository}:v1").status_code == 202
        wait_until(lambda: jobs(registry, repository)[0][1] == "failed")
    finally:
        stop_worker(worker)
    view = http.get(f"/api/v1/scans/{repository}:v1").json()
    assert view["state"] == "failed" and "missing from storage" in view["last_error"]
    assert view["status"] == "complete" and view["scanned_at"] == first["scanned_at"]


def forget_layer(digest: str) -> Any:
    async def forget(store: Any) -> None:
        from seawall.db.store import Step

        await store.backend.transaction(
            [Step("DELETE FROM layer_analyses WHERE digest = ?", (digest,))]
        )

    return forget
