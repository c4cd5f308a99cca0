"""The `BlobStore` protocol: where blob bytes live. Metadata (which repository links which blob)
is the database's job; a store only knows content by digest and uploads by id.

Writes of upload data are blocking calls, made off the event loop by the upload service, so
hashing and writing one buffer happen in one thread hop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import NamedTuple, Protocol

from seawall.domain.digests import Digest


class StoredObject(NamedTuple):
    """One object a store holds, as `iter_blobs` and `iter_uploads` list them."""

    name: str  # a blob's digest (`sha256:…`) or an upload id
    size: int
    mtime: float  # when it last changed, seconds since the epoch (see the iterators)


class UploadWriter(Protocol):
    """Appends to one upload session. Blocking; call from a worker thread."""

    def write(self, chunks: list[bytes]) -> None:
        """Append the chunks, in order, at the current end."""

    def close(self) -> int:
        """Flush to stable storage and return the upload's total size. Idempotent."""


class BlobStore(Protocol):
    async def stat(self, digest: Digest) -> int | None:
        """Size of a committed blob, or None when absent."""

    def local_path(self, digest: Digest) -> Path | None:
        """A local file path for zero-copy serving, if this backend has one."""

    def redirect_url(self, digest: Digest) -> str | None:
        """Where a client may fetch the blob itself (a presigned URL), when this backend is
        configured to send pulls there; None to serve the bytes. No I/O."""

    def read(self, digest: Digest, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end) of a committed blob (end exclusive, None for the end)."""

    async def delete(self, digest: Digest) -> None:
        """Remove a committed blob; absent is not an error."""

    async def prepare(self, upload_id: str, size: int, digest: Digest) -> None:
        """Get the verified upload of `size` bytes ready to become the blob `digest`, before
        the transaction that records it, so that `place` under the row's lock is quick (S3:
        copies it to the digest's key unless a blob is there; the filesystem: nothing)."""

    def place(self, upload_id: str, digest: Digest, size: int) -> None:
        """Make the upload's `size` bytes the blob `digest` (after the caller verified them), or
        discard them when the blob exists. Blocking: called inside the transaction that records
        the blob, under its row's lock, so the garbage collector never removes the blob between
        this and the commit. The new name is durable only after `settle(digest)`."""

    async def settle(self, digest: Digest) -> None:
        """Make a `place`d blob's name survive power loss (before the push is acknowledged)."""

    def exists(self, digest: Digest) -> bool:
        """Whether the blob is stored. Blocking: asked inside a repair's transaction."""

    def remove(self, digest: Digest) -> bool:
        """Remove a committed blob (True if it existed). Blocking: called inside the garbage
        collector's transaction that deletes the blob's row, under that row's lock."""

    async def create_upload(self, upload_id: str) -> None:
        """Start an empty upload."""

    def open_upload(self, upload_id: str, offset: int) -> UploadWriter:
        """A writer appending at `offset`; anything stored past `offset` is discarded."""

    def read_upload(self, upload_id: str, size: int) -> AsyncIterator[bytes]:
        """The upload's `size` bytes (its size as recorded), to re-hash it when no running hash
        is at hand. No byte may be appended after this (S3 seals the upload)."""

    async def commit_upload(self, upload_id: str, digest: Digest, size: int) -> None:
        """Make the upload's bytes the blob `digest` atomically (after the caller verified them).
        If the blob already exists, the upload is simply discarded."""

    async def delete_upload(self, upload_id: str) -> None:
        """Discard an upload's bytes; absent is not an error."""

    async def check(self) -> None:
        """Raise if the store cannot be used (readiness)."""

    # -- listing and quarantine (seawall fsck, the upload sweeper) -------------------------

    def iter_blobs(self, stray: Callable[[str], None] | None = None) -> AsyncIterator[StoredObject]:
        """Every committed blob as (digest, size, mtime), in no promised order, without reading
        its bytes. `mtime` is the later of the last write and the last rename into place, so
        that a blob put in place just now is young however old its bytes are. An object under
        `blobs/` whose key is not a blob's (a name that is not a digest, a file in the wrong
        directory) is not yielded: its key goes to `stray`."""

    def iter_uploads(
        self, stray: Callable[[str], None] | None = None
    ) -> AsyncIterator[StoredObject]:
        """Every upload's bytes as (upload id, size, mtime of the last write), in no promised
        order; an object under `uploads/` whose name is not an upload id goes to `stray`."""

    def quarantine(self, digest: Digest) -> str | None:
        """Move a committed blob out of service, kept for inspection under `quarantine/`; its
        key there, or None when there was no such blob. Blocking: called inside the transaction
        that holds the blob's row lock, so an upload of the same bytes waits, then puts good
        bytes in place."""
