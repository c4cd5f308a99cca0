"""Several interchangeable `seawall serve` nodes on one PostgreSQL database (issue 17), each a
real server process: what one node does, the other sees.

The two nodes of `pair` run on this host with different `node_name`s and share the database and
the data directory (blob storage: the filesystem blob store, which nodes on several hosts share
through a network file system; an S3 store is shared by its bucket). Scans are off in both: a
separate `seawall worker` runs them.

Alone: a second node refused on SQLite, and a node that loses its database (its connections
terminated and refused, on a database of its own) and recovers without a restart.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.support.images import push_image, tar_bytes, wait_for_report
from tests.support.server import (
    ADMIN_PASSWORD,
    PG_ADMIN_DSN,
    SEAWALL,
    RunningServer,
    cli_env,
    free_port,
    seawall_server,
    seawall_worker,
)

pytestmark = pytest.mark.e2e

# Periodic work, on a scale this module can watch: each runs at a node's start (or within a
# few seconds of it) and then not again for much longer than the module takes.
NODE_ENV = {
    "SEAWALL_LOG_LEVEL": "debug",  # "scheduled run" lines say which process ran what
    "SEAWALL_SCAN_IN_PROCESS": "false",
    "SEAWALL_UPLOAD_SWEEP_SECONDS": "2",  # each process checks every 2 s
    "SEAWALL_EXCEPTION_SWEEP_SECONDS": "3600",
    "SEAWALL_PROMOTION_SWEEP_SECONDS": "3600",
    "SEAWALL_GC_INTERVAL_SECONDS": "8",  # a pass is checked for every 2 s
    "SEAWALL_INVENTORY_CHECK_SECONDS": "0.5",
}
WITHIN = 1.0  # seconds: how soon a change on one node holds on the other


def until(check: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `check` until true; the seconds it took."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.02)
    return time.monotonic() - started


def get(server: RunningServer, path: str, **kwargs: Any) -> httpx.Response:
    """A request on a connection of its own: the kernel hands each new connection to any of the
    node's worker processes (a kept-alive one stays with one)."""
    return httpx.get(server.url + path, timeout=10, **kwargs)


def token(server: RunningServer, auth: tuple[str, str], scope: str | None = None) -> str:
    params = {"service": "seawall", **({"scope": scope} if scope else {})}
    response = get(server, "/token", params=params, auth=auth)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def kid(jwt: str) -> str:
    header = jwt.split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"])


def bearer(jwt: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {jwt}"}


def answers(server: RunningServer, jwt: str, tries: int) -> list[int]:
    """The status codes of `tries` requests with the token, sent at once, each on a connection
    of its own (so the node's workers share them). At once, not one after the other: on a busy
    host twelve requests in a row took 1.2 s, which a check of "within a second" then counted."""
    with ThreadPoolExecutor(tries) as pool:
        return list(
            pool.map(lambda _: get(server, "/v2/", headers=bearer(jwt)).status_code, range(tries))
        )


def accepted(server: RunningServer, jwt: str, tries: int = 8) -> bool:
    """Whether every one of `tries` requests (spread over the node's workers) takes the token."""
    return all(status == 200 for status in answers(server, jwt, tries))


def refused(server: RunningServer, jwt: str, tries: int = 8) -> bool:
    return all(status == 401 for status in answers(server, jwt, tries))


def command(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    """A `seawall` command, as an operator runs it against the nodes' database."""
    return subprocess.run(
        [SEAWALL, *args], env=cli_env(server), capture_output=True, text=True, timeout=60
    )


def log_lines(*servers: RunningServer) -> list[dict[str, Any]]:
    """The JSON lines the servers logged."""
    lines = []
    for server in servers:
        for line in server.log().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
    return lines


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, RunningServer]]:
    tmp = tmp_path_factory.mktemp("nodes")
    with (
        seawall_server(
            tmp / "a", "postgres", workers=2, extra_env={**NODE_ENV, "SEAWALL_NODE_NAME": "node-a"}
        ) as a,
        seawall_server(
            tmp / "b",
            "postgres",
            workers=2,
            extra_env={**NODE_ENV, "SEAWALL_NODE_NAME": "node-b"},
            shared=a,
        ) as b,
    ):
        yield a, b


def test_both_nodes_are_live_in_the_database(pair: tuple[RunningServer, RunningServer]) -> None:
    a, _ = pair
    listed = command(a, "signing-key", "list", "--json")
    assert listed.returncode == 0, listed.stderr

    async def live() -> set[str]:
        conn = await asyncpg.connect(a.database_url.replace("+asyncpg", ""))
        try:
            rows = await conn.fetch(
                "SELECT DISTINCT name FROM nodes WHERE seen_at > $1", time.time() - 30
            )
        finally:
            await conn.close()
        return {row["name"] for row in rows}

    assert asyncio.run(live()) == {"node-a", "node-b"}


def test_a_token_issued_by_one_node_is_accepted_by_all_rotation_included(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    from_a, from_b = token(a, a.auth), token(b, b.auth)
    assert kid(from_a) == kid(from_b)
    assert accepted(b, from_a) and accepted(a, from_b)

    rotated = command(a, "signing-key", "rotate", "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    assert new["state"] == "signing" and new["kid"] != kid(from_a)
    # Every process of both nodes hears of it (LISTEN/NOTIFY) and signs with the new key.
    for node in (a, b):
        until(
            lambda node=node: all(kid(token(node, node.auth)) == new["kid"] for _ in range(8)),
            2 * WITHIN,
            f"{node.url} signs with the new key",
        )
    after = token(b, b.auth)
    assert accepted(a, after) and accepted(b, after)
    assert accepted(a, from_a) and accepted(b, from_b)  # the old key still verifies

    retired = command(a, "signing-key", "retire", kid(from_a))
    assert retired.returncode == 0, retired.stderr
    for node in (a, b):
        until(lambda node=node: refused(node, from_a), 2 * WITHIN, "the retired key refused")
    assert accepted(a, after) and accepted(b, after)
    states = [
        json.loads(line) for line in command(a, "signing-key", "list", "--json").stdout.splitlines()
    ]
    assert {s["kid"]: s["state"] for s in states} == {kid(from_a): "retired", new["kid"]: "signing"}


def test_an_account_disabled_on_one_node_is_refused_on_the_other_within_a_second(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    name, password = f"dev{secrets.token_hex(3)}", "a-password-of-some-length"
    created = a.http.post("/api/v1/users", json={"name": name, "password": password}, auth=a.auth)
    assert created.status_code == 201, created.text
    jwt = token(b, (name, password))
    assert accepted(b, jwt, tries=12)  # each of b's processes now remembers the account

    disabled = a.http.patch(f"/api/v1/users/{name}", json={"disabled": True}, auth=a.auth)
    assert disabled.status_code == 200, disabled.text
    took = until(lambda: refused(b, jwt, tries=12), WITHIN, "the disabled account refused on b")
    assert took < WITHIN
    assert b.http.get("/v2/", auth=(name, password)).status_code == 401


def test_a_chunked_upload_moves_between_nodes(pair: tuple[RunningServer, RunningServer]) -> None:
    a, b = pair
    repo = f"nodes{secrets.token_hex(3)}/app"
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    chunks = [data[: 1024 * 1024], data[1024 * 1024 : 2 * 1024 * 1024], data[2 * 1024 * 1024 :]]

    started = a.http.post(f"/v2/{repo}/blobs/uploads/", auth=a.auth)  # POST on A
    assert started.status_code == 202, started.text
    location = started.headers["Location"]
    offset = 0
    for node, chunk in ((b, chunks[0]), (a, chunks[1])):  # PATCH on B, PATCH on A
        patched = node.http.patch(
            location,
            content=chunk,
            auth=node.auth,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
            },
        )
        assert patched.status_code == 202, patched.text
        offset += len(chunk)
        assert patched.headers["Range"] == f"0-{offset - 1}"
        location = patched.headers["Location"]
    status = b.http.get(location, auth=b.auth)
    assert status.status_code == 204 and status.headers["Range"] == f"0-{offset - 1}"
    finished = b.http.put(  # PUT on B
        location,
        params={"digest": digest},
        content=chunks[2],
        auth=b.auth,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert finished.status_code == 201, finished.text
    for node in (a, b):
        pulled = node.http.get(f"/v2/{repo}/blobs/{digest}", auth=node.auth)
        assert pulled.status_code == 200 and pulled.content == data


def test_periodic_work_runs_on_one_node_at_a_time(
    pair: tuple[RunningServer, RunningServer],
) -> None:
    a, b = pair
    began = time.time()
    # The inventory report is due once a day from now on: one process of one node writes it.
    saved = a.http.put("/api/v1/policy", content='[inventory]\nschedule = "daily"\n', auth=a.auth)
    assert saved.status_code == 200, saved.text
    until(
        lambda: any(line["event"] == "inventory report written" for line in log_lines(a, b)),
        10,
        "a scheduled inventory report",
    )
    # A garbage-collection pass is due every 8 s (from the end of the last one), checked for
    # every 2 s by each process.
    until(
        lambda: any(line.get("task") == "gc" for line in log_lines(a, b)),
        10,
        "a scheduled garbage-collection pass",
    )
    time.sleep(max(0.0, began + 7 - time.time()))  # every process has checked a few times
    ended = time.time()
    runs: dict[str, list[float]] = {}
    for line in log_lines(a, b):
        at = datetime.fromisoformat(line["timestamp"]).timestamp()
        if line["event"] == "scheduled run":
            runs.setdefault(line["task"], []).append(at)
        if line["event"] == "inventory report written":
            runs.setdefault("inventory", []).append(at)
    # Four processes (two per node) tried each: one ran it. The exception and promotion sweeps
    # ran at the first node's start and are not due again for an hour: the others found them
    # done, the second node too.
    for task in ("exceptions", "promotions", "inventory"):
        assert len(runs.get(task, [])) == 1, (task, runs)
    passes = sorted(runs["gc"])
    assert all(later - earlier > 7.9 for earlier, later in itertools.pairwise(passes)), passes
    # The storage sweep for orphan upload files is due every 2 s and each of the four
    # processes looks every 2 s: one of them runs it each time (without the lease all four
    # would, some 14 times in this window), never two within 2 s of each other.
    sweeps = sorted(at for at in runs["uploads"] if began <= at <= ended)
    assert 2 <= len(sweeps) <= 4, sweeps
    assert all(later - earlier > 1.9 for earlier, later in itertools.pairwise(sweeps)), sweeps


def test_a_scan_queued_by_one_node_runs_on_a_worker_and_shows_on_the_other(
    pair: tuple[RunningServer, RunningServer], tmp_path: Path
) -> None:
    a, b = pair
    repo = f"scan{secrets.token_hex(3)}/app"
    layer = tar_bytes(
        {"etc/os-release": b'ID=debian\nVERSION_ID="12"\n', "app/run": b"#!/bin/sh\n"}
    )
    with a.client(auth=a.auth) as client:
        push_image(client, repo, "1.0", [layer])
    with b.client(auth=b.auth) as client:
        queued = client.get(f"/api/v1/scans/{repo}:1.0").json()
        assert queued["state"] == "queued", queued  # neither node scans
        log = tmp_path / "worker.log"
        env = {**cli_env(a), "SEAWALL_SCAN_POLL_SECONDS": "0.2", "SEAWALL_NODE_NAME": "scanner"}
        with seawall_worker(env, log):
            report = wait_for_report(client, repo, "1.0", timeout=60)
    assert report["state"] == "done", report
    assert report["status"] == "complete", report
    assert "scanning" in log.read_text()


# -- alone -----------------------------------------------------------------------------------


def test_sqlite_refuses_a_second_node(tmp_path: Path) -> None:
    with seawall_server(
        tmp_path / "one", "sqlite", workers=2, extra_env={"SEAWALL_NODE_NAME": "one"}
    ) as one:
        env = {**cli_env(one), "SEAWALL_ADMIN_PASSWORD": ADMIN_PASSWORD}

        def serve(node: str) -> subprocess.Popen[str]:
            return subprocess.Popen(
                [SEAWALL, "serve", "--port", str(free_port()), "--workers", "1"],
                env={**env, "SEAWALL_NODE_NAME": node},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )

        other = serve("two")
        _, stderr = other.communicate(timeout=60)
        assert other.returncode == 1, stderr
        [line] = [line for line in stderr.splitlines() if line.startswith("seawall:")]
        assert re.fullmatch(
            r"seawall: node 'one' uses this SQLite database \(seen \d+ s ago\), and SQLite serves"
            r" one node: run several nodes on PostgreSQL \(database_url\), or stop 'one' first"
            r" \(this node is 'two'; node_name names it\)",
            line,
        ), line
        # Another `seawall serve` of the same node (one host, one name) is welcome.
        with seawall_server(
            tmp_path / "same", "sqlite", extra_env={"SEAWALL_NODE_NAME": "one"}, shared=one
        ) as same:
            assert same.http.get("/v2/", auth=same.auth).status_code == 200
    # Both stopped cleanly: the database is free for another node.
    with seawall_server(
        tmp_path / "moved", "sqlite", extra_env={"SEAWALL_NODE_NAME": "two"}, shared=one
    ) as moved:
        assert moved.http.get("/v2/", auth=moved.auth).status_code == 200


async def _admin(sql: str) -> list[Any]:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


def test_a_node_that_loses_the_database_is_unready_and_recovers_by_itself(
    tmp_path: Path,
) -> None:
    with seawall_server(tmp_path, "postgres", workers=1) as server:
        name = server.database_url.rsplit("/", 1)[1]
        assert re.fullmatch(r"seawall_t_[0-9a-f]+", name)
        repo = f"db{secrets.token_hex(3)}/app"
        with server.client(auth=server.auth) as client:
            pushed = push_image(client, repo, "1.0", [tar_bytes({"a": b"a"})])

        def ready() -> int:
            return server.http.get("/readyz", timeout=10).status_code

        # Lose the database: no new connection to it, and every one it had terminated (only
        # this test's database; the shared server keeps running).
        asyncio.run(_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
        try:
            asyncio.run(
                _admin(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    f" WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                )
            )
            until(lambda: ready() == 503, 10, "/readyz says 503")
            answer = server.http.get("/readyz", timeout=10)
            assert answer.status_code == 503 and answer.text.startswith("not ready: database")
            assert server.http.get("/v2/", auth=server.auth).status_code >= 500
        finally:
            asyncio.run(_admin(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        until(lambda: ready() == 200, 15, "/readyz back to 200 without a restart")
        assert server.process is not None and server.process.poll() is None
        # Requests work again: the pool dropped its dead connections.
        with server.client(auth=server.auth) as client:
            for _ in range(5):
                got = client.get(
                    f"/v2/{repo}/manifests/1.0",
                    headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
                )
                assert got.status_code == 200 and got.headers["Docker-Content-Digest"] == (
                    pushed.digest
                )
            assert push_image(client, repo, "2.0", [tar_bytes({"b": b"b"})]).digest
        # The account and key notifications are heard again: the LISTEN connection is back.
        until(
            lambda: bool(
                asyncio.run(
                    _admin(
                        "SELECT 1 FROM pg_stat_activity WHERE datname = '" + name + "'"
                        " AND query LIKE 'LISTEN %'"
                    )
                )
            ),
            10,
            "the LISTEN connection opened again",
        )
