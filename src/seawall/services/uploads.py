"""Blob upload sessions: monolithic, chunked and streamed uploads, verified while streaming.

A session's bytes live in the blob store under its id; its size and a short write lease live in
the database, so any server process can continue a session another one started. Every request
that touches a session's bytes (append, finish, cancel) holds the lease, so a chunk can never
land in a blob that another request is committing. The running hash of a session is kept in the
process that last wrote to it; a process without it re-hashes the stored bytes at the end.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from seawall.db.store import MetadataStore, UploadRecord
from seawall.domain.audit import AuditAction, Origin
from seawall.domain.digests import Digest
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.storage.base import BlobStore, UploadWriter
from seawall.storage.paths import is_upload_id

WRITE_BATCH = 1024 * 1024  # hash and write in ~1 MiB pieces, one thread hop each
LEASE_SECONDS = 120.0  # renewed while bytes keep arriving

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ByteRange:
    """An inclusive byte range from a Content-Range header."""

    start: int
    end: int

    @classmethod
    def parse(cls, header: str) -> ByteRange:
        value = header.strip()
        if value.startswith("bytes "):
            value = value[6:].split("/", 1)[0]
        start, sep, end = value.partition("-")
        if not sep or not _is_number(start) or not _is_number(end) or int(end) < int(start):
            raise RegistryError(
                ErrorCode.RANGE_INVALID,
                f"Content-Range must be '<start>-<end>' with start <= end, got {header[:100]!r}",
            )
        return cls(int(start), int(end))

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


def session_headers(repository: str, upload_id: str, size: int) -> dict[str, str]:
    """Where the session is and how much of it the registry has (spec: `Range: 0-<last>`)."""
    return {
        "Location": f"/v2/{repository}/blobs/uploads/{upload_id}",
        "Range": f"0-{size - 1}" if size else "0-0",
        "Docker-Upload-UUID": upload_id,
    }


@dataclass(slots=True)
class _Lease:
    """What a request holding a session's lease did to it."""

    size: int
    ended: bool = False  # the session is gone (committed, discarded)


@dataclass(slots=True)
class _RunningHash:
    offset: int
    hasher: Any
    touched: float = field(default_factory=time.monotonic)


class UploadService:
    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        expiry_seconds: int,
        max_blob_bytes: int,
        audit: AuditLog,
    ) -> None:
        self.audit = audit
        self.store = store
        self.blobs = blobs
        self.expiry_seconds = expiry_seconds
        self.max_blob_bytes = max_blob_bytes
        self._hashes: dict[str, _RunningHash] = {}

    async def start(self, repository: str) -> str:
        repository_id = await self.store.ensure_repository(repository)
        upload_id = uuid.uuid4().hex
        await self.blobs.create_upload(upload_id)
        await self.store.create_upload(upload_id, repository_id)
        self._hashes[upload_id] = _RunningHash(0, Digest("sha256", "").hasher())
        return upload_id

    async def status(self, repository: str, upload_id: str) -> int:
        """Bytes received so far."""
        return (await self._get(repository, upload_id)).size

    async def append(
        self,
        repository: str,
        upload_id: str,
        body: AsyncIterator[bytes],
        content_range: ByteRange | None,
        content_length: int | None,
    ) -> int:
        """A PATCH: append the body at the session's end; return the new size."""
        record = await self._get(repository, upload_id)
        self._check_range(repository, record, content_range, content_length)
        expected = content_range.length if content_range else content_length

        async def write(lease: _Lease) -> None:
            lease.size = await self._write(upload_id, record.size, body, expected)

        return await self._holding_lease(repository, record, write)

    async def finish(
        self,
        repository: str,
        upload_id: str,
        digest: Digest,
        body: AsyncIterator[bytes] | None,
        content_range: ByteRange | None,
        content_length: int | None,
    ) -> int:
        """The closing PUT: append any last bytes, verify the digest, commit the blob."""
        record = await self._get(repository, upload_id)
        if body is not None:
            self._check_range(repository, record, content_range, content_length)
        expected = content_range.length if content_range else content_length

        async def write_verify_commit(lease: _Lease) -> None:
            if body is not None:
                lease.size = await self._write(upload_id, record.size, body, expected)
            actual = await self._digest_of(upload_id, lease.size, digest.algorithm)
            if actual != digest.hex:
                lease.ended = True
                await self._discard(upload_id)
                raise RegistryError(
                    ErrorCode.DIGEST_INVALID,
                    f"uploaded content has digest {digest.algorithm}:{actual}, not {digest};"
                    " the upload was discarded",
                    detail={"expected": str(digest), "actual": f"{digest.algorithm}:{actual}"},
                )
            await self.blobs.commit_upload(upload_id, digest)
            # One transaction links the blob and ends the session.
            await self.store.commit_upload(upload_id, record.repository_id, str(digest), lease.size)
            lease.ended = True
            self._hashes.pop(upload_id, None)

        return await self._holding_lease(repository, record, write_verify_commit)

    async def cancel(self, repository: str, upload_id: str, origin: Origin) -> None:
        record = await self._get(repository, upload_id)

        async def discard(lease: _Lease) -> None:
            lease.ended = True
            await self._discard(upload_id)

        await self._holding_lease(repository, record, discard)
        await self.audit.record(
            origin,
            AuditAction.UPLOAD_ABANDONED,
            repository=repository,
            reference=upload_id,
            detail={"size": record.size},
        )

    async def sweep_expired(self) -> int:
        """Remove sessions idle for longer than the expiry, with their bytes."""
        expired = await self.store.expired_uploads(time.time() - self.expiry_seconds)
        for upload_id, repository in expired:
            await self._discard(upload_id)
            await self.audit.record(
                Origin.system(),
                AuditAction.UPLOAD_EXPIRED,
                repository=repository,
                reference=upload_id,
                reason=f"idle for more than {self.expiry_seconds} s",
            )
        stale = time.monotonic() - self.expiry_seconds
        for upload_id in [k for k, v in self._hashes.items() if v.touched < stale]:
            del self._hashes[upload_id]  # finished or expired through another process
        return len(expired)

    # -- internals ------------------------------------------------------------------------

    async def _get(self, repository: str, upload_id: str) -> UploadRecord:
        record = (
            await self.store.get_upload(repository, upload_id) if is_upload_id(upload_id) else None
        )
        if record is None:
            raise RegistryError(
                ErrorCode.BLOB_UPLOAD_UNKNOWN,
                f"no upload session {upload_id[:64]!r} in {repository!r}; it may have expired",
            )
        return record

    @staticmethod
    def _check_range(
        repository: str,
        record: UploadRecord,
        content_range: ByteRange | None,
        content_length: int | None,
    ) -> None:
        if content_range is None:
            return
        headers = session_headers(repository, record.id, record.size)
        if content_range.start != record.size:
            raise RegistryError(
                ErrorCode.RANGE_INVALID,
                f"chunk starts at {content_range.start}, but the upload has {record.size}"
                f" bytes; send the chunk starting at {record.size}",
                headers=headers,
            )
        if content_length is not None and content_length != content_range.length:
            raise RegistryError(
                ErrorCode.RANGE_INVALID,
                f"Content-Range covers {content_range.length} bytes"
                f" but Content-Length is {content_length}",
                headers=headers,
            )

    async def _holding_lease(
        self, repository: str, record: UploadRecord, work: Callable[[_Lease], Awaitable[None]]
    ) -> int:
        """Run `work` while this request alone may touch the session; then record the size it
        reached, unless the work ended the session."""
        if not await self.store.claim_upload(record.id, record.size, LEASE_SECONDS):
            raise RegistryError(
                ErrorCode.RANGE_INVALID,
                "another request is writing to this upload, or it moved on; ask for its status",
                headers=session_headers(repository, record.id, record.size),
            )
        lease = _Lease(record.size)
        try:
            await work(lease)
            return lease.size
        except _Kept as kept:  # bytes arrived before the failure and stay
            lease.size = kept.size
            raise kept.error from None
        finally:
            if not lease.ended:
                await self.store.release_upload(record.id, lease.size)

    async def _discard(self, upload_id: str) -> None:
        self._hashes.pop(upload_id, None)
        await self.store.delete_upload(upload_id)
        await self.blobs.delete_upload(upload_id)

    async def _write(
        self, upload_id: str, offset: int, body: AsyncIterator[bytes], expected: int | None
    ) -> int:
        """Append the body at `offset` (lease held by the caller); return the new size.

        A broken connection keeps what arrived (raised as `_Kept`), so the session resumes from
        there; a chunk refused for its content (too large, wrong length) is cut off whole."""
        running = self._hashes.pop(upload_id, None)
        if running is not None and running.offset != offset:
            running = None  # another process wrote since; re-hash at the end
        writer = self.blobs.open_upload(upload_id, offset)
        received = 0
        lost: Exception | None = None  # the connection broke: keep what arrived
        keep = False
        try:
            received = await self._pump(writer, upload_id, body, running, offset)
            keep = expected is None or received == expected
        except RegistryError:
            raise  # refused: cut the chunk off below
        except Exception as exc:
            lost, keep = exc, True
        finally:
            size = await asyncio.to_thread(writer.close)
            if not keep:  # reopening at `offset` truncates what the chunk wrote
                await asyncio.to_thread(self.blobs.open_upload(upload_id, offset).close)
                size = offset
            self._remember(upload_id, running, size)
        if lost is not None:
            raise _Kept(size, lost) from lost
        if not keep:
            raise RegistryError(
                ErrorCode.SIZE_INVALID,
                f"expected {expected} bytes but received {received}; the chunk was not kept",
            )
        return size

    def _remember(self, upload_id: str, running: _RunningHash | None, size: int) -> None:
        if running is not None and running.offset == size:
            running.touched = time.monotonic()
            self._hashes[upload_id] = running

    async def _pump(
        self,
        writer: UploadWriter,
        upload_id: str,
        body: AsyncIterator[bytes],
        running: _RunningHash | None,
        offset: int,
    ) -> int:
        received = 0
        buffer: list[bytes] = []
        buffered = 0
        # One batch is hashed and written in a thread while the next one is being received.
        in_flight: asyncio.Future[None] | None = None
        renew_at = time.monotonic() + LEASE_SECONDS / 4
        try:
            async for chunk in body:
                buffer.append(chunk)
                buffered += len(chunk)
                if buffered < WRITE_BATCH:
                    continue
                self._check_limit(offset + received + buffered)
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.ensure_future(
                    asyncio.to_thread(_write_and_hash, writer, running, buffer)
                )
                received += buffered
                buffer, buffered = [], 0
                if time.monotonic() > renew_at:
                    await self.store.renew_upload(upload_id, LEASE_SECONDS)
                    renew_at = time.monotonic() + LEASE_SECONDS / 4
            if in_flight is not None:
                await in_flight
        except RegistryError:
            if in_flight is not None:
                await asyncio.wait([in_flight])
            raise
        except Exception:
            # The client went away: keep every byte that did arrive, so it can resume.
            if in_flight is not None:
                await in_flight
            if buffer:
                await asyncio.to_thread(_write_and_hash, writer, running, buffer)
            raise
        if buffer:
            self._check_limit(offset + received + buffered)
            await asyncio.to_thread(_write_and_hash, writer, running, buffer)
            received += buffered
        return received

    def _check_limit(self, size: int) -> None:
        if self.max_blob_bytes and size > self.max_blob_bytes:
            raise RegistryError(
                ErrorCode.SIZE_INVALID,
                f"blob exceeds the registry's limit of {self.max_blob_bytes} bytes",
                status=413,
            )

    async def _digest_of(self, upload_id: str, size: int, algorithm: str) -> str:
        running = self._hashes.get(upload_id)
        if running is not None and running.offset == size and running.hasher.name == algorithm:
            return str(running.hasher.hexdigest())
        hasher = Digest(algorithm, "").hasher()
        async for chunk in self.blobs.read_upload(upload_id):
            await asyncio.to_thread(hasher.update, chunk)
        return str(hasher.hexdigest())


class _Kept(Exception):
    """A write failed after `size` bytes of the session were safely stored."""

    def __init__(self, size: int, error: Exception) -> None:
        super().__init__(str(error))
        self.size = size
        self.error = error


def _write_and_hash(
    writer: UploadWriter, running: _RunningHash | None, chunks: list[bytes]
) -> None:
    writer.write(chunks)
    if running is not None:
        for chunk in chunks:
            running.hasher.update(chunk)
            running.offset += len(chunk)
