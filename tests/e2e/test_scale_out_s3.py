"""The scale-out deployment end to end: two `seawall serve` nodes with data directories of their
own, sharing one PostgreSQL database and one S3 bucket (moto's standalone server), and a
separate `seawall worker`. skopeo pushes through node A, a chunked upload moves between the
nodes, podman pulls through node B, the scan report the worker wrote is read from both, and the
audit chain, holding rows from both nodes, verifies."""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.clients import PodmanClient, SourceImage, build_source_image
from tests.support.images import wait_for_report
from tests.support.s3 import MotoServer
from tests.support.server import SEAWALL, RunningServer, cli_env, seawall_server, seawall_worker
from tests.support.skopeo import Skopeo

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def bucket_env(moto: MotoServer) -> dict[str, str]:
    """The settings that put the nodes' (and the worker's) blobs in one bucket."""
    return moto.env(moto.new_bucket())


@pytest.fixture(scope="module")
def nodes(
    tmp_path_factory: pytest.TempPathFactory, bucket_env: dict[str, str]
) -> Iterator[tuple[RunningServer, RunningServer]]:
    tmp = tmp_path_factory.mktemp("scale-out")
    env = {**bucket_env, "SEAWALL_SCAN_IN_PROCESS": "false"}
    with seawall_server(tmp / "a", "postgres", 2, {**env, "SEAWALL_NODE_NAME": "node-a"}) as a:
        # Node B: the same database and bucket, a data directory of its own.
        b_env = {**env, "SEAWALL_NODE_NAME": "node-b"}
        with seawall_server(tmp / "b", "postgres", 2, b_env, shared=a, own_data_dir=True) as b:
            assert b.data_dir != a.data_dir
            yield a, b


@pytest.fixture
def registry(nodes: tuple[RunningServer, RunningServer]) -> RunningServer:
    return nodes[0]  # what the `skopeo` fixture logs in to


def test_two_nodes_a_worker_one_database_one_bucket(
    nodes: tuple[RunningServer, RunningServer],
    bucket_env: dict[str, str],
    skopeo: Skopeo,
    podman: PodmanClient,
    tmp_path: Path,
) -> None:
    a, b = nodes
    source: SourceImage = build_source_image(tmp_path / "oci", seed=secrets.token_hex(8))
    repo = f"fleet/app-{secrets.token_hex(4)}"
    skopeo.push(source.layout, "v1", repo)

    # A chunked upload: POST on A, PATCH on B, PATCH on A, PUT on B, parts in the bucket.
    data = secrets.token_bytes(11 * MIB + 5)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = httpx.post(f"{a.url}/v2/{repo}/blobs/uploads/", auth=a.auth).headers["location"]
    cuts = [0, 6 * MIB, 6 * MIB + 7, len(data)]
    for i, (start, end) in enumerate(itertools.pairwise(cuts)):
        node = (b, a, b)[i]
        r = httpx.patch(
            node.url + location if location.startswith("/") else location,
            content=data[start:end],
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{end - 1}",
            },
            auth=node.auth,
            timeout=60,
        )
        assert r.status_code == 202, r.text
        location = r.headers["location"]
    done = httpx.put(
        a.url + location if location.startswith("/") else location,
        params={"digest": digest},
        auth=a.auth,
        timeout=60,
    )
    assert done.status_code == 201, done.text
    pulled = httpx.get(f"{b.url}/v2/{repo}/blobs/{digest}", auth=b.auth, timeout=60)
    assert pulled.content == data

    # podman pulls through B what skopeo pushed through A.
    podman.trust(b.host)
    podman.login(b.host, b.username, b.password)
    ref = f"{b.host}/{repo}:v1"
    podman.pull(ref)
    image = podman.inspect(ref)
    assert image is not None and image.config_digest == source.config_digest
    podman.remove(ref)

    # The scan queued by A's push runs on a separate worker; both nodes show its report.
    env = {**cli_env(a), **bucket_env, "SEAWALL_SCAN_POLL_SECONDS": "0.2"}
    env["SEAWALL_NODE_NAME"] = "scanner"
    with seawall_worker(env, tmp_path / "worker.log"), a.client(auth=a.auth) as client:
        report = wait_for_report(client, repo, "v1", timeout=90)
    assert report["status"] == "complete", report
    with b.client(auth=b.auth) as client:
        assert client.get(f"/api/v1/scans/{repo}:v1").json()["digest"] == report["digest"]

    # One audit chain, with rows written by both nodes, verifies.
    verified = subprocess.run(
        [SEAWALL, "audit", "verify", "--json"],
        env=cli_env(a),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr

    def actions() -> set[str]:
        listed = subprocess.run(
            [SEAWALL, "audit", "list", "--repository", repo, "--json", "--limit", "200"],
            env=cli_env(a),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert listed.returncode == 0, listed.stderr
        return {json.loads(line)["action"] for line in listed.stdout.splitlines() if line}

    deadline = time.monotonic() + 30  # pulls are written in batches
    while not {"manifest:pushed", "manifest:pulled"} <= actions() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert {"manifest:pushed", "manifest:pulled"} <= actions()
