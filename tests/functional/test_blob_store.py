"""The `BlobStore` protocol, one suite run against every backend: the filesystem and S3 (moto's
standalone server, tests/support/s3.py).

A backend joins the suite by adding a `Backend` to the `backend` fixture: the store, and a way
to list the keys it holds so the tests can see what is stored where (an upload's objects, which
differ by backend, count as one key `uploads/<id>`).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from seawall.domain.digests import Digest
from seawall.storage.base import BlobStore
from seawall.storage.filesystem import READ_CHUNK, FilesystemBlobStore
from tests.support.s3 import MotoServer

BACKENDS = ("filesystem", "s3")
UPLOAD = "0123456789abcdef0123456789abcdef"
OTHER_UPLOAD = "fedcba9876543210fedcba9876543210"


@dataclass
class Backend:
    store: BlobStore
    keys: Callable[[], set[str]]  # every stored object, as "blobs/..." or "uploads/..." keys
    name: str = "filesystem"


def filesystem_backend(tmp: Path) -> Backend:
    root = tmp / "data"
    store = FilesystemBlobStore(root)

    def keys() -> set[str]:
        return {
            p.relative_to(root).as_posix()
            for sub in ("blobs", "uploads")
            for p in (root / sub).rglob("*")
            if p.is_file()
        }

    return Backend(store, keys)


def s3_backend(moto: MotoServer) -> Backend:
    store = moto.store("registry/")
    client = moto.client()

    def keys() -> set[str]:
        found = set()
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket):
            for item in page.get("Contents", ()):
                key = str(item["Key"]).removeprefix("registry/")
                found.add("/".join(key.split("/")[:2]) if key.startswith("uploads/") else key)
        return found

    return Backend(store, keys, "s3")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "filesystem":
        yield filesystem_backend(tmp_path)
    elif request.param == "s3":
        yield s3_backend(request.getfixturevalue("moto"))
    else:
        raise ValueError(request.param)


@pytest.fixture
def store(backend: Backend) -> BlobStore:
    return backend.store


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return asyncio.run(_collect(chunks))


def upload(store: BlobStore, upload_id: str, data: bytes) -> int:
    """Create an upload holding `data`, written in three pieces of the three accepted types."""
    asyncio.run(store.create_upload(upload_id))
    writer = store.open_upload(upload_id, 0)
    third = len(data) // 3
    writer.write([data[:third]])
    writer.write([data[third : 2 * third], data[2 * third :]])
    return writer.close()


def commit(store: BlobStore, upload_id: str, data: bytes, algorithm: str = "sha256") -> Digest:
    upload(store, upload_id, data)
    digest = Digest.of(data, algorithm)
    asyncio.run(store.commit_upload(upload_id, digest, len(data)))
    return digest


def blob_key(digest: Digest) -> str:
    return f"blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}"


# -- uploads --------------------------------------------------------------------------------


def test_create_upload_is_empty(backend: Backend, store: BlobStore) -> None:
    asyncio.run(store.create_upload(UPLOAD))
    # The filesystem makes the upload's file; S3 stores nothing until bytes come.
    assert backend.keys() == ({f"uploads/{UPLOAD}"} if backend.name == "filesystem" else set())
    assert collect(store.read_upload(UPLOAD, 0)) == b""


def test_writes_then_close_returns_the_size(store: BlobStore) -> None:
    data = secrets.token_bytes(3000)
    assert upload(store, UPLOAD, data) == 3000
    assert collect(store.read_upload(UPLOAD, 3000)) == data


def test_close_is_idempotent(store: BlobStore) -> None:
    asyncio.run(store.create_upload(UPLOAD))
    writer = store.open_upload(UPLOAD, 0)
    writer.write([b"hello"])
    assert writer.close() == 5
    assert writer.close() == 5
    assert collect(store.read_upload(UPLOAD, 5)) == b"hello"


def test_chunks_append(store: BlobStore) -> None:
    asyncio.run(store.create_upload(UPLOAD))
    for offset, chunk in ((0, b"abc"), (3, b"def"), (6, b"g")):
        writer = store.open_upload(UPLOAD, offset)
        writer.write([chunk])
        assert writer.close() == offset + len(chunk)
    assert collect(store.read_upload(UPLOAD, 7)) == b"abcdefg"


@pytest.mark.parametrize("offset", [0, 4, 9])
def test_reopening_at_an_offset_discards_what_is_past_it(store: BlobStore, offset: int) -> None:
    upload(store, UPLOAD, b"0123456789")
    writer = store.open_upload(UPLOAD, offset)
    writer.write([b"XY"])
    assert writer.close() == offset + 2
    assert collect(store.read_upload(UPLOAD, offset + 2)) == b"0123456789"[:offset] + b"XY"


def test_reopening_without_writing_truncates(store: BlobStore) -> None:
    upload(store, UPLOAD, b"0123456789")
    assert store.open_upload(UPLOAD, 3).close() == 3
    assert collect(store.read_upload(UPLOAD, 3)) == b"012"


def test_read_upload_spans_several_chunks(store: BlobStore) -> None:
    data = secrets.token_bytes(2 * READ_CHUNK + 17)
    upload(store, UPLOAD, data)
    assert collect(store.read_upload(UPLOAD, len(data))) == data


def test_uploads_are_independent(store: BlobStore) -> None:
    upload(store, UPLOAD, b"first")
    upload(store, OTHER_UPLOAD, b"second")
    asyncio.run(store.delete_upload(UPLOAD))
    assert collect(store.read_upload(OTHER_UPLOAD, 6)) == b"second"


def test_delete_upload(backend: Backend, store: BlobStore) -> None:
    upload(store, UPLOAD, b"bytes")
    asyncio.run(store.delete_upload(UPLOAD))
    assert backend.keys() == set()
    asyncio.run(store.delete_upload(UPLOAD))  # absent is not an error
    asyncio.run(store.delete_upload(OTHER_UPLOAD))


# -- commit and read ------------------------------------------------------------------------


def test_commit_moves_the_bytes_to_the_blob(backend: Backend, store: BlobStore) -> None:
    data = secrets.token_bytes(10_000)
    digest = commit(store, UPLOAD, data)
    assert backend.keys() == {blob_key(digest)}  # the upload is gone
    assert asyncio.run(store.stat(digest)) == len(data)
    assert collect(store.read(digest)) == data


def test_sha512_blobs(backend: Backend, store: BlobStore) -> None:
    digest = commit(store, UPLOAD, b"sha512 content", "sha512")
    assert backend.keys() == {blob_key(digest)}
    assert blob_key(digest).startswith("blobs/sha512/")
    assert collect(store.read(digest)) == b"sha512 content"


def test_blob_keys_fan_out_by_two_hex_characters(backend: Backend, store: BlobStore) -> None:
    commit(store, UPLOAD, b"hello")
    hex_ = hashlib.sha256(b"hello").hexdigest()
    assert backend.keys() == {f"blobs/sha256/{hex_[:2]}/{hex_}"}


def test_stat_of_an_absent_blob(store: BlobStore) -> None:
    assert asyncio.run(store.stat(Digest.of(b"absent"))) is None


def test_empty_blob(store: BlobStore) -> None:
    digest = commit(store, UPLOAD, b"")
    assert asyncio.run(store.stat(digest)) == 0
    assert collect(store.read(digest)) == b""


BIG = secrets.token_bytes(2 * READ_CHUNK + 100)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (0, None),
        (0, len(BIG)),
        (1, 5),
        (0, 1),
        (len(BIG) - 1, None),
        (len(BIG) - 1, len(BIG)),
        (READ_CHUNK - 1, READ_CHUNK + 1),  # across a chunk boundary
        (10, 2 * READ_CHUNK + 10),
        (READ_CHUNK, None),
        (7, 7),
        (len(BIG), None),
    ],
)
def test_read_ranges_give_exact_slices(store: BlobStore, start: int, end: int | None) -> None:
    digest = commit(store, UPLOAD, BIG)
    assert collect(store.read(digest, start, end)) == BIG[start:end]


def test_read_chunks_stay_bounded(store: BlobStore) -> None:
    """Bytes are streamed, never read whole into memory."""
    digest = commit(store, UPLOAD, BIG)

    async def sizes() -> list[int]:
        return [len(chunk) async for chunk in store.read(digest)]

    chunk_sizes = asyncio.run(sizes())
    assert sum(chunk_sizes) == len(BIG)
    assert max(chunk_sizes) <= READ_CHUNK


def test_committing_an_existing_blob_discards_the_upload(
    backend: Backend, store: BlobStore
) -> None:
    digest = commit(store, UPLOAD, b"original")
    # Different bytes under the same digest show whether the blob was overwritten.
    upload(store, OTHER_UPLOAD, b"impostor")
    asyncio.run(store.commit_upload(OTHER_UPLOAD, digest, 8))
    assert backend.keys() == {blob_key(digest)}
    assert collect(store.read(digest)) == b"original"


def test_delete_blob(backend: Backend, store: BlobStore) -> None:
    digest = commit(store, UPLOAD, b"doomed")
    kept = commit(store, OTHER_UPLOAD, b"kept")
    asyncio.run(store.delete(digest))
    assert asyncio.run(store.stat(digest)) is None
    assert backend.keys() == {blob_key(kept)}
    asyncio.run(store.delete(digest))  # absent is not an error
    asyncio.run(store.delete(Digest.of(b"never stored")))


def test_local_path_when_the_backend_has_one(store: BlobStore) -> None:
    digest = commit(store, UPLOAD, b"zero copy")
    path = store.local_path(digest)
    if path is not None:
        assert path.read_bytes() == b"zero copy"


def test_check_passes_on_a_usable_store(store: BlobStore) -> None:
    asyncio.run(store.check())


# -- upload ids never become paths ----------------------------------------------------------

BAD_IDS = [
    "",
    "../../../../etc/passwd",
    "../blobs/sha256/ab/" + "a" * 64,
    "/tmp/x",
    UPLOAD.upper(),
    UPLOAD[:-1],
    UPLOAD + "0",
    "0123456789abcdef/123456789abcdef",
    "550e8400-e29b-41d4-a716-446655440000",
    UPLOAD + "\n",
]


@pytest.mark.parametrize("upload_id", BAD_IDS)
def test_bad_upload_ids_are_refused(backend: Backend, store: BlobStore, upload_id: str) -> None:
    with pytest.raises(ValueError, match="invalid upload id"):
        asyncio.run(store.create_upload(upload_id))
    with pytest.raises(ValueError, match="invalid upload id"):
        store.open_upload(upload_id, 0)
    with pytest.raises(ValueError, match="invalid upload id"):
        collect(store.read_upload(upload_id, 0))
    with pytest.raises(ValueError, match="invalid upload id"):
        asyncio.run(store.commit_upload(upload_id, Digest.of(b"x"), 1))
    with pytest.raises(ValueError, match="invalid upload id"):
        asyncio.run(store.delete_upload(upload_id))
    assert backend.keys() == set()


def test_traversal_writes_nothing_outside_the_root(tmp_path: Path) -> None:
    backend = filesystem_backend(tmp_path)
    for upload_id in [i for i in BAD_IDS if "/" in i]:
        with pytest.raises(ValueError):
            asyncio.run(backend.store.create_upload(upload_id))
    outside = {p for p in tmp_path.rglob("*") if not p.is_relative_to(tmp_path / "data")}
    assert outside == set()
