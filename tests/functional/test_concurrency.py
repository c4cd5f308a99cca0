"""Many clients pushing the same things at once leave exactly one correct copy. On both
databases: how concurrent writers are serialised is the backend's."""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.registry import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_MANIFEST,
    image_manifest,
    put_manifest,
    sha256,
    unique_repo,
)
from tests.support.server import RunningServer
from tests.support.stored import StoredObjects, blob_key

CLIENTS = 20
pytestmark = pytest.mark.both_databases


def test_same_blob_from_20_clients(server: RunningServer) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(3 * 1024 * 1024)
    digest = sha256(data)

    def push(i: int) -> int:
        with server.client(auth=server.auth, timeout=60) as c:
            if i % 2:  # half monolithic, half chunked
                r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
                return r.status_code
            location = c.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
            half = len(data) // 2
            r = c.patch(location, content=data[:half], headers={"Content-Range": f"0-{half - 1}"})
            r = c.patch(
                r.headers["Location"],
                content=data[half:],
                headers={"Content-Range": f"{half}-{len(data) - 1}"},
            )
            return c.put(r.headers["Location"], params={"digest": digest}).status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(push, range(CLIENTS)))
    assert statuses == [201] * CLIENTS
    stored = StoredObjects.of(server)
    assert [key for key in stored.keys("blobs/") if key.endswith(digest.split(":")[1])] == [
        blob_key(digest)
    ]
    assert stored.blob(digest) == data
    with server.client(auth=server.auth) as c:
        assert c.get(f"/v2/{repo}/blobs/{digest}").content == data


def test_same_manifest_from_20_clients(server: RunningServer) -> None:
    repo = unique_repo()
    with server.client(auth=server.auth, timeout=60) as c:
        body = image_manifest(c, repo)

    def push(i: int) -> int:
        with server.client(auth=server.auth, timeout=60) as c:
            return put_manifest(c, repo, "latest" if i % 2 else sha256(body), body).status_code

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = list(pool.map(push, range(CLIENTS)))
    assert statuses == [201] * CLIENTS
    with server.client(auth=server.auth) as c:
        assert c.get(f"/v2/{repo}/manifests/latest").content == body
        assert c.get(f"/v2/{repo}/tags/list").json()["tags"] == ["latest"]


def test_concurrent_chunks_to_one_session_never_interleave(server: RunningServer) -> None:
    """Racing PATCHes at the same offset: one wins, the rest get 416, the data stays whole."""
    repo = unique_repo()
    with server.client(auth=server.auth) as c:
        location = c.post(f"/v2/{repo}/blobs/uploads/").headers["Location"]
    chunks = [bytes([i]) * 2_000_000 for i in range(8)]

    def patch(chunk: bytes) -> int:
        with server.client(auth=server.auth, timeout=60) as c:
            r = c.patch(location, content=chunk, headers={"Content-Range": f"0-{len(chunk) - 1}"})
            return r.status_code

    with ThreadPoolExecutor(len(chunks)) as pool:
        statuses = list(pool.map(patch, chunks))
    assert statuses.count(202) == 1
    assert set(statuses) == {202, 416}
    winner = chunks[statuses.index(202)]
    with server.client(auth=server.auth) as c:
        assert c.get(location).headers["Range"] == f"0-{len(winner) - 1}"
        r = c.put(location, params={"digest": sha256(winner)})
        assert r.status_code == 201, r.text


def test_blobs_pushed_again_while_manifests_reference_them(server: RunningServer) -> None:
    """What skopeo does when 20 copies of one image race: some clients upload a layer again
    while others already put the manifest that references it. Neither waits on the other in
    an order that deadlocks (PostgreSQL once answered some of them 500 "deadlock detected")."""
    repo = unique_repo()
    blobs = [secrets.token_bytes(2000 + i) for i in range(5)]
    with server.client(auth=server.auth, timeout=60) as c:
        for blob in blobs:
            c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(blob)}, content=blob)
        body = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": sha256(blobs[0]), "size": 2000},
                "layers": [
                    {"mediaType": OCI_LAYER, "digest": sha256(b), "size": len(b)} for b in blobs[1:]
                ],
            }
        ).encode()

    def push(i: int) -> list[int]:
        statuses = []
        with server.client(auth=server.auth, timeout=60) as c:
            for round_ in range(6):
                if (i + round_) % 2:
                    for blob in blobs:
                        r = c.post(
                            f"/v2/{repo}/blobs/uploads/",
                            params={"digest": sha256(blob)},
                            content=blob,
                        )
                        statuses.append(r.status_code)
                else:
                    statuses.append(put_manifest(c, repo, "v1", body).status_code)
        return statuses

    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = [s for client in pool.map(push, range(CLIENTS)) for s in client]
    assert set(statuses) == {201}, sorted(statuses)
