"""Garbage collection while the registry serves (issue 14): a pass every 100 ms, with a grace
period of a second or a few (so the passes remove the deleted images' blobs while the pushes go
on), during 50 concurrent pushes of images that share layers, deletes and re-pushes of the same
layers. A push that took less than the grace period is never refused; every image that got a
201 and was not deleted is whole afterwards; and once everything is deleted, one pass leaves
storage and the tables empty. On both databases (how concurrent writers are serialised is the
backend's)."""

from __future__ import annotations

import asyncio
import json
import secrets
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from seawall.domain.audit import Origin
from seawall.wiring import Services
from tests.support.app import TEST_STORAGE, app_server
from tests.support.databases import backend_for
from tests.support.registry import descriptor, push_blob, put_manifest, sha256
from tests.support.server import DATABASES, RunningServer
from tests.support.stored import StoredObjects

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
PUSHES = 50
# Longer than a push takes here, 16 at a time: about 0.5 s on files, 1-3 s through moto's S3
# server. A push slower than the grace period may be refused (its blobs collected before its
# manifest came), as it would be in production with a push slower than the configured hour.
GRACE = 4.0 if TEST_STORAGE == "s3" else 1.0
SHARED_LAYERS = [secrets.token_bytes(40_000 + i) for i in range(6)]


@pytest.fixture(scope="module", params=DATABASES)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    kind: str = request.param
    with app_server(tmp_path_factory.mktemp(f"gc-race-{kind}"), kind, gc_interval_seconds=0) as s:
        yield s


class Collector(threading.Thread):
    """Passes with a one-second grace period, every 100 ms, in their own event loop and
    connections (as another server process would run them), until stopped (at least one)."""

    def __init__(self, server: RunningServer) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.stop = threading.Event()
        self.passes = 0
        self.removed = 0
        self.failure: BaseException | None = None
        self.grace = GRACE

    def run(self) -> None:
        try:
            asyncio.run(self._loop())
        except BaseException as exc:  # reported by the test
            self.failure = exc

    async def _loop(self) -> None:
        backend = backend_for(self.server.database_url)
        await backend.start()
        assert self.server.settings is not None
        services = Services.build(self.server.settings, backend=backend)
        try:
            while True:
                report = await services.gc.run(Origin.system(), grace_seconds=self.grace)
                self.passes += 1
                self.removed += report.tally.blobs
                if self.stop.is_set():
                    break
                await asyncio.sleep(0.1)
        finally:
            await services.close()


def _push_image(
    c: httpx.Client, repo: str, i: int, layers: list[bytes] | None = None
) -> tuple[int, bytes, list[bytes], float]:
    """Push an image; its status, manifest, layers and the seconds from its first blob's
    request to the manifest's answer."""
    started = time.monotonic()
    if layers is None:
        layers = [SHARED_LAYERS[i % 6], SHARED_LAYERS[(i + 1) % 6], secrets.token_bytes(5000)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": i}).encode()
    for blob in (config, *layers):
        push_blob(c, repo, blob)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor(OCI_CONFIG, config),
            "layers": [descriptor(LAYER, layer) for layer in layers],
        }
    ).encode()
    status = put_manifest(c, repo, f"v{i}", body).status_code
    return status, body, layers, time.monotonic() - started


def _whole(c: httpx.Client, repo: str, tag: str, body: bytes) -> bool:
    got = c.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": OCI_MANIFEST})
    if got.status_code != 200 or got.content != body:
        return False
    manifest = json.loads(body)
    for d in [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]:
        blob = c.get(f"/v2/{repo}/blobs/{d}")
        if blob.status_code != 200 or sha256(blob.content) != d:
            return False
    return True


def _stored_bytes(server: RunningServer) -> int:
    """The bytes of the blobs in the server's storage (its files, or its bucket)."""
    return sum(StoredObjects.of(server).keys("blobs/").values())


def _count(server: RunningServer, table: str) -> int:
    async def run() -> int:
        backend = backend_for(server.database_url)
        await backend.start()
        try:
            row = await backend.fetchone(f"SELECT COUNT(*) FROM {table}")
            assert row is not None
            return int(row[0])
        finally:
            await backend.close()

    return asyncio.run(run())


def test_every_acknowledged_push_is_whole_while_passes_run(server: RunningServer) -> None:
    ns = f"race-{secrets.token_hex(4)}"
    with server.client(auth=server.auth) as c:
        assert c.post("/api/v1/namespaces", json={"name": ns}).status_code == 201
        policy = c.put(f"/api/v1/namespaces/{ns}/policy", content="[retention]\ntrash_days = 0\n")
        assert policy.status_code in (200, 201), policy.text
    collector = Collector(server)
    collector.start()
    results: dict[int, Any] = {}

    def work(i: int) -> None:
        repo = f"{ns}/app{i % 5}"
        time.sleep((i % 10) * 0.25)  # spread over a few grace periods
        with server.client(auth=server.auth, timeout=60) as c:
            status, body, layers, took = _push_image(c, repo, i)
            results[i] = (repo, status, body, took)
            if status == 201 and i % 3 == 0:
                # Delete it; a while later push the same layers again in another image.
                digest = sha256(body)
                assert c.delete(f"/v2/{repo}/manifests/{digest}").status_code == 202
                time.sleep(GRACE * (i % 2))
                status, body, _, took = _push_image(c, repo, i + 1000, layers)
                results[i + 1000] = (repo, status, body, took)

    try:
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(work, range(PUSHES)))
    finally:
        collector.stop.set()
        collector.join(60)
    assert collector.failure is None, repr(collector.failure)
    assert collector.passes >= 10  # the passes ran during the pushes, not after them
    assert collector.removed > 0  # and removed the deleted images' blobs meanwhile
    acknowledged = {
        i: r for i, r in results.items() if r[1] == 201 and not (i < 1000 and i % 3 == 0)
    }
    refused = {i: (r[1], round(r[3], 2)) for i, r in results.items() if r[1] != 201}
    # A push slower than the grace period may be refused (its blobs were collected before its
    # manifest came), never answered with a 5xx; one within the grace period is never refused.
    assert all(400 <= status < 500 for status, _ in refused.values()), refused
    assert all(took >= GRACE for _, took in refused.values()), refused
    assert len(acknowledged) >= PUSHES // 2, refused
    with server.client(auth=server.auth) as c:
        for i, (repo, _, body, _) in acknowledged.items():
            tag = f"v{i}"
            assert _whole(c, repo, tag, body), f"{repo}:{tag} is not whole after the passes"

        # Everything goes; one pass later storage and the tables hold nothing of it.
        for repo, _, body, _ in acknowledged.values():
            assert c.delete(f"/v2/{repo}/manifests/{sha256(body)}").status_code == 202
    collector = Collector(server)
    collector.grace = 0.0
    collector.stop.set()  # one pass
    asyncio.run(collector._loop())
    assert _stored_bytes(server) == 0
    for table in ("blobs", "repository_blobs", "manifests", "repository_manifests", "tags"):
        assert _count(server, table) == 0, table
