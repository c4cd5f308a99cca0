"""Blob upload sessions: monolithic, chunked and streamed uploads, verified while streaming, and
the cross-repository mount that a client asks for instead of an upload.

A session's bytes live in the blob store under its id; its size and a short write lease live in
the database, so any server process can continue a session another one started. Every request
that touches a session's bytes (append, finish, cancel) holds the lease, so a chunk can never
land in a blob that another request is committing. The running hash of a session is kept in the
process that last wrote to it; a process without it re-hashes the stored bytes at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar, overload

from seawall.db.store import Audit, MetadataStore, UploadRecord
from seawall.domain.audit import AuditAction, Origin
from seawall.domain.clock import SYSTEM_CLOCK, Clock
from seawall.domain.digests import Digest
from seawall.domain.ranges import ByteRange
from seawall.errors import ErrorCode, RegistryError, UploadOutOfStep
from seawall.services.audit import AuditLog
from seawall.storage.base import BlobStore, UploadWriter
from seawall.storage.paths import is_upload_id

WRITE_BATCH = 1024 * 1024  # hash and write in ~1 MiB pieces, one thread hop each
LEASE_SECONDS = 120.0  # renewed while bytes keep arriving
ORPHAN_UPLOAD_SECONDS = 60.0  # an upload file no session names is removed once this old

T = TypeVar("T")


MOUNT_CANDIDATES = 20  # repositories tried for a mount without `from`


@dataclass(frozen=True, slots=True)
class MountRequest:
    """A client's wish to link a blob it names instead of uploading it: from `source`, or,
    without one, from any repository holding it (the spec's automatic mount). Only ever from a
    repository `may_pull` allows: the caller's rights are the edge's question, the choice of
    source is the service's."""

    digest: Digest
    source: str | None
    may_pull: Callable[[str], Awaitable[bool]]
    origin: Origin


@dataclass(frozen=True, slots=True)
class Mounted:
    """The blob was linked from `source`; no upload session was started."""

    digest: Digest
    source: str


@dataclass(frozen=True, slots=True)
class Whole:
    """A blob sent whole with the request that starts its upload (a monolithic POST)."""

    digest: Digest
    body: AsyncIterator[bytes]
    content_length: int | None


@dataclass(slots=True)
class _Lease:
    """What a request holding a session's lease did to it."""

    size: int
    ended: bool = False  # the session is gone (committed, discarded)


@dataclass(slots=True)
class _RunningHash:
    offset: int
    hasher: Any
    touched: float  # the service clock's monotonic reading at the last write


class UploadService:
    def __init__(
        self,
        store: MetadataStore,
        blobs: BlobStore,
        expiry_seconds: int,
        max_blob_bytes: int,
        audit: AuditLog,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.audit = audit
        self.store = store
        self.blobs = blobs
        self.clock = clock  # session expiry; lease renewal while streaming
        self.expiry_seconds = expiry_seconds
        self.max_blob_bytes = max_blob_bytes
        self._hashes: dict[str, _RunningHash] = {}
        # Asked before a client's push starts; raises when the repository takes none.
        self.check_push: Callable[[str, Origin], Awaitable[None]] | None = None

    @overload
    async def start(self, repository: str) -> str: ...

    @overload
    async def start(
        self,
        repository: str,
        mount: MountRequest | None,
        origin: Origin | None = None,
        whole: Whole | None = None,
    ) -> Mounted | str: ...

    async def start(
        self,
        repository: str,
        mount: MountRequest | None = None,
        origin: Origin | None = None,
        whole: Whole | None = None,
    ) -> Mounted | str:
        """Link the blob a mount asks for when some allowed source holds it; otherwise start an
        upload session and return its id. With `whole`, the session is created already leased
        to this request, and the blob is written, verified and committed as a closing PUT
        would (one database write fewer than a session claimed afterwards). A client's push
        (`origin`) is first asked of `check_push` (a stage written only by promotion refuses
        it)."""
        if origin is not None and self.check_push is not None:
            await self.check_push(repository, origin)
        if mount is not None:
            for source in await self._mount_sources(mount):
                if await mount.may_pull(source) and await self._mount(
                    repository, mount.digest, source, mount.origin
                ):
                    return Mounted(mount.digest, source)
        repository_id = await self.store.ensure_repository(repository)
        upload_id = uuid.uuid4().hex
        await self.blobs.create_upload(upload_id)
        lease = LEASE_SECONDS if whole is not None else 0.0
        record = await self.store.create_upload(upload_id, repository_id, lease)
        self._hashes[upload_id] = _RunningHash(
            0, Digest("sha256", "").hasher(), self.clock.monotonic()
        )
        if whole is not None:
            work = self._closing(record, whole.digest, whole.body, whole.content_length)
            await self._holding_lease(repository, record, work, claimed=True)
        return upload_id

    async def _mount_sources(self, mount: MountRequest) -> list[str]:
        """The named source, else some repositories that link the blob (automatic mount)."""
        if mount.source is not None:
            return [mount.source]
        return await self.store.repositories_with_blob(str(mount.digest), limit=MOUNT_CANDIDATES)

    async def _mount(self, repository: str, digest: Digest, source: str, origin: Origin) -> bool:
        """Link into `repository` a blob that `source` links, and record it. False when there
        is nothing to mount: the bytes are not in storage, or `source` does not link the blob
        (decided in the link's own transaction)."""
        if await self.blobs.stat(digest) is None:
            return False
        mounted = self.audit.if_done(
            origin,
            AuditAction.BLOB_MOUNTED,
            repository=repository,
            digest=str(digest),
            detail={"from": source},
        )
        repository_id = await self.store.ensure_repository(repository)
        return await self.store.mount_blob(repository_id, str(digest), source, mounted)

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
        work = self._closing(record, digest, body, expected)
        return await self._holding_lease(repository, record, work)

    def _closing(
        self,
        record: UploadRecord,
        digest: Digest,
        body: AsyncIterator[bytes] | None,
        expected: int | None,
    ) -> Callable[[_Lease], Awaitable[None]]:
        """What a closing request does, holding the session's lease: append any last bytes,
        verify the digest, commit the blob."""
        upload_id = record.id

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
            # One transaction records the blob, puts its bytes in place, links it and ends the
            # session; the new name is made durable before the client hears of it.
            size = lease.size
            await self.blobs.prepare(upload_id, size, digest)
            await self.store.commit_upload(
                upload_id,
                record.repository_id,
                str(digest),
                size,
                lambda: self.blobs.place(upload_id, digest, size),
            )
            await self.blobs.settle(digest)
            lease.ended = True
            self._hashes.pop(upload_id, None)
            # What is left of the session's bytes (S3: its state, tail and sealed objects; a
            # crash before this leaves them to the orphan sweep).
            await self.blobs.delete_upload(upload_id)

        return write_verify_commit

    async def cancel(self, repository: str, upload_id: str, origin: Origin) -> None:
        record = await self._get(repository, upload_id)

        abandoned = self.audit.if_done(
            origin,
            AuditAction.UPLOAD_ABANDONED,
            repository=repository,
            reference=upload_id,
            detail={"size": record.size},
        )

        async def discard(lease: _Lease) -> None:
            lease.ended = True
            await self._discard(upload_id, abandoned)

        await self._holding_lease(repository, record, discard)

    async def sweep_expired(self) -> int:
        """Remove sessions idle for longer than the expiry, with their bytes."""
        expired = await self.store.expired_uploads(self.clock.now() - self.expiry_seconds)
        for upload_id, repository in expired:
            swept = self.audit.if_done(
                Origin.system(),
                AuditAction.UPLOAD_EXPIRED,
                repository=repository,
                reference=upload_id,
                reason=f"idle for more than {self.expiry_seconds} s",
            )
            await self._discard(upload_id, swept)
        stale = self.clock.monotonic() - self.expiry_seconds
        for upload_id in [k for k, v in self._hashes.items() if v.touched < stale]:
            del self._hashes[upload_id]  # finished or expired through another process
        return len(expired)

    async def sweep_orphans(self) -> int:
        """Remove upload files that no session names, untouched for `ORPHAN_UPLOAD_SECONDS`:
        left by a process that died between making a session's file and its row, or between
        removing them. (A session's file is made just before its row, so a younger one may be
        a session being started.) How many were removed."""
        cutoff = self.clock.now() - ORPHAN_UPLOAD_SECONDS
        old = [item.name async for item in self.blobs.iter_uploads() if item.mtime < cutoff]
        if not old:
            return 0
        known = await self.store.known_uploads(old)  # read after the files were listed
        orphans = [upload_id for upload_id in old if upload_id not in known]
        for upload_id in orphans:
            await self.blobs.delete_upload(upload_id)
        return len(orphans)

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
        if content_range.start != record.size:
            raise UploadOutOfStep(
                f"chunk starts at {content_range.start}, but the upload has {record.size}"
                f" bytes; send the chunk starting at {record.size}",
                repository,
                record.id,
                record.size,
            )
        if content_length is not None and content_length != content_range.length:
            raise UploadOutOfStep(
                f"Content-Range covers {content_range.length} bytes"
                f" but Content-Length is {content_length}",
                repository,
                record.id,
                record.size,
            )

    async def _holding_lease(
        self,
        repository: str,
        record: UploadRecord,
        work: Callable[[_Lease], Awaitable[None]],
        claimed: bool = False,
    ) -> int:
        """Run `work` while this request alone may touch the session (claiming it unless it
        was `claimed` when created); then record the size it reached, unless the work ended
        the session."""
        if not claimed and not await self.store.claim_upload(record.id, record.size, LEASE_SECONDS):
            raise UploadOutOfStep(
                "another request is writing to this upload, or it moved on; ask for its status",
                repository,
                record.id,
                record.size,
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

    async def _discard(self, upload_id: str, audit: Audit | None = None) -> None:
        self._hashes.pop(upload_id, None)
        await self.store.delete_upload(upload_id, audit)
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
            running.touched = self.clock.monotonic()
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
        renew_at = self.clock.monotonic() + LEASE_SECONDS / 4
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
                if self.clock.monotonic() > renew_at:
                    await self.store.renew_upload(upload_id, LEASE_SECONDS)
                    renew_at = self.clock.monotonic() + LEASE_SECONDS / 4
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
                ErrorCode.BLOB_TOO_LARGE,
                f"blob exceeds the registry's limit of {self.max_blob_bytes} bytes",
            )

    async def _digest_of(self, upload_id: str, size: int, algorithm: str) -> str:
        running = self._hashes.get(upload_id)
        if running is not None and running.offset == size and running.hasher.name == algorithm:
            return str(running.hasher.hexdigest())
        hasher = Digest(algorithm, "").hasher()
        async for chunk in self.blobs.read_upload(upload_id, size):
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
