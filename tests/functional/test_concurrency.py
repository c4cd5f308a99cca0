"""Many clients pushing the same things at once leave exactly one correct copy. On both
databases: how concurrent writers are serialised is the backend's."""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.registry import image_manifest, put_manifest, sha256, unique_repo
from tests.support.server import RunningServer

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
    files = [p for p in (server.data_dir / "blobs").rglob(digest.split(":")[1]) if p.is_file()]
    assert len(files) == 1
    assert files[0].read_bytes() == data
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
