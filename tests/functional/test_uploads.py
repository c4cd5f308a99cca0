"""Blob uploads over HTTP: monolithic, chunked, streamed, resumed, and the ways they go wrong."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import socket
import time
from pathlib import Path

import httpx
import pytest

from tests.support.app import app_server
from tests.support.clock import FakeClock
from tests.support.registry import error_code, push_blob, sha256, sha512, unique_repo
from tests.support.server import RunningServer
from tests.support.stored import StoredObjects


def start(client: httpx.Client, repo: str) -> str:
    r = client.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    assert r.headers["Location"].startswith(f"/v2/{repo}/blobs/uploads/")
    assert r.headers["Docker-Upload-UUID"]
    return r.headers["Location"]


def blob_files(server: RunningServer) -> set[str]:
    """The keys of the blobs in the server's storage (its files, or its bucket)."""
    return set(StoredObjects.of(server).keys("blobs/"))


def upload_files(server: RunningServer) -> set[str]:
    """The upload sessions whose bytes are in the server's storage."""
    return StoredObjects.of(server).upload_ids()


def test_monolithic_post_with_digest(client: httpx.Client) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(300_000)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data)
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{repo}/blobs/{sha256(data)}"
    assert r.headers["Docker-Content-Digest"] == sha256(data)
    got = client.get(f"/v2/{repo}/blobs/{sha256(data)}")
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["Docker-Content-Digest"] == sha256(data)


def test_post_then_put(client: httpx.Client) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(2_500_000)
    location = start(client, repo)
    r = client.put(location, params={"digest": sha256(data)}, content=data)
    assert r.status_code == 201, r.text
    head = client.head(f"/v2/{repo}/blobs/{sha256(data)}")
    assert head.status_code == 200
    assert head.headers["Content-Length"] == str(len(data))
    assert head.content == b""


def test_chunked_upload_with_status(client: httpx.Client) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(3 * 1024 * 1024 + 17)
    location = start(client, repo)
    chunks = [data[i : i + 1_000_000] for i in range(0, len(data), 1_000_000)]
    offset = 0
    for chunk in chunks:
        r = client.patch(
            location,
            content=chunk,
            headers={
                "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                "Content-Type": "application/octet-stream",
            },
        )
        assert r.status_code == 202, r.text
        offset += len(chunk)
        assert r.headers["Range"] == f"0-{offset - 1}"
        location = r.headers["Location"]
        status = client.get(location)
        assert status.status_code == 204
        assert status.headers["Range"] == f"0-{offset - 1}"
        assert status.headers["Location"] == location
    r = client.put(location, params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_streamed_upload_then_final_chunk_in_put(client: httpx.Client) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(1_500_000)
    location = start(client, repo)

    def stream():  # no Content-Length: chunked transfer encoding
        yield data[:700_000]
        yield data[700_000:1_000_000]

    r = client.patch(location, content=stream())
    assert r.status_code == 202, r.text
    assert r.headers["Range"] == "0-999999"
    r = client.put(
        location,
        params={"digest": sha256(data)},
        content=data[1_000_000:],
        headers={"Content-Range": f"1000000-{len(data) - 1}"},
    )
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_sha512_blob(client: httpx.Client) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(50_000)
    push_blob(client, repo, data, sha512(data))
    r = client.get(f"/v2/{repo}/blobs/{sha512(data)}")
    assert r.status_code == 200
    assert r.content == data
    # The same bytes were never pushed under their sha256 digest.
    assert client.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404


def test_out_of_order_and_repeated_chunks_are_416(client: httpx.Client) -> None:
    repo = unique_repo()
    location = start(client, repo)
    r = client.patch(location, content=b"a" * 100, headers={"Content-Range": "0-99"})
    assert r.status_code == 202
    location = r.headers["Location"]
    repeated = client.patch(location, content=b"a" * 100, headers={"Content-Range": "0-99"})
    assert repeated.status_code == 416
    assert error_code(repeated) == "RANGE_INVALID"
    assert repeated.headers["Range"] == "0-99"
    gap = client.patch(location, content=b"b" * 10, headers={"Content-Range": "200-209"})
    assert gap.status_code == 416
    # The session is intact: the right next chunk is still accepted.
    r = client.patch(location, content=b"b" * 10, headers={"Content-Range": "100-109"})
    assert r.status_code == 202
    data = b"a" * 100 + b"b" * 10
    assert client.put(location, params={"digest": sha256(data)}).status_code == 201


@pytest.mark.parametrize("header", ["abc", "10-5", "-5", "5-", "bytes=0-3"])
def test_malformed_content_range(client: httpx.Client, header: str) -> None:
    location = start(client, unique_repo())
    r = client.patch(location, content=b"abcd", headers={"Content-Range": header})
    assert r.status_code == 416
    assert error_code(r) == "RANGE_INVALID"
    assert "Content-Range" in r.json()["errors"][0]["message"]


def test_content_range_length_disagrees_with_body(client: httpx.Client) -> None:
    location = start(client, unique_repo())
    r = client.patch(location, content=b"abcd", headers={"Content-Range": "0-9"})
    assert r.status_code == 416
    assert client.get(location).headers["Range"] == "0-0"


def test_digest_mismatch_stores_nothing(client: httpx.Client, server: RunningServer) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(10_000)
    wrong = sha256(b"something else")
    before = set(blob_files(server))
    location = start(client, repo)
    r = client.put(location, params={"digest": wrong}, content=data)
    assert r.status_code == 400
    assert error_code(r) == "DIGEST_INVALID"
    assert sha256(data) in r.json()["errors"][0]["message"]
    assert client.head(f"/v2/{repo}/blobs/{wrong}").status_code == 404
    assert client.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404
    assert set(blob_files(server)) == before
    # The failed session is gone, with its bytes.
    assert client.get(location).status_code == 404


def test_monolithic_digest_mismatch(client: httpx.Client) -> None:
    repo = unique_repo()
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(b"x")}, content=b"not x")
    assert r.status_code == 400
    assert error_code(r) == "DIGEST_INVALID"
    assert client.head(f"/v2/{repo}/blobs/{sha256(b'x')}").status_code == 404


@pytest.mark.parametrize(
    "digest",
    ["sha256:abc", "md5:d41d8cd98f00b204e9800998ecf8427e", "nonsense", "sha256:" + "G" * 64],
)
def test_malformed_or_unsupported_digest(client: httpx.Client, digest: str) -> None:
    repo = unique_repo()
    location = start(client, repo)
    r = client.put(location, params={"digest": digest}, content=b"data")
    assert r.status_code == 400
    assert error_code(r) == "DIGEST_INVALID"
    r = client.get(f"/v2/{repo}/blobs/{digest}")
    assert r.status_code == 400
    assert error_code(r) == "DIGEST_INVALID"


def test_put_without_digest(client: httpx.Client) -> None:
    location = start(client, unique_repo())
    r = client.put(location, content=b"data")
    assert r.status_code == 400
    assert error_code(r) == "DIGEST_INVALID"


@pytest.mark.parametrize("upload_id", ["0" * 32, "not-a-uuid", "%2e%2e"])
def test_unknown_upload(client: httpx.Client, upload_id: str) -> None:
    repo = unique_repo()
    for method in ("GET", "PATCH", "PUT", "DELETE"):
        r = client.request(
            method, f"/v2/{repo}/blobs/uploads/{upload_id}", params={"digest": sha256(b"")}
        )
        assert r.status_code == 404, (method, r.text)
        assert error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_upload_belongs_to_its_repository(client: httpx.Client) -> None:
    location = start(client, unique_repo())
    other = unique_repo()
    upload_id = location.rsplit("/", 1)[1]
    r = client.get(f"/v2/{other}/blobs/uploads/{upload_id}")
    assert r.status_code == 404
    assert error_code(r) == "BLOB_UPLOAD_UNKNOWN"


def test_cancel_upload_removes_its_bytes(client: httpx.Client, server: RunningServer) -> None:
    location = start(client, unique_repo())
    upload_id = location.rsplit("/", 1)[1]
    assert client.patch(location, content=b"x" * 1000).status_code == 202
    assert upload_id in upload_files(server)
    assert client.delete(location).status_code == 204
    assert upload_id not in upload_files(server)
    assert client.get(location).status_code == 404


def basic(server: RunningServer) -> str:
    return base64.b64encode(server.creds.encode()).decode()


def _send_partial(server: RunningServer, path: str, total: int, sent: bytes) -> None:
    """PATCH announcing `total` bytes, send only `sent`, then hang up."""
    host, port = server.host.split(":")
    with socket.create_connection((host, int(port))) as sock:
        head = (
            f"PATCH {path} HTTP/1.1\r\nHost: {server.host}\r\n"
            f"Authorization: Basic {basic(server)}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n"
        )
        sock.sendall(head.encode() + sent)
        time.sleep(0.3)
        sock.shutdown(socket.SHUT_RDWR)


def test_disconnect_mid_upload_keeps_session_resumable(registry: RunningServer) -> None:
    # A real server: the client hangs up on a socket.
    with registry.client(auth=registry.auth) as client:
        _disconnect_mid_upload_keeps_session_resumable(registry, client)


def _disconnect_mid_upload_keeps_session_resumable(
    server: RunningServer, client: httpx.Client
) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(5 * 1024 * 1024)
    location = start(client, repo)
    sent = 2 * 1024 * 1024 + 12345
    _send_partial(server, location, len(data), data[:sent])
    deadline = time.monotonic() + 10
    received = -1
    while time.monotonic() < deadline:
        status = client.get(location)
        assert status.status_code == 204
        received = int(status.headers["Range"].split("-")[1]) + 1
        if received == sent:
            break
        time.sleep(0.1)
    assert received == sent, "every byte that arrived is kept"
    assert client.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404
    r = client.patch(
        location, content=data[sent:], headers={"Content-Range": f"{sent}-{len(data) - 1}"}
    )
    assert r.status_code == 202, r.text
    r = client.put(r.headers["Location"], params={"digest": sha256(data)})
    assert r.status_code == 201, r.text
    assert (
        hashlib.sha256(client.get(f"/v2/{repo}/blobs/{sha256(data)}").content).hexdigest()
        == (sha256(data).split(":")[1])
    )


def test_blob_range_requests(client: httpx.Client) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(3 * 1024 * 1024)
    digest = push_blob(client, repo, data)
    r = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=100-199"})
    assert r.status_code == 206
    assert r.content == data[100:200]
    assert r.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    r = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=1048000-"})
    assert r.status_code == 206
    assert r.content == data[1048000:]
    r = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": f"bytes={len(data) + 5}-"})
    assert r.status_code == 416


def test_repository_isolation_and_mount(client: httpx.Client) -> None:
    a, b = unique_repo(), unique_repo()
    data = secrets.token_bytes(4000)
    digest = push_blob(client, a, data)
    r = client.get(f"/v2/{b}/blobs/{digest}")
    assert r.status_code == 404
    assert error_code(r) == "BLOB_UNKNOWN"
    assert client.head(f"/v2/{b}/blobs/{digest}").status_code == 404
    # Mount from a repository that does not have it: a normal upload session instead.
    r = client.post(f"/v2/{b}/blobs/uploads/", params={"mount": digest, "from": unique_repo()})
    assert r.status_code == 202
    r = client.post(f"/v2/{b}/blobs/uploads/", params={"mount": digest, "from": a})
    assert r.status_code == 201
    assert r.headers["Location"] == f"/v2/{b}/blobs/{digest}"
    assert client.get(f"/v2/{b}/blobs/{digest}").content == data


def test_delete_blob_unlinks_from_repository_only(client: httpx.Client) -> None:
    a, b = unique_repo(), unique_repo()
    data = secrets.token_bytes(4000)
    digest = push_blob(client, a, data)
    push_blob(client, b, data)
    assert client.delete(f"/v2/{a}/blobs/{digest}").status_code == 202
    assert client.head(f"/v2/{a}/blobs/{digest}").status_code == 404
    assert client.get(f"/v2/{b}/blobs/{digest}").content == data
    r = client.delete(f"/v2/{a}/blobs/{digest}")
    assert r.status_code == 404
    assert error_code(r) == "BLOB_UNKNOWN"


def test_expired_upload_sessions_are_removed(tmp_path: Path) -> None:
    clock = FakeClock()
    with (
        app_server(tmp_path, clock=clock, upload_sweep_seconds=1) as server,
        server.client(auth=server.auth) as client,
    ):
        location = start(client, unique_repo())
        assert client.patch(location, content=b"x" * 5000).status_code == 202
        assert len(upload_files(server)) == 1
        assert server.settings is not None
        clock.advance(server.settings.upload_expiry_seconds + 1)  # untouched for that long
        deadline = time.monotonic() + 15  # the next sweep, within upload_sweep_seconds
        while time.monotonic() < deadline and client.get(location).status_code == 204:
            time.sleep(0.1)
        r = client.get(location)
        assert r.status_code == 404
        assert error_code(r) == "BLOB_UPLOAD_UNKNOWN"
        # The sweep removes the session's row, then its bytes: they may go a moment later.
        while time.monotonic() < deadline and upload_files(server):
            time.sleep(0.05)
        assert upload_files(server) == set()
        metrics = client.get("/metrics").text
        assert "seawall_upload_sessions_open 0.0" in metrics


def test_oversized_blob_refused(tmp_path: Path) -> None:
    with (
        app_server(tmp_path, max_upload_bytes=2 * 1024 * 1024) as server,
        server.client(auth=server.auth) as client,
    ):
        data = os.urandom(3 * 1024 * 1024)
        r = client.post(
            f"/v2/{unique_repo()}/blobs/uploads/", params={"digest": sha256(data)}, content=data
        )
        assert r.status_code == 413
        assert error_code(r) == "SIZE_INVALID"
        assert blob_files(server) == set()


def test_closing_put_waits_for_a_running_patch(client: httpx.Client, server: RunningServer) -> None:
    """A PUT racing a PATCH on the same session is refused: no chunk lands in a committed blob."""
    import threading

    repo = unique_repo()
    location = start(client, repo)
    first = b"hello"
    assert (
        client.patch(location, content=first, headers={"Content-Range": "0-4"}).status_code == 202
    )
    release = threading.Event()

    def slow_body():
        yield b"EVIL"
        release.wait(10)
        yield b"!!"

    result: dict[str, int] = {}

    def patch() -> None:
        with server.client(auth=server.auth) as c:
            result["patch"] = c.patch(location, content=slow_body()).status_code

    thread = threading.Thread(target=patch)
    thread.start()
    time.sleep(0.5)  # the PATCH now holds the session (its first chunk is in)
    racing = client.put(location, params={"digest": sha256(first)})
    assert racing.status_code == 416, racing.text
    assert error_code(racing) == "RANGE_INVALID"
    release.set()
    thread.join()
    assert result["patch"] == 202
    whole = first + b"EVIL!!"
    assert client.head(f"/v2/{repo}/blobs/{sha256(first)}").status_code == 404
    r = client.put(location, params={"digest": sha256(whole)})
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/{repo}/blobs/{sha256(whole)}").content == whole


def test_refused_chunk_leaves_no_bytes_behind(client: httpx.Client) -> None:
    repo = unique_repo()
    location = start(client, repo)
    assert (
        client.patch(location, content=b"keep", headers={"Content-Range": "0-3"}).status_code == 202
    )

    def short_body():  # announces 10 bytes through Content-Range, sends 6
        yield b"refuse"

    r = client.patch(location, content=short_body(), headers={"Content-Range": "4-13"})
    assert r.status_code == 400
    assert error_code(r) == "SIZE_INVALID"
    assert client.get(location).headers["Range"] == "0-3"
    r = client.put(location, params={"digest": sha256(b"keep")})
    assert r.status_code == 201, r.text
    assert client.get(f"/v2/{repo}/blobs/{sha256(b'keep')}").content == b"keep"


@pytest.mark.parametrize(
    "header", ["bytes=5-2", "bytes=999999-", "items=0-1", "bytes=0-1,4-5", "bytes=-"]
)
def test_unsatisfiable_blob_range_is_an_oci_error(client: httpx.Client, header: str) -> None:
    repo = unique_repo()
    digest = push_blob(client, repo, b"0123456789")
    r = client.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 416
    assert error_code(r) == "RANGE_INVALID"
    assert r.headers["Content-Range"] == "bytes */10"
