"""The registry with its blobs in S3 (moto's standalone server), on both databases: every way
of pushing a blob, pulls streamed and redirected (with `Range`), mounts, a refused digest,
garbage collection, fsck and scanning reading layers from the bucket."""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from seawall.domain.audit import Origin
from seawall.domain.digests import Digest
from seawall.storage.s3 import S3BlobStore, S3Location
from seawall.wiring import Services
from tests.support.app import app_server
from tests.support.cli import env_of, one_line_failure, seawall
from tests.support.clock import FakeClock
from tests.support.images import push_image, tar_bytes, wait_for_report
from tests.support.registry import (
    descriptor,
    error_code,
    push_blob,
    put_manifest,
    sha256,
    unique_repo,
)
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, MotoServer, signing_moto_server
from tests.support.server import DATABASES, RunningServer
from tests.support.services import services_call

MIB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
DAY = 86_400.0


def s3_settings(moto: MotoServer, bucket: str, **more: Any) -> dict[str, Any]:
    return {
        "storage_url": f"s3://{bucket}/registry",
        "s3_endpoint_url": moto.endpoint,
        "s3_region": REGION,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
        "s3_addressing_style": "path",
        "s3_part_mib": 5,
        **more,
    }


@pytest.fixture(scope="module", params=DATABASES)
def s3_registry(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, moto: MotoServer
) -> Iterator[tuple[RunningServer, FakeClock, str]]:
    clock = FakeClock()
    bucket = moto.new_bucket()
    settings = s3_settings(
        moto,
        bucket,
        gc_interval_seconds=0,
        scan_poll_seconds=0.2,
        scan_retry_seconds=0.2,
        scan_max_attempts=2,
    )
    with app_server(
        tmp_path_factory.mktemp(f"s3-{request.param}"),
        request.param,
        scanning=True,
        clock=clock,
        **settings,
    ) as server:
        yield server, clock, bucket


@pytest.fixture
def http(s3_registry: tuple[RunningServer, FakeClock, str]) -> Iterator[httpx.Client]:
    server, _, _ = s3_registry
    with server.client(auth=server.auth, timeout=60) as client:
        yield client


def objects(moto: MotoServer, bucket: str, prefix: str) -> set[str]:
    pages = moto.client().get_paginator("list_objects_v2")
    return {
        str(item["Key"])
        for page in pages.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", ())
    }


def blob_object(digest: str) -> str:
    hex_ = digest.split(":")[1]
    return f"registry/blobs/sha256/{hex_[:2]}/{hex_}"


def test_a_monolithic_push_lands_in_the_bucket_and_is_pulled_back(
    http: httpx.Client, moto: MotoServer, s3_registry: tuple[RunningServer, FakeClock, str]
) -> None:
    bucket = s3_registry[2]
    repo = unique_repo()
    data = secrets.token_bytes(7 * MIB + 3)
    digest = push_blob(http, repo, data)
    assert blob_object(digest) in objects(moto, bucket, "registry/blobs/")
    assert objects(moto, bucket, "registry/uploads/") == set()  # nothing of the upload is left
    pulled = http.get(f"/v2/{repo}/blobs/{digest}")
    assert pulled.status_code == 200 and pulled.content == data
    assert pulled.headers["content-length"] == str(len(data))
    head = http.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-0", 0, 1),
        ("bytes=100-", 100, None),
        ("bytes=-10", -10, None),
        ("bytes=5-9", 5, 10),
    ],
)
def test_a_streamed_pull_honours_range(
    http: httpx.Client, header: str, start: int, end: int | None
) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(300_000)
    digest = push_blob(http, repo, data)
    r = http.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": header})
    assert r.status_code == 206, r.text
    assert r.content == data[start:end]
    first = start % len(data)
    assert r.headers["content-range"] == f"bytes {first}-{first + len(r.content) - 1}/{len(data)}"
    outside = http.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": "bytes=400000-"})
    assert outside.status_code == 416


def test_a_chunked_upload_across_parts(http: httpx.Client) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(13 * MIB + 11)
    started = http.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202
    location = started.headers["location"]
    cuts = [0, 2 * MIB, 2 * MIB + 1, 9 * MIB, len(data)]
    for start, end in itertools.pairwise(cuts):
        r = http.patch(
            location,
            content=data[start:end],
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{start}-{end - 1}",
            },
        )
        assert r.status_code == 202, r.text
        assert r.headers["range"] == f"0-{end - 1}"
        location = r.headers["location"]
    done = http.put(location, params={"digest": sha256(data)})
    assert done.status_code == 201, done.text
    assert http.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_a_streamed_upload_and_a_closing_put_with_the_last_bytes(http: httpx.Client) -> None:
    repo = unique_repo()
    data = secrets.token_bytes(6 * MIB)

    def pieces() -> Iterator[bytes]:
        for i in range(0, 5 * MIB, 256 * 1024):
            yield data[i : i + 256 * 1024]

    location = http.post(f"/v2/{repo}/blobs/uploads/").headers["location"]
    streamed = http.patch(
        location, content=pieces(), headers={"Content-Type": "application/octet-stream"}
    )
    assert streamed.status_code == 202, streamed.text
    done = http.put(
        streamed.headers["location"],
        params={"digest": sha256(data)},
        content=data[5 * MIB :],
        headers={"Content-Type": "application/octet-stream"},
    )
    assert done.status_code == 201, done.text
    assert http.get(f"/v2/{repo}/blobs/{sha256(data)}").content == data


def test_a_wrong_digest_discards_the_upload_and_its_multipart_upload(
    http: httpx.Client, moto: MotoServer, s3_registry: tuple[RunningServer, FakeClock, str]
) -> None:
    bucket = s3_registry[2]
    repo = unique_repo()
    data = secrets.token_bytes(6 * MIB)
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()
    r = http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": wrong}, content=data)
    assert r.status_code == 400 and error_code(r) == "DIGEST_INVALID"
    assert objects(moto, bucket, "registry/uploads/") == set()
    left = moto.client().list_multipart_uploads(Bucket=bucket, Prefix="registry/uploads/")
    assert left.get("Uploads", []) == []
    assert blob_object(wrong) not in objects(moto, bucket, "registry/blobs/")


def test_a_mount_links_without_copying(
    http: httpx.Client, moto: MotoServer, s3_registry: tuple[RunningServer, FakeClock, str]
) -> None:
    source, target = unique_repo(), unique_repo()
    data = secrets.token_bytes(1000)
    digest = push_blob(http, source, data)
    before = objects(moto, s3_registry[2], "registry/blobs/")
    r = http.post(f"/v2/{target}/blobs/uploads/", params={"mount": digest, "from": source})
    assert r.status_code == 201
    assert objects(moto, s3_registry[2], "registry/blobs/") == before
    assert http.get(f"/v2/{target}/blobs/{digest}").content == data


def test_garbage_collection_and_fsck_work_on_the_bucket(
    http: httpx.Client, moto: MotoServer, s3_registry: tuple[RunningServer, FakeClock, str]
) -> None:
    server, clock, bucket = s3_registry
    repo = unique_repo()
    config = b'{"architecture":"amd64","os":"linux"}'
    layer = secrets.token_bytes(4000)
    push_blob(http, repo, config)
    push_blob(http, repo, layer)
    body = b'{"schemaVersion":2,"mediaType":"%s","config":%s,"layers":[%s]}' % (
        OCI_MANIFEST.encode(),
        _json(descriptor(OCI_CONFIG, config)),
        _json(descriptor(LAYER, layer)),
    )
    assert put_manifest(http, repo, "1", body).status_code == 201
    wait_for_report(http, repo, "1")  # its scan ends before the image goes
    orphan = push_blob(http, repo, secrets.token_bytes(2000))  # no manifest references it
    assert blob_object(orphan) in objects(moto, bucket, "registry/blobs/")
    assert http.delete(f"/v2/{repo}/manifests/{sha256(body)}").status_code == 202
    clock.advance(30 * DAY)

    async def collect(services: Services) -> dict[str, Any]:
        return (await services.gc.run(Origin.system(), grace_seconds=3600)).as_dict()

    tally = services_call(server, clock, collect)
    assert tally["blobs"] >= 3
    left = objects(moto, bucket, "registry/blobs/")
    for digest in (orphan, sha256(layer), sha256(config)):
        assert blob_object(digest) not in left

    # fsck: a blob object no row names is found, and removed by --repair.
    stray = secrets.token_bytes(100)
    moto.client().put_object(Bucket=bucket, Key=blob_object(sha256(stray)), Body=stray)
    # The bucket dates objects by the real clock: the test's clock goes past it.
    clock.advance(max(0.0, time.time() - clock.now()) + DAY)

    async def fsck(services: Services) -> Any:
        from seawall.services.fsck import FsckOptions

        return await services.fsck.run(FsckOptions(True, True, 0.0, 10), Origin.system(), None)

    report = services_call(server, clock, fsck)
    found = {code: tally.found for code, tally in report.tallies.items()}
    assert found == {"orphan-file": 1}, found  # every other blob verified against its digest
    assert report.tallies["orphan-file"].repaired == 1
    assert report.tallies["orphan-file"].examples[0].subject == sha256(stray)
    assert blob_object(sha256(stray)) not in objects(moto, bucket, "registry/blobs/")


def _json(value: dict[str, Any]) -> bytes:
    import json

    return json.dumps(value).encode()


def test_scanning_reads_layers_from_the_bucket(http: httpx.Client) -> None:
    repo = unique_repo()
    layer = tar_bytes(
        {
            "etc/os-release": b'ID=debian\nVERSION_ID="12"\n',
            "app/settings.py": b"AWS_ACCESS_KEY_ID = 'AKIA" + b"Q3EGRZ2VW7YHNLBX'\n",
        }
    )
    push_image(http, repo, "1", [layer])
    view = wait_for_report(http, repo, "1")
    assert view["status"] == "complete", view
    assert [f["path"] for f in view["secrets"]] == ["app/settings.py"], view


def test_pulls_redirect_to_the_bucket_when_configured(
    moto: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    bucket = moto.new_bucket()
    settings = s3_settings(moto, bucket, s3_redirect=True, s3_redirect_seconds=120)
    with (
        app_server(tmp_path_factory.mktemp("s3-redirect"), **settings) as server,
        server.client(auth=server.auth) as http,
    ):
        repo = unique_repo()
        data = secrets.token_bytes(50_000)
        digest = push_blob(http, repo, data)
        r = http.get(f"/v2/{repo}/blobs/{digest}")
        assert r.status_code == 307
        assert r.headers["docker-content-digest"] == digest
        location = r.headers["location"]
        assert location.startswith(moto.endpoint) and "X-Amz-Signature=" in location
        assert httpx.get(location).content == data
        ranged = httpx.get(location, headers={"Range": "bytes=10-19"})
        assert ranged.status_code == 206 and ranged.content == data[10:20]
        # The access decision comes first: no redirect for a blob this repository lacks,
        # nor for a caller without pull rights.
        assert http.get(f"/v2/{unique_repo()}/blobs/{digest}").status_code == 404
        with server.client() as anonymous:
            assert anonymous.get(f"/v2/{repo}/blobs/{digest}").status_code == 401


def test_readiness_reports_a_bucket_it_cannot_reach(
    moto: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    settings = s3_settings(moto, "seawall-no-such-bucket")
    with app_server(tmp_path_factory.mktemp("s3-missing"), **settings) as server:
        with server.client() as http:
            r = http.get("/readyz")
            assert r.status_code == 503, r.text
        moto.client().create_bucket(Bucket="seawall-no-such-bucket")
        with server.client() as http:
            assert http.get("/readyz").status_code == 200


def test_server_gc_passes_in_child_processes_sign_with_the_configured_keys(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The server runs each garbage-collection pass in a child process (services/gc_process.py),
    handed its settings: the S3 keys must reach it in clear, not as the masked dump of secret
    settings, or a bucket that checks signatures refuses every request of the pass."""
    with signing_moto_server() as signing:
        settings = s3_settings(
            signing.server,
            signing.bucket,
            s3_access_key_id=signing.access_key_id,
            s3_secret_access_key=signing.secret_access_key,
            gc_interval_seconds=0,
        )
        # The system clock (no `clock=`): the app runs its passes in child processes.
        with (
            app_server(tmp_path_factory.mktemp("s3-gc-child"), **settings) as server,
            server.client(auth=server.auth) as http,
        ):
            repo = unique_repo()
            digest = push_blob(http, repo, secrets.token_bytes(800))  # no manifest: garbage
            store = S3BlobStore(
                S3Location(signing.bucket, "registry/"),
                signing.server.options(
                    access_key_id=signing.access_key_id,
                    secret_access_key=signing.secret_access_key,
                ),
            )
            assert store.exists(Digest.parse(digest))
            done = http.post("/api/v1/gc", json={"grace": "0s"})
            assert done.status_code == 200, done.text
            assert done.json()["blobs"] == 1
            assert not store.exists(Digest.parse(digest))


def test_a_command_pointed_at_a_bucket_that_is_not_there_fails_in_one_line(
    s3_registry: tuple[RunningServer, FakeClock, str],
) -> None:
    server, _, _ = s3_registry
    missing = "s3://seawall-no-such-bucket/registry"
    env = {**env_of(server), "SEAWALL_STORAGE_URL": missing}
    line = one_line_failure(seawall("fsck", env=env))
    assert missing in line and "NoSuchBucket" in line, line
