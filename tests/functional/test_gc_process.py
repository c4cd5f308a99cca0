"""The server's garbage-collection passes run in a child process (services/gc_process.py): a
pass asked for over the API removes what it should, is audited as done by the caller, is
counted in the server's metrics, and ran in another process than the worker that was asked; a
child that fails is a clear error (503 over the API, a failed scheduled pass), never a hang. A
pass with nothing due starts no child.

A real `seawall serve` where the process is the point; the app in this process (with the
system clock, so it runs passes in children too) for the failures."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.routing import Route

from seawall.domain.audit import Origin
from seawall.errors import ErrorCode, RegistryError
from seawall.services.gc import GarbageCollector
from seawall.services.gc_process import ProcessPassRunner
from seawall.wiring import Services
from tests.support.app import InProcessServer, app_server
from tests.support.databases import backend_for
from tests.support.registry import push_blob
from tests.support.server import DATABASES, RunningServer, seawall_server

NO_SCHEDULED_PASSES = {"SEAWALL_GC_INTERVAL_SECONDS": "0"}


def blob_file(server: RunningServer, digest: str) -> Path:
    algorithm, hex_ = digest.split(":")
    return Path(server.data_dir) / "blobs" / algorithm / hex_[:2] / hex_


def log_events(server: RunningServer) -> list[dict[str, Any]]:
    events = []
    for line in server.log().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


@pytest.mark.parametrize("database", DATABASES)
def test_a_pass_asked_for_over_the_api_runs_in_a_child_process(
    tmp_path: Path, database: str
) -> None:
    with (
        seawall_server(tmp_path, database, extra_env=NO_SCHEDULED_PASSES) as server,
        server.client(auth=server.auth) as client,
    ):
        ns = f"gcp-{secrets.token_hex(4)}"
        assert client.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
        digests = [push_blob(client, f"{ns}/app", secrets.token_bytes(2000)) for _ in range(3)]
        done = client.post("/api/v1/gc", json={"grace": "0s"})
        assert done.status_code == 200, done.text
        report = done.json()
        assert report["blobs"] == 3 and report["blob_links"] == 3 and not report["dry_run"]
        assert report["bytes"] == 6000 and report["due"] == 0
        assert not any(blob_file(server, d).exists() for d in digests)
        # Audited as the caller's, with the request's id.
        events = client.get("/api/v1/audit", params={"action": "gc:pass", "n": 1}).json()
        (event,) = events["events"]
        assert event["actor"] == server.username and event["actor_kind"] == "user"
        assert event["request_id"] == done.headers["x-request-id"]
        # Counted by the server, though another process removed them.
        metrics = client.get("/metrics").text
        assert 'seawall_gc_reclaimed_objects_total{kind="blob"} 3.0' in metrics
        # The child said so in the server's log, under its own pid.
        deadline = time.monotonic() + 5
        while True:
            logged = log_events(server)
            workers = {e["pid"] for e in logged if e.get("event") == "worker ready"}
            passes = [e for e in logged if e.get("event") == "garbage-collection pass done"]
            if (workers and passes) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert workers and len(passes) == 1, server.log()
        assert passes[0]["pid"] not in workers


@pytest.fixture
def app(tmp_path: Path) -> Iterator[InProcessServer]:
    # The system clock (no `clock=`): the app runs its passes in child processes.
    with app_server(tmp_path, "sqlite", gc_interval_seconds=0) as server:
        yield server


def broken_runner(server: InProcessServer) -> ProcessPassRunner:
    """A runner whose children find no database (the server's own is fine)."""
    assert server.settings is not None
    settings = server.settings.model_dump(mode="json", exclude={"admin_password"})
    settings["database_url"] = f"sqlite:///{server.data_dir / 'nowhere.db'}"
    return ProcessPassRunner(settings)


def collector(server: InProcessServer) -> GarbageCollector:
    """The collector of the running app's `POST /api/v1/gc`."""
    assert server.app is not None
    for route in server.app.routes:
        if isinstance(route, Route) and route.path == "/api/v1/gc" and "POST" in route.methods:
            gc = route.endpoint.__self__.gc  # type: ignore[attr-defined]
            assert isinstance(gc, GarbageCollector)
            return gc
    raise AssertionError("no POST /api/v1/gc")


def something_due(server: InProcessServer) -> None:
    """A blob no manifest references, so that a pass with no grace has something to do."""
    with server.client(auth=server.auth) as client:
        ns = f"gcp-{secrets.token_hex(4)}"
        assert client.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
        push_blob(client, f"{ns}/app", secrets.token_bytes(500))


def test_a_failing_child_is_answered_503_with_its_reason(app: InProcessServer) -> None:
    gc = collector(app)
    assert isinstance(gc.runner, ProcessPassRunner)  # the real clock: children
    gc.runner = broken_runner(app)
    something_due(app)
    with app.client(auth=app.auth) as client:
        started = time.monotonic()
        failed = client.post("/api/v1/gc", json={"grace": "0s"})
        assert failed.status_code == 503, failed.text
        (error,) = failed.json()["errors"]
        assert error["code"] == "UNAVAILABLE"
        assert error["message"].startswith("the garbage-collection pass failed: no Seawall")
        assert "exited with status 1" in error["message"]
        assert time.monotonic() - started < 30
    assert "garbage-collection pass failed" in app.log()  # the child's log, relayed


def test_a_pass_with_nothing_due_starts_no_child(app: InProcessServer) -> None:
    gc = collector(app)
    gc.runner = broken_runner(app)  # a child would fail: the pass must not start one
    something_due(app)  # with no grace; due in an hour with the default one
    with app.client(auth=app.auth) as client:
        done = client.post("/api/v1/gc", json={})
        assert done.status_code == 200, done.text
        assert done.json()["due"] == 0 and done.json()["queued"] == 1
        for dry_run in (False, True):
            # Due with no grace: now the pass is the child's, which fails.
            failed = client.post("/api/v1/gc", json={"grace": "0s", "dry_run": dry_run})
            assert failed.status_code == 503, failed.text
        # Once a pass in this process has reviewed the blob, nothing is due again.
        gc.runner = None
        assert client.post("/api/v1/gc", json={"grace": "0s"}).json()["blobs"] == 1
        gc.runner = broken_runner(app)
        assert client.post("/api/v1/gc", json={"grace": "0s"}).status_code == 200
    assert "garbage-collection pass failed" in app.log()


def test_a_child_that_prints_no_report_is_a_failed_pass(app: InProcessServer) -> None:
    assert app.settings is not None
    quiet = ProcessPassRunner({}, command=["true"])
    with pytest.raises(RegistryError) as raised:
        asyncio.run(quiet.run(Origin.system(), grace_seconds=0, dry_run=False, orphans=False))
    assert raised.value.code is ErrorCode.UNAVAILABLE
    assert raised.value.message.endswith("its process printed no report")


def test_a_failed_scheduled_pass_finishes_its_lease_as_failed(app: InProcessServer) -> None:
    assert app.settings is not None
    settings = app.settings.model_copy(update={"gc_interval_seconds": 600, "gc_grace_seconds": 0})
    something_due(app)

    async def scheduled() -> Any:
        backend = backend_for(app.database_url)
        await backend.start()
        services = Services.build(settings, backend=backend)
        services.gc.runner = broken_runner(app)
        try:
            with pytest.raises(RegistryError):
                await services.gc.scheduled()
            return await services.gc.schedules.last("gc")
        finally:
            await services.close()

    last = asyncio.run(scheduled())
    assert last is not None, last
    assert last["result"] == {"failed": True}


def test_a_cancelled_pass_stops_its_child(app: InProcessServer) -> None:
    # `sleep` stands for a long pass: cancelled (the server shuts down), it is stopped.
    runner = ProcessPassRunner({}, command=["sleep", "60"])

    async def cancel() -> float:
        task = asyncio.create_task(
            runner.run(Origin.system(), grace_seconds=0, dry_run=False, orphans=False)
        )
        await asyncio.sleep(0.3)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - started

    assert asyncio.run(cancel()) < 5


def test_the_server_counts_what_a_child_removed(app: InProcessServer) -> None:
    with app.client(auth=app.auth) as client:
        ns = f"gcp-{secrets.token_hex(4)}"
        assert client.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
        push_blob(client, f"{ns}/app", secrets.token_bytes(500))
        done = client.post("/api/v1/gc", json={"grace": "0s"})
        assert done.status_code == 200 and done.json()["blobs"] == 1, done.text
        dry = client.post("/api/v1/gc", json={"grace": "0s", "dry_run": True})
        assert dry.status_code == 200 and dry.json()["dry_run"], dry.text
        metrics = client.get("/metrics").text
    assert 'seawall_gc_reclaimed_objects_total{kind="blob"} 1.0' in metrics
    assert "seawall_gc_pass_seconds_count 1.0" in metrics  # the dry run is not counted
