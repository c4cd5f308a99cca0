"""Reading and unlinking blobs within a repository (a mount links one: `UploadService.start`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import structlog

from seawall.db.store import MetadataStore
from seawall.domain.audit import AuditAction, Origin
from seawall.domain.digests import Digest
from seawall.errors import ErrorCode, RegistryError
from seawall.services.audit import AuditLog
from seawall.storage.base import BlobStore

log = structlog.get_logger("seawall.blobs")


@dataclass(frozen=True, slots=True)
class BlobContent:
    digest: Digest
    size: int
    path: Path | None  # a local file to send without copying, when the backend has one
    read: Callable[[int, int | None], AsyncIterator[bytes]]
    redirect: str | None = None  # where the client may fetch it itself (a presigned URL)


class BlobService:
    def __init__(self, store: MetadataStore, blobs: BlobStore, audit: AuditLog) -> None:
        self.store = store
        self.blobs = blobs
        self.audit = audit

    async def size(self, repository: str, digest: Digest) -> int:
        """Size of a blob the repository links to (answered from the database, no file I/O)."""
        size = await self.store.blob_size_in(repository, str(digest))
        if size is None:
            raise RegistryError(
                ErrorCode.BLOB_UNKNOWN,
                f"blob {digest} is not in {repository!r}",
                {"digest": str(digest)},
            )
        return size

    async def open(self, repository: str, digest: Digest) -> BlobContent:
        size = await self.size(repository, digest)
        return BlobContent(
            digest,
            size,
            self.blobs.local_path(digest),
            lambda s, e: self.blobs.read(digest, s, e),
            self.blobs.redirect_url(digest),
        )

    def content_missing(self, repository: str, digest: Digest) -> RegistryError:
        """What a pull of a blob whose row is there but whose bytes are not gets: the blob is
        unknown (a client pushing it then uploads it again, which restores it), and the log
        says so, as the data loss it is."""
        log.error("blob content missing from storage", repository=repository, digest=str(digest))
        return RegistryError(
            ErrorCode.BLOB_UNKNOWN,
            f"blob {digest} is recorded in {repository!r} but its content is missing from"
            " storage: `seawall fsck` reports it; pushing the blob again restores it",
            {"digest": str(digest)},
        )

    async def unlink(self, repository: str, digest: Digest, origin: Origin) -> None:
        deleted = self.audit.if_done(
            origin, AuditAction.BLOB_DELETED, repository=repository, digest=str(digest)
        )
        if not await self.store.unlink_blob(repository, str(digest), deleted):
            raise RegistryError(
                ErrorCode.BLOB_UNKNOWN,
                f"blob {digest} is not in {repository!r}",
                {"digest": str(digest)},
            )
