"""`S3BlobStore`: blobs as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Garage).

Keys are those of the filesystem tree (storage/paths.py) under the configured prefix:

    PREFIX/blobs/<algorithm>/<hex[0:2]>/<hex>    committed blobs: content-addressed, immutable
    PREFIX/quarantine/<algorithm>/<hex>[.<n>]     blobs taken out of service by `seawall fsck`
    PREFIX/uploads/<id>/state-<size>              an upload session at `size` bytes (JSON)
    PREFIX/uploads/<id>/tail-<start>              its bytes from `start` not yet in a part
    PREFIX/uploads/<id>/data                      the multipart upload's key; the whole upload
                                                  once sealed

An upload streams into an S3 multipart upload: bytes are buffered into parts of at least
`part_bytes` (S3 wants 5 MiB but for the last part) and sent as they fill. What is left over
when a request ends (the tail, less than a part) is kept as its own small object, so that the
next chunk, on this process or any other, picks it up. The session's state (the multipart
upload's id, each part's number, ETag and size, the tail's length) is written as
`state-<size>` at the end of every request: a request continues from the state of the size the
database recorded, so a chunk that was refused or cut off, or a process killed mid-chunk, leaves
nothing the next request would read (a part uploaded past that state is overwritten or left out
of the completion). The bytes before a recorded size never change, which makes a longer tail
object good for any shorter state that names it.

A finished upload is sealed (the tail sent as the last part, the multipart upload completed at
`uploads/<id>/data`; an upload smaller than a part is its tail object), verified by the upload
service, copied to its digest's key before the database transaction (`prepare`), and checked
again under the blob row's lock (`place`): if the garbage collector removed that key in
between, it is copied again there. Two pushes of the same blob copy the same bytes to the same
key; S3 replaces an object atomically, so a reader sees one whole copy or the other.

Every call is a blocking call of our own S3 client (storage/s3api: SigV4 over httpx, without
botocore, whose imports and models cost each server worker 30-45 MB): the protocol's blocking
methods make them directly (they run in worker threads already), the async ones in this store's
own thread pool. S3's failures become the neutral errors callers know: an absent object is
`FileNotFoundError` or None, anything else an `S3Error`, which is an `OSError`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import ssl
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from seawall.config import aws_environment
from seawall.domain.digests import ALGORITHMS, Digest
from seawall.storage import paths
from seawall.storage.base import StoredObject
from seawall.storage.s3api import (
    Body,
    ListedObject,
    ListedUpload,
    ObjectBody,
    S3Client,
    S3Endpoint,
    S3Error,
    credential_chain,
    region_of,
)

READ_CHUNK = 1024 * 1024
MIN_PART = 5 * 1024 * 1024  # S3's smallest part but the last
MAX_COPY = 5 * 1024**3  # the largest single CopyObject / UploadPartCopy
PARTS_PER_STEP = 1000  # the part size grows by `part_bytes` every this many parts (10,000 max)
THREADS = 32
MAX_STATE = 64 * 1024 * 1024  # an upload's state: 10,000 parts at most, about 600 KB

T = TypeVar("T")


class StorageUrlError(ValueError):
    """A `storage_url` that names no store Seawall knows."""


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str  # "" or "some/prefix/" (always ending in "/")


def parse_s3_url(url: str) -> S3Location:
    """`s3://BUCKET[/PREFIX]` to its bucket and key prefix."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise StorageUrlError(f"storage URL {url!r} is not s3://BUCKET[/PREFIX]")
    prefix = parts.path.strip("/")
    if any(segment in ("", ".", "..") for segment in prefix.split("/")) and prefix:
        raise StorageUrlError(f"storage URL {url!r} has an empty or relative path segment")
    return S3Location(parts.netloc, prefix + "/" if prefix else "")


@dataclass(frozen=True, slots=True)
class S3Options:
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = None
    addressing_style: str = "auto"
    part_bytes: int = 8 * 1024 * 1024
    redirect: bool = False  # pulls answered with a presigned URL (`redirect_url`)
    redirect_seconds: int = 300
    # The AWS SDK variables (AWS_ACCESS_KEY_ID, AWS_REGION, AWS_CA_BUNDLE, ...: see
    # s3api/credentials.py), as seawall.config hands them over; None: this process's own.
    environ: Mapping[str, str] | None = None


@dataclass(slots=True)
class _State:
    """An upload session's bytes at one size (see the module's docstring)."""

    upload: str | None = None  # the multipart upload's id, once a part was sent
    parts: list[tuple[int, str, int]] = field(default_factory=list)  # (number, ETag, size)
    tail: int = 0  # bytes after the parts, in `tail-<start>`
    sealed: bool = False  # the whole upload is the object `data` (or its tail object)

    @property
    def start(self) -> int:
        """Where the tail starts."""
        return sum(size for _, _, size in self.parts)

    @property
    def size(self) -> int:
        return self.start + self.tail

    def dumps(self) -> bytes:
        return json.dumps(
            {"upload": self.upload, "parts": self.parts, "tail": self.tail, "sealed": self.sealed}
        ).encode()

    @classmethod
    def loads(cls, data: bytes) -> _State:
        raw = json.loads(data)
        parts = [(int(n), str(e), int(s)) for n, e, s in raw["parts"]]
        return cls(raw["upload"], parts, int(raw["tail"]), bool(raw["sealed"]))


class S3BlobStore:
    def __init__(self, location: S3Location, options: S3Options) -> None:
        if options.part_bytes < MIN_PART:
            raise ValueError(f"part size {options.part_bytes} is below S3's {MIN_PART}")
        self.bucket = location.bucket
        self.prefix = location.prefix
        self.options = options
        self._lock = threading.Lock()
        self._client: S3Client | None = None
        self._pid = 0
        self._pool: ThreadPoolExecutor | None = None

    # -- plumbing ---------------------------------------------------------------------------

    @property
    def client(self) -> S3Client:
        """This process's S3 client (made on first use: server workers fork)."""
        pid = os.getpid()
        if self._client is None or self._pid != pid:
            with self._lock:
                if self._client is None or self._pid != pid:
                    self._client = _make_client(self.bucket, self.options)
                    self._pool = ThreadPoolExecutor(THREADS, thread_name_prefix="s3")
                    self._pid = pid
        return self._client

    async def _call(self, work: Callable[..., T], *args: Any) -> T:
        self.client  # noqa: B018 - makes the pool of this process
        assert self._pool is not None
        return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)

    def _key(self, key: Any) -> str:
        return self.prefix + str(key)

    def _blob(self, digest: Digest) -> str:
        return self._key(paths.blob_key(digest))

    def _upload(self, upload_id: str, name: str = "") -> str:
        return self._key(paths.upload_key(upload_id)) + "/" + name

    def _head(self, key: str) -> int | None:
        return self.client.head_object(key)

    def _open(self, key: str, start: int = 0, end: int | None = None) -> ObjectBody | None:
        """A streaming body of the bytes [start, end) of an object; None when the range holds
        none (empty, or at or past the end). FileNotFoundError when the object is absent."""
        if end is not None and end <= start:
            return None
        ranged = None if start == 0 and end is None else _range(start, end)
        try:
            return self.client.get_object(key, ranged, READ_CHUNK)
        except S3Error as exc:
            if exc.status == 404 and exc.code != "NoSuchBucket":
                raise FileNotFoundError(key) from exc
            if exc.code == "InvalidRange":
                return None
            raise

    def _get(self, key: str, start: int = 0, end: int | None = None) -> bytes | None:
        """The bytes [start, end) of an object, or None when it is absent."""
        try:
            body = self._open(key, start, end)
        except FileNotFoundError:
            return None
        if body is None:
            return b""
        with body:
            return body.read_all(MAX_STATE if end is None else end - start)

    def _put(self, key: str, data: Body) -> None:
        self.client.put_object(key, data)

    def _copy(self, source: str, size: int, target: str) -> None:
        """Server-side copy of the whole object `source` (of `size` bytes) to `target`."""
        if size <= MAX_COPY:
            self.client.copy_object(source, target)
            return
        upload = self.client.create_multipart_upload(target)
        try:
            parts = [
                (number, self._copy_part(source, target, upload, number, a, b))
                for number, (a, b) in enumerate(_split(size), start=1)
            ]
            self.client.complete_multipart_upload(target, upload, parts)
        except BaseException:
            self.client.abort_multipart_upload(target, upload)
            raise

    def _copy_part(
        self, source: str, target: str, upload: str, number: int, start: int, end: int
    ) -> str:
        return self.client.upload_part_copy(target, upload, number, source, _range(start, end))

    def _list(self, prefix: str) -> Iterator[ListedObject]:
        for page in self._pages(prefix):
            yield from page

    def _multipart_uploads(self, prefix: str) -> Iterator[ListedUpload]:
        return self.client.list_multipart_uploads(prefix)

    # -- committed blobs --------------------------------------------------------------------

    async def stat(self, digest: Digest) -> int | None:
        return await self._call(self._head, self._blob(digest))

    def local_path(self, digest: Digest) -> None:
        return None

    def redirect_url(self, digest: Digest) -> str | None:
        """A presigned GET of the blob, when pulls are redirected to the bucket (no I/O)."""
        if not self.options.redirect:
            return None
        return self.client.presigned_get(self._blob(digest), self.options.redirect_seconds)

    async def read(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        body = await self._call(self._open, self._blob(digest), start, end)
        if body is None:
            return
        try:
            while chunk := await self._call(body.read):
                yield chunk
        finally:
            body.close()

    async def delete(self, digest: Digest) -> None:
        await self._call(self.client.delete_object, self._blob(digest))

    def exists(self, digest: Digest) -> bool:
        return self._head(self._blob(digest)) is not None

    def remove(self, digest: Digest) -> bool:
        key = self._blob(digest)
        if self._head(key) is None:
            return False
        self.client.delete_object(key)
        return True

    async def check(self) -> None:
        await self._call(self.client.head_bucket)

    # -- uploads ----------------------------------------------------------------------------

    async def create_upload(self, upload_id: str) -> None:
        paths.upload_key(upload_id)  # nothing is stored until bytes come; the id is checked

    def open_upload(self, upload_id: str, offset: int) -> S3UploadWriter:
        paths.upload_key(upload_id)
        return S3UploadWriter(self, upload_id, offset)

    def _state(self, upload_id: str, size: int) -> _State:
        data = self._get(self._upload(upload_id, f"state-{size}"))
        if data is not None:
            return _State.loads(data)
        if size == 0:
            return _State()
        # Not a size a request ended at (the upload service only asks for those): a longer
        # state whose tail holds `size`, cut there.
        for item in self._list(self._upload(upload_id, "state-")):
            longer = item.key.rpartition("state-")[2]
            if longer.isdigit() and int(longer) > size:
                found = self._get(item.key)
                state = _State.loads(found) if found is not None else None
                if state is not None and not state.sealed and state.start <= size:
                    state.tail = size - state.start
                    return state
        raise FileNotFoundError(f"upload {upload_id} has no state at {size} bytes")

    def _save(self, upload_id: str, state: _State) -> None:
        self._put(self._upload(upload_id, f"state-{state.size}"), state.dumps())

    def _seal(self, upload_id: str, size: int) -> str:
        """Make the upload at `size` bytes one object (the multipart upload completed, or the
        tail alone); its key."""
        state = self._state(upload_id, size)
        data = self._upload(upload_id, "data")
        if state.sealed:
            return data
        tail_key = self._upload(upload_id, f"tail-{state.start}")
        if state.upload is None:
            # Smaller than a part: the tail object is the upload, if it is exactly that long.
            if state.tail == 0 or self._head(tail_key) != state.tail:
                tail = self._get(tail_key, 0, state.tail) if state.tail else b""
                if tail is None or len(tail) != state.tail:
                    raise FileNotFoundError(f"upload {upload_id} lost its last bytes")
                self._put(data, tail)
            else:
                self._copy(tail_key, state.tail, data)
        else:
            parts = list(state.parts)
            if state.tail:
                number = len(parts) + 1
                etag = self._copy_part(tail_key, data, state.upload, number, 0, state.tail)
                parts.append((number, etag, state.tail))
            try:
                self.client.complete_multipart_upload(
                    data, state.upload, [(n, e) for n, e, _ in parts]
                )
            except S3Error as exc:
                # A retried completion whose first attempt did complete finds no upload: the
                # size check below tells that from an upload that is really gone.
                if exc.code != "NoSuchUpload":
                    raise
        if self._head(data) != size:
            raise OSError(f"upload {upload_id}: the sealed object is not {size} bytes")
        self._save(upload_id, _State(sealed=True, tail=size))
        return data

    async def read_upload(self, upload_id: str, size: int) -> AsyncIterator[bytes]:
        paths.upload_key(upload_id)
        key = await self._call(self._seal, upload_id, size)
        for start in range(0, size, READ_CHUNK):
            chunk = await self._call(self._get, key, start, min(size, start + READ_CHUNK))
            if chunk is None:
                raise FileNotFoundError(key)
            yield chunk

    async def prepare(self, upload_id: str, size: int, digest: Digest) -> None:
        """Seal the verified upload and copy it to the digest's key unless a blob is there,
        before the transaction that records it (whose `place` then only checks)."""
        paths.upload_key(upload_id)
        await self._call(self._place, upload_id, digest, size)

    def place(self, upload_id: str, digest: Digest, size: int) -> None:
        self._place(upload_id, digest, size)

    def _place(self, upload_id: str, digest: Digest, size: int) -> None:
        target = self._blob(digest)
        if self._head(target) is not None:  # content-addressed: these very bytes
            return
        self._copy(self._seal(upload_id, size), size, target)

    async def settle(self, digest: Digest) -> None:
        return None  # S3 acknowledges a write once it is durable

    async def commit_upload(self, upload_id: str, digest: Digest, size: int) -> None:
        await self.prepare(upload_id, size, digest)
        await self.delete_upload(upload_id)

    async def delete_upload(self, upload_id: str) -> None:
        prefix = self._upload(upload_id)

        def delete() -> None:
            for upload in self._multipart_uploads(prefix):
                try:
                    self.client.abort_multipart_upload(upload.key, upload.upload_id)
                except S3Error as exc:
                    if exc.code != "NoSuchUpload":
                        raise
            self._delete_keys([item.key for item in self._list(prefix)])

        await self._call(delete)

    def _delete_keys(self, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(keys[i : i + 1000])

    # -- listing and quarantine -------------------------------------------------------------

    async def iter_blobs(
        self, stray: Callable[[str], None] | None = None
    ) -> AsyncIterator[StoredObject]:
        report = stray or _ignore
        base = self._key("blobs/")
        pages = await self._call(lambda: iter(self._pages(base)))
        while (page := await self._call(next, pages, None)) is not None:
            for item in page:
                key = item.key[len(self.prefix) :]
                digest = _blob_of(key)
                if digest is None:
                    report(key)
                    continue
                yield StoredObject(digest, item.size, item.modified.timestamp())

    def _pages(self, prefix: str) -> Iterator[list[ListedObject]]:
        return self.client.list_objects(prefix)

    async def iter_uploads(
        self, stray: Callable[[str], None] | None = None
    ) -> AsyncIterator[StoredObject]:
        report = stray or _ignore
        base = self._key("uploads/")

        def gather() -> dict[str, tuple[int, float]]:
            found: dict[str, tuple[int, float]] = {}
            for item in self._list(base):
                key = item.key[len(self.prefix) :]
                upload_id, _, name = key[len("uploads/") :].partition("/")
                if not paths.is_upload_id(upload_id) or not name:
                    report(key)
                    continue
                size = int(name[6:]) if name.startswith("state-") and name[6:].isdigit() else 0
                old = found.get(upload_id, (0, 0.0))
                found[upload_id] = (max(old[0], size), max(old[1], item.modified.timestamp()))
            for upload in self._multipart_uploads(base):
                upload_id = upload.key[len(base) :].partition("/")[0]
                if paths.is_upload_id(upload_id):
                    old = found.get(upload_id, (0, 0.0))
                    found[upload_id] = (old[0], max(old[1], upload.initiated.timestamp()))
            return found

        for upload_id, (size, mtime) in (await self._call(gather)).items():
            yield StoredObject(upload_id, size, mtime)

    def quarantine(self, digest: Digest) -> str | None:
        source = self._blob(digest)
        size = self._head(source)
        if size is None:
            return None
        attempt = 0
        while self._head(self._key(paths.quarantine_key(digest, attempt))) is not None:
            attempt += 1
        key = paths.quarantine_key(digest, attempt)
        self._copy(source, size, self._key(key))
        self.client.delete_object(source)
        return key.as_posix()


class S3UploadWriter:
    """Appends to an upload session: parts sent as they fill, the rest kept as the tail object
    at `close`. Blocking; the state is read on the first call, in the caller's worker thread."""

    def __init__(self, store: S3BlobStore, upload_id: str, offset: int) -> None:
        self._store = store
        self._id = upload_id
        self._offset = offset
        self._state: _State | None = None
        self._buffer = bytearray()  # the tail, then what was written after it
        self._closed = False

    def _begin(self) -> _State:
        if self._state is not None:
            return self._state
        store = self._store
        state = store._state(self._id, self._offset)
        if state.sealed:
            state = self._unseal(state)
        elif state.tail:
            tail = store._get(store._upload(self._id, f"tail-{state.start}"), 0, state.tail)
            if tail is None or len(tail) != state.tail:
                raise FileNotFoundError(f"upload {self._id} lost its last bytes")
            self._buffer += tail
        self._state = state
        return state

    def _unseal(self, sealed: _State) -> _State:
        """More bytes for a sealed upload (a closing PUT that failed after sealing): a new
        multipart upload starts with the sealed object's bytes, copied in the bucket."""
        store, size = self._store, sealed.size
        data = store._upload(self._id, "data")
        if size < MIN_PART:
            old = store._get(data, 0, size)
            if old is None or len(old) != size:
                raise FileNotFoundError(f"upload {self._id} lost its bytes")
            self._buffer += old
            return _State()
        upload = store.client.create_multipart_upload(data)
        state = _State(upload=upload)
        for number, (a, b) in enumerate(_split(size), start=1):
            state.parts.append((number, store._copy_part(data, data, upload, number, a, b), b - a))
        return state

    def write(self, chunks: list[bytes]) -> None:
        state = self._begin()
        for chunk in chunks:
            self._buffer += chunk
        while len(self._buffer) >= (part := _part_size(self._store.options, len(state.parts))):
            self._send(state, part)

    def _send(self, state: _State, size: int) -> None:
        store = self._store
        key = store._upload(self._id, "data")
        if state.upload is None:
            state.upload = store.client.create_multipart_upload(key)
        number = len(state.parts) + 1
        # The part goes from the buffer itself (a copy, and a slice, would each add its size to
        # the peak); what was written past it starts the next one.
        part, rest = self._buffer, self._buffer[size:]
        del part[size:]
        try:
            etag = store.client.upload_part(key, state.upload, number, part)
        except BaseException:
            part += rest  # not sent: `close` keeps it all as the tail
            raise
        state.parts.append((number, etag, size))
        self._buffer = rest

    def close(self) -> int:
        if self._closed:
            assert self._state is not None
            return self._state.size
        state = self._begin()
        state.tail = len(self._buffer)
        if state.tail:
            self._store._put(self._store._upload(self._id, f"tail-{state.start}"), self._buffer)
        self._store._save(self._id, state)
        self._buffer = bytearray()
        self._closed = True
        return state.size


def _make_client(bucket: str, options: S3Options) -> S3Client:
    environ = options.environ if options.environ is not None else aws_environment()
    home = Path.home()
    region = options.region or region_of(environ, home) or "us-east-1"
    endpoint = (
        options.endpoint_url
        or environ.get("AWS_ENDPOINT_URL_S3")
        or environ.get("AWS_ENDPOINT_URL")
        or None
    )
    credentials = credential_chain(options.access_key_id, options.secret_access_key, environ, home)
    return S3Client(
        bucket,
        S3Endpoint.of(endpoint, region, bucket, options.addressing_style),
        region,
        credentials,
        connections=THREADS,
        context=_tls(environ.get("AWS_CA_BUNDLE")),
        connect_timeout=10,
        read_timeout=120,
        attempts=5,
        environ=environ,
    )


def _tls(ca_bundle: str | None) -> ssl.SSLContext | None:
    """TLS verification against `AWS_CA_BUNDLE` when it is set (a private CA); None: the
    system's trust store (made only for an https endpoint)."""
    return ssl.create_default_context(cafile=ca_bundle) if ca_bundle else None


def _part_size(options: S3Options, sent: int) -> int:
    """The size of the next part after `sent` parts: growing, so that 10,000 parts hold a
    blob of up to 55,000 x `part_bytes` (440 GiB at 8 MiB)."""
    return options.part_bytes * (1 + sent // PARTS_PER_STEP)


def _split(size: int) -> list[tuple[int, int]]:
    """[start, end) ranges of equal length covering `size` bytes, each at most `MAX_COPY` (and,
    for `size` >= 5 MiB, at least 5 MiB)."""
    count = -(-size // MAX_COPY)
    bounds = [size * i // count for i in range(count + 1)]
    return list(itertools.pairwise(bounds))


def _range(start: int, end: int | None) -> str:
    return f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"


def _blob_of(key: str) -> str | None:
    """The digest a `blobs/<algorithm>/<xx>/<hex>` key holds, or None for any other key."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != "blobs" or parts[1] not in ALGORITHMS:
        return None
    _, algorithm, prefix, name = parts
    valid = len(name) == ALGORITHMS[algorithm] and name[:2] == prefix
    return f"{algorithm}:{name}" if valid and all(c in "0123456789abcdef" for c in name) else None


def _ignore(_key: str) -> None:
    pass
