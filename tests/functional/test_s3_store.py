"""What only the S3 store does, against moto's standalone server: multipart uploads fed by
requests of any size on any process, the state each request leaves, sealing, the cleanup of an
abandoned upload, listings, quarantine and presigned pulls. (The protocol itself is the shared
suite in test_blob_store.py.)"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest

from seawall.domain.digests import Digest
from seawall.storage.s3 import MIN_PART, S3BlobStore, S3Location
from seawall.storage.s3api import S3Error
from tests.support.s3 import MotoServer, signing_moto_server

UPLOAD = "0123456789abcdef0123456789abcdef"
MIB = 1024 * 1024


async def _collect(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


def collect(chunks: AsyncIterator[bytes]) -> bytes:
    return asyncio.run(_collect(chunks))


def small_parts(moto: MotoServer, **options: object) -> S3BlobStore:
    return moto.store("registry/", part_bytes=MIN_PART, **options)


def twin(store: S3BlobStore, moto: MotoServer) -> S3BlobStore:
    """Another process's view of the same bucket: its own client, no shared memory."""
    return S3BlobStore(S3Location(store.bucket, store.prefix), store.options)


def append(store: S3BlobStore, offset: int, *chunks: bytes) -> int:
    """One PATCH: open at `offset`, write, close; the new size."""
    writer = store.open_upload(UPLOAD, offset)
    writer.write(list(chunks))
    return writer.close()


def committed(store: S3BlobStore, data: bytes) -> Digest:
    """`data` pushed in one request and committed as its blob."""
    append(store, 0, data)
    digest = Digest.of(data)
    asyncio.run(store.commit_upload(UPLOAD, digest, len(data)))
    return digest


def multipart_uploads(moto: MotoServer, store: S3BlobStore) -> list[str]:
    answer = moto.client().list_multipart_uploads(Bucket=store.bucket, Prefix="registry/uploads/")
    return [u["Key"] for u in answer.get("Uploads", ())]


def keys(moto: MotoServer, store: S3BlobStore) -> set[str]:
    answer = moto.client().list_objects_v2(Bucket=store.bucket)
    return {str(item["Key"]) for item in answer.get("Contents", ())}


def test_a_chunked_upload_moves_between_processes_and_commits_whole(moto: MotoServer) -> None:
    a = small_parts(moto)
    b = twin(a, moto)
    data = secrets.token_bytes(17 * MIB + 123)
    asyncio.run(a.create_upload(UPLOAD))
    # Chunks that straddle part boundaries, alternating between the two processes.
    cuts = [0, 1000, 3 * MIB, 3 * MIB + 1, 11 * MIB, 16 * MIB, len(data)]
    size = 0
    for i, (start, end) in enumerate(itertools.pairwise(cuts)):
        store = (a, b)[i % 2]
        size = append(store, size, data[start : (start + end) // 2], data[(start + end) // 2 : end])
        assert size == end
    assert len(multipart_uploads(moto, a)) == 1  # the parts went into one multipart upload
    assert collect(b.read_upload(UPLOAD, size)) == data  # re-hashing on another process
    digest = Digest.of(data)
    asyncio.run(a.commit_upload(UPLOAD, digest, size))
    assert collect(b.read(digest)) == data
    assert asyncio.run(b.stat(digest)) == len(data)
    assert multipart_uploads(moto, a) == []
    assert keys(moto, a) == {f"registry/blobs/sha256/{digest.hex[:2]}/{digest.hex}"}


def test_a_refused_chunk_leaves_the_recorded_size_whole(moto: MotoServer) -> None:
    """The upload service reopens at the recorded size after a chunk it refused; parts that
    chunk sent are left out, and what came before is intact."""
    store = small_parts(moto)
    first = secrets.token_bytes(3 * MIB)
    assert append(store, 0, first) == len(first)
    refused = store.open_upload(UPLOAD, len(first))
    refused.write([secrets.token_bytes(9 * MIB)])  # sends a part (bytes 0..5 MiB)
    refused.close()
    assert store.open_upload(UPLOAD, len(first)).close() == len(first)
    rest = secrets.token_bytes(4 * MIB)
    assert append(store, len(first), rest) == 7 * MIB
    digest = Digest.of(first + rest)
    asyncio.run(store.commit_upload(UPLOAD, digest, 7 * MIB))
    assert collect(store.read(digest)) == first + rest


def test_a_part_the_bucket_refused_stays_with_the_chunk(moto: MotoServer) -> None:
    """A part is sent from the writer's own buffer; when the bucket refuses it (after the
    client's retries), closing keeps every byte written, in order, as the session's tail."""
    store = small_parts(moto)
    data = secrets.token_bytes(13 * MIB)
    send = store.client.upload_part
    calls = 0

    def refused_second(key: str, upload: str, number: int, part: bytes | bytearray) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise S3Error(503, "SlowDown", "refused", "UploadPart")
        return send(key, upload, number, part)

    store.client.upload_part = refused_second  # type: ignore[method-assign]
    writer = store.open_upload(UPLOAD, 0)
    with pytest.raises(S3Error):
        writer.write([data[: 4 * MIB], data[4 * MIB : 12 * MIB], data[12 * MIB :]])
    assert writer.close() == len(data)  # one part sent, the rest kept as the tail
    store.client.upload_part = send  # type: ignore[method-assign]
    assert collect(twin(store, moto).read_upload(UPLOAD, len(data))) == data
    digest = Digest.of(data)
    asyncio.run(store.commit_upload(UPLOAD, digest, len(data)))
    assert collect(store.read(digest)) == data


def test_a_process_killed_mid_chunk_leaves_the_last_state_usable(moto: MotoServer) -> None:
    store = small_parts(moto)
    first = secrets.token_bytes(6 * MIB)
    assert append(store, 0, first) == len(first)
    dead = store.open_upload(UPLOAD, len(first))
    dead.write([secrets.token_bytes(11 * MIB)])  # parts sent, never closed: the process died
    other = twin(store, moto)
    assert collect(other.read_upload(UPLOAD, len(first))) == first


def test_more_bytes_after_sealing_start_a_new_multipart_upload(moto: MotoServer) -> None:
    for first_size in (2 * MIB, 6 * MIB):
        store = small_parts(moto)
        first = secrets.token_bytes(first_size)
        append(store, 0, first)
        assert collect(store.read_upload(UPLOAD, first_size)) == first  # seals it
        more = secrets.token_bytes(5 * MIB + 7)
        size = append(store, first_size, more)
        assert collect(store.read_upload(UPLOAD, size)) == first + more


def test_an_abandoned_upload_is_aborted_and_removed(moto: MotoServer) -> None:
    store = small_parts(moto)
    append(store, 0, secrets.token_bytes(12 * MIB))
    assert multipart_uploads(moto, store) != []
    assert keys(moto, store) != set()
    asyncio.run(store.delete_upload(UPLOAD))
    assert multipart_uploads(moto, store) == []
    assert keys(moto, store) == set()


def test_uploads_are_listed_even_with_only_a_multipart_upload(moto: MotoServer) -> None:
    store = small_parts(moto)
    writer = store.open_upload(UPLOAD, 0)
    writer.write([secrets.token_bytes(6 * MIB)])  # a part went; the process died before close

    async def listed() -> list[str]:
        return [item.name async for item in store.iter_uploads()]

    assert asyncio.run(listed()) == [UPLOAD]
    asyncio.run(store.delete_upload(UPLOAD))
    assert asyncio.run(listed()) == []
    assert multipart_uploads(moto, store) == []


def test_blob_listing_reports_strays(moto: MotoServer) -> None:
    store = moto.store("registry/")
    data = b"listed"
    digest = committed(store, data)
    client = moto.client()
    client.put_object(Bucket=store.bucket, Key="registry/blobs/sha256/zz/bogus", Body=b"x")
    client.put_object(Bucket=store.bucket, Key="elsewhere/blobs/sha256/aa/x", Body=b"x")
    strays: list[str] = []

    async def listed() -> list[tuple[str, int]]:
        return [(item.name, item.size) async for item in store.iter_blobs(strays.append)]

    assert asyncio.run(listed()) == [(str(digest), len(data))]
    assert strays == ["blobs/sha256/zz/bogus"]


def test_quarantine_moves_the_blob_out_of_service(moto: MotoServer) -> None:
    store = moto.store("registry/")
    data = b"damaged?"
    digest = committed(store, data)
    assert store.quarantine(digest) == f"quarantine/sha256/{digest.hex}"
    assert asyncio.run(store.stat(digest)) is None
    assert store.quarantine(digest) is None
    stored = moto.client().get_object(
        Bucket=store.bucket, Key=f"registry/quarantine/sha256/{digest.hex}"
    )
    assert stored["Body"].read() == data


def test_place_puts_back_what_was_removed_after_prepare(moto: MotoServer) -> None:
    """`prepare` copies before the transaction; the garbage collector may remove that key
    before the transaction locks the blob's row. `place`, under the lock, copies it again."""
    store = small_parts(moto)
    data = secrets.token_bytes(6 * MIB)
    append(store, 0, data)
    digest = Digest.of(data)
    asyncio.run(store.prepare(UPLOAD, len(data), digest))
    assert store.remove(digest)
    store.place(UPLOAD, digest, len(data))
    assert hashlib.sha256(collect(store.read(digest))).hexdigest() == digest.hex


def test_a_redirected_pull_fetches_exact_ranges_from_the_bucket(moto: MotoServer) -> None:
    plain = moto.store("registry/")
    assert plain.redirect_url(Digest.of(b"x")) is None
    store = moto.store("registry/", redirect=True, redirect_seconds=60)
    data = secrets.token_bytes(100_000)
    digest = committed(store, data)
    url = store.redirect_url(digest)
    assert url is not None and url.startswith(moto.endpoint)
    whole = httpx.get(url)
    assert whole.status_code == 200 and whole.content == data
    part = httpx.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == data[10:100]
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=60" in url  # SigV4 (moto checks none)


def test_moto_verifies_every_signature_of_the_store() -> None:
    """A moto server of its own with IAM authentication on: it recomputes each request's SigV4
    signature (with botocore) and refuses any that differ. The store's whole life cycle passes,
    and a wrong secret is refused."""
    with signing_moto_server() as signing:
        server, bucket = signing.server, signing.bucket
        options = server.options(
            part_bytes=MIN_PART,
            access_key_id=signing.access_key_id,
            secret_access_key=signing.secret_access_key,
        )
        store = S3BlobStore(S3Location(bucket, "registry/"), options)
        data = secrets.token_bytes(6 * MIB + 5)
        append(store, 0, data[: 3 * MIB])
        append(store, 3 * MIB, data[3 * MIB :])  # a part and a tail
        digest = Digest.of(data)
        assert collect(store.read_upload(UPLOAD, len(data))) == data
        asyncio.run(store.commit_upload(UPLOAD, digest, len(data)))
        assert asyncio.run(store.stat(digest)) == len(data)
        assert collect(store.read(digest, 10, 1000)) == data[10:1000]
        assert store.quarantine(digest) == f"quarantine/sha256/{digest.hex}"
        asyncio.run(store.check())

        forged = S3BlobStore(
            S3Location(bucket, "registry/"),
            server.options(access_key_id=signing.access_key_id, secret_access_key="wrong"),
        )
        with pytest.raises(S3Error) as refused:
            forged.exists(digest)
        assert refused.value.status == 403
        with pytest.raises(S3Error) as refused:
            forged._put("registry/x", b"x")
        assert refused.value.code == "SignatureDoesNotMatch"
