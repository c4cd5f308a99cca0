"""The `BlobStore` listing and quarantine that `seawall fsck` and the upload sweeper use, run
against every backend of the store suite (tests/functional/test_blob_store.py): what is listed
(and what is reported instead), the times given, and where a damaged blob goes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from seawall.domain.digests import Digest
from seawall.storage.base import BlobStore, StoredObject
from tests.functional.test_blob_store import Backend, filesystem_backend

DAY = 86400.0


# These tests plant files by hand; S3's listing, strays and quarantine: test_s3_store.py.
@pytest.fixture(params=["filesystem"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "filesystem":
        yield filesystem_backend(tmp_path)
    else:
        raise ValueError(request.param)


def commit(store: BlobStore, data: bytes, algorithm: str = "sha256") -> Digest:
    digest = Digest(algorithm, hashlib.new(algorithm, data).hexdigest())
    upload_id = secrets.token_hex(16)

    async def run() -> None:
        await store.create_upload(upload_id)
        writer = store.open_upload(upload_id, 0)
        writer.write([data])
        writer.close()
        await store.commit_upload(upload_id, digest, len(data))

    asyncio.run(run())
    return digest


def blobs(store: BlobStore) -> tuple[list[StoredObject], list[str]]:
    strays: list[str] = []

    async def run() -> list[StoredObject]:
        return [item async for item in store.iter_blobs(strays.append)]

    return asyncio.run(run()), strays


def uploads(store: BlobStore) -> tuple[list[StoredObject], list[str]]:
    strays: list[str] = []

    async def run() -> list[StoredObject]:
        return [item async for item in store.iter_uploads(strays.append)]

    return asyncio.run(run()), strays


def test_every_committed_blob_is_listed_with_its_size(backend: Backend) -> None:
    store = backend.store
    assert blobs(store) == ([], [])
    before = time.time() - 1
    stored = {commit(store, secrets.token_bytes(n)): n for n in (0, 1, 5000)}
    stored[commit(store, b"five hundred and twelve", "sha512")] = 23
    listed, strays = blobs(store)
    assert strays == []
    assert {item.name: item.size for item in listed} == {str(d): n for d, n in stored.items()}
    assert all(before <= item.mtime <= time.time() + 1 for item in listed)
    assert uploads(store) == ([], [])  # committing consumed the uploads


def test_what_is_not_a_blob_is_reported_not_listed(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    digest = commit(store, b"real")
    root = tmp_path / "data" / "blobs"
    hex_ = "ab" + "0" * 62
    planted = [
        f"sha256/{hex_[:2]}/{hex_}.tmp",  # not a digest
        f"sha256/00/{hex_}",  # a digest in the wrong directory
        f"sha256/{hex_[:2]}/{hex_[:63]}",  # too short
        f"sha256/{hex_[:2]}/{hex_.upper()}",  # not lowercase
        "sha256/README",  # a file where directories go
        "md5/d4/d41d8cd98f00b204e9800998ecf8427e",  # an algorithm Seawall does not use
        f"sha256/{hex_[:2]}/nested/{hex_}",  # a directory where files go
    ]
    for key in planted:
        (root / key).parent.mkdir(parents=True, exist_ok=True)
        (root / key).write_bytes(b"?")
    listed, strays = blobs(store)
    assert [item.name for item in listed] == [str(digest)]
    assert sorted(strays) == sorted(f"blobs/{key}" for key in planted)


def test_a_blob_renamed_into_place_is_young_whatever_its_bytes_age(
    backend: Backend, tmp_path: Path
) -> None:
    """A blob put in place now (or restored from a backup) must not look like old garbage."""
    data = b"restored from a backup"
    hex_ = hashlib.sha256(data).hexdigest()
    source = tmp_path / "old"
    source.write_bytes(data)
    os.utime(source, (time.time() - 30 * DAY, time.time() - 30 * DAY))
    target = tmp_path / "data" / "blobs" / "sha256" / hex_[:2] / hex_
    target.parent.mkdir(parents=True)
    now = time.time()
    source.rename(target)
    (item,), _ = blobs(backend.store)
    assert item.name == f"sha256:{hex_}"
    assert item.mtime >= now - 1


def test_uploads_are_listed_with_the_time_of_their_last_write(
    backend: Backend, tmp_path: Path
) -> None:
    store = backend.store
    upload_id = secrets.token_hex(16)

    async def start() -> None:
        await store.create_upload(upload_id)
        writer = store.open_upload(upload_id, 0)
        writer.write([b"x" * 300])
        writer.close()

    asyncio.run(start())
    path = tmp_path / "data" / "uploads" / upload_id
    os.utime(path, (1_000_000.0, 1_000_000.0))
    (tmp_path / "data" / "uploads" / "not-an-upload").write_bytes(b"?")
    listed, strays = uploads(store)
    assert listed == [StoredObject(upload_id, 300, 1_000_000.0)]
    assert strays == ["uploads/not-an-upload"]


def test_a_quarantined_blob_is_kept_out_of_service(backend: Backend, tmp_path: Path) -> None:
    store = backend.store
    data = b"damaged, say"
    digest = commit(store, data)
    key = store.quarantine(digest)
    assert key == f"quarantine/sha256/{digest.hex}"
    assert (tmp_path / "data" / key).read_bytes() == data
    assert asyncio.run(store.stat(digest)) is None
    assert blobs(store) == ([], [])  # quarantine/ is not listed as blobs
    assert store.quarantine(digest) is None  # nothing there any more

    commit(store, data)  # pushed again, and quarantined again: the first copy stays
    assert store.quarantine(digest) == f"quarantine/sha256/{digest.hex}.1"
    assert (tmp_path / "data" / "quarantine" / "sha256" / digest.hex).read_bytes() == data


def test_a_blob_is_verified_as_a_stream(backend: Backend, tmp_path: Path) -> None:
    from seawall.storage.verify import HASH_CHUNK, stored_hex

    store = backend.store
    data = secrets.token_bytes(2 * HASH_CHUNK + 17)
    digest = commit(store, data)
    read: list[int] = []
    assert asyncio.run(stored_hex(store, digest, read.append)) == digest.hex
    assert sum(read) == len(data) and max(read) <= HASH_CHUNK  # never whole in memory
    path = tmp_path / "data" / "blobs" / "sha256" / digest.hex[:2] / digest.hex
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    assert asyncio.run(stored_hex(store, digest)) == hashlib.sha256(path.read_bytes()).hexdigest()
    path.unlink()
    assert asyncio.run(stored_hex(store, digest)) is None
