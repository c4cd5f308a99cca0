"""The benchmark's S3 configuration of CNCF Distribution (bench/s3.py) works: a real
`docker-registry` on a bucket of the tests' moto server takes a blob and gives it back, streamed
with `redirect: disable: true` and as a 307 to a presigned moto URL with redirects on (the
benchmark's two Distribution rows measure exactly these two paths)."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

import httpx
from bench.data import Blob
from bench.s3 import distribution_storage, make_bucket, moto_alone
from bench.servers import distribution

from tests.support.s3 import MotoServer
from tests.support.server import require_tool


def test_distribution_on_moto_streams_then_redirects(moto: MotoServer, tmp_path: Path) -> None:
    exe = require_tool("docker-registry")
    bucket = "bench-dist-" + secrets.token_hex(4)
    make_bucket(moto.endpoint, bucket)
    blob = secrets.token_bytes(6 * 1024 * 1024 + 17)  # more than one S3 part of 5 MiB
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()

    streamed = distribution_storage(moto.endpoint, bucket, redirect=False)
    with (
        distribution(tmp_path, exe, "dist-streamed", streamed) as server,
        httpx.Client(timeout=30) as client,
    ):
        started = client.post(f"{server.url}/v2/bench/s3/blobs/uploads/")
        assert started.status_code == 202
        done = client.put(
            f"{started.headers['location']}&digest={digest}",  # after Distribution's _state
            content=blob,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert done.status_code == 201, done.text
        got = client.get(f"{server.url}/v2/bench/s3/blobs/{digest}")
        assert got.status_code == 200
        assert got.content == blob

    redirected = distribution_storage(moto.endpoint, bucket, redirect=True)
    with (
        distribution(tmp_path, exe, "dist-redirected", redirected) as server,
        httpx.Client(timeout=30) as client,
    ):
        answer = client.get(f"{server.url}/v2/bench/s3/blobs/{digest}")
        assert answer.status_code == 307
        location = answer.headers["location"]
        assert location.startswith(f"{moto.endpoint}/{bucket}/")
        assert "X-Amz-Signature=" in location
        followed = client.get(f"{server.url}/v2/bench/s3/blobs/{digest}", follow_redirects=True)
        assert followed.status_code == 200
        assert followed.content == blob


def test_moto_alone_uploads_every_blob_whole_and_reads_it_back(
    moto: MotoServer, tmp_path: Path
) -> None:
    blobs = []
    for i in range(3):
        data = secrets.token_bytes(5 * 1024 * 1024 + 1000 * i)  # two parts: 5 MiB and the rest
        path = tmp_path / f"blob-{i}"
        path.write_bytes(data)
        blobs.append(Blob(path, len(data), "sha256:" + hashlib.sha256(data).hexdigest()))
    bucket = "bench-alone-" + secrets.token_hex(4)
    figures = moto_alone(moto.endpoint, bucket, blobs, 2, 5 * 1024 * 1024)
    assert figures["bytes"] == sum(b.size for b in blobs)
    assert figures["upload_mib_s"] > 0 and figures["get_mib_s"] > 0
    client = moto.client()
    for blob in blobs:
        stored = client.get_object(Bucket=bucket, Key=blob.hex)["Body"].read()
        assert hashlib.sha256(stored).hexdigest() == blob.hex
