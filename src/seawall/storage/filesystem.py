"""`FilesystemBlobStore`: blobs as files, committed by fsync and atomic rename."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import BinaryIO

from seawall.domain.digests import ALGORITHMS, Digest
from seawall.storage import paths
from seawall.storage.base import StoredObject

READ_CHUNK = 1024 * 1024


class FilesystemUploadWriter:
    def __init__(self, path: Path, offset: int) -> None:
        self._file: BinaryIO = open(path, "r+b")  # noqa: SIM115 - closed by close()
        self._file.seek(offset)
        self._file.truncate(offset)
        self._closed = False

    def write(self, chunks: list[bytes]) -> None:
        self._file.writelines(chunks)

    def close(self) -> int:
        if not self._closed:
            self._closed = True
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            finally:
                self._file.close()
        return Path(self._file.name).stat().st_size


class FilesystemBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        for sub in ("blobs", "uploads", "tmp"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def _blob_path(self, digest: Digest) -> Path:
        return self.root / paths.blob_key(digest)

    def _upload_path(self, upload_id: str) -> Path:
        return self.root / paths.upload_key(upload_id)

    async def stat(self, digest: Digest) -> int | None:
        try:
            return self._blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def local_path(self, digest: Digest) -> Path | None:
        return self._blob_path(digest)

    def redirect_url(self, digest: Digest) -> str | None:
        return None

    async def read(
        self, digest: Digest, start: int = 0, end: int | None = None
    ) -> AsyncIterator[bytes]:
        with open(self._blob_path(digest), "rb") as f:
            f.seek(start)
            remaining = None if end is None else end - start
            while remaining is None or remaining > 0:
                size = READ_CHUNK if remaining is None else min(READ_CHUNK, remaining)
                chunk = await asyncio.to_thread(f.read, size)
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk

    async def delete(self, digest: Digest) -> None:
        self._blob_path(digest).unlink(missing_ok=True)

    async def create_upload(self, upload_id: str) -> None:
        self._upload_path(upload_id).touch(exist_ok=False)

    def open_upload(self, upload_id: str, offset: int) -> FilesystemUploadWriter:
        return FilesystemUploadWriter(self._upload_path(upload_id), offset)

    async def read_upload(self, upload_id: str, size: int) -> AsyncIterator[bytes]:
        with open(self._upload_path(upload_id), "rb") as f:
            remaining = size
            while remaining > 0 and (
                chunk := await asyncio.to_thread(f.read, min(READ_CHUNK, remaining))
            ):
                remaining -= len(chunk)
                yield chunk

    async def commit_upload(self, upload_id: str, digest: Digest, size: int) -> None:
        await asyncio.to_thread(self._commit, self._upload_path(upload_id), self._blob_path(digest))

    @staticmethod
    def _commit(source: Path, target: Path) -> None:
        if target.exists():  # content-addressed: an existing blob has these very bytes
            source.unlink(missing_ok=True)
            return
        new_directory = not target.parent.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        if new_directory:
            fsync_directory(target.parent.parent)
        # The upload file was fsynced when its writer closed; rename is atomic within the volume.
        source.replace(target)
        fsync_directory(target.parent)

    async def prepare(self, upload_id: str, size: int, digest: Digest) -> None:
        return None  # the file was fsynced when its writer closed; `place` renames it

    def place(self, upload_id: str, digest: Digest, size: int) -> None:
        source, target = self._upload_path(upload_id), self._blob_path(digest)
        if target.exists():  # content-addressed: an existing blob has these very bytes
            source.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        # A fresh mtime: a blob file older than the grace period that no row names is garbage
        # (fsck, GC), and this one gets its row in the transaction that runs this.
        os.utime(source)
        source.replace(target)

    async def settle(self, digest: Digest) -> None:
        target = self._blob_path(digest)
        await asyncio.to_thread(_settle, target)

    def exists(self, digest: Digest) -> bool:
        return self._blob_path(digest).is_file()

    def remove(self, digest: Digest) -> bool:
        try:
            self._blob_path(digest).unlink()
        except FileNotFoundError:
            return False
        return True

    async def delete_upload(self, upload_id: str) -> None:
        self._upload_path(upload_id).unlink(missing_ok=True)

    async def check(self) -> None:
        if not os.access(self.root / "blobs", os.W_OK):
            raise OSError(f"{self.root / 'blobs'} is not writable")

    # -- listing and quarantine (seawall fsck, the upload sweeper) -------------------------

    async def iter_blobs(
        self, stray: Callable[[str], None] | None = None
    ) -> AsyncIterator[StoredObject]:
        report = stray or _ignore
        blobs = self.root / "blobs"
        for algorithm, kind, _ in await asyncio.to_thread(_entries, blobs):
            if kind != _DIR or algorithm not in ALGORITHMS:
                await _strays(blobs, f"blobs/{algorithm}", kind, report)
                continue
            length = ALGORITHMS[algorithm]
            for prefix, kind, _ in await asyncio.to_thread(_entries, blobs / algorithm):
                key = f"blobs/{algorithm}/{prefix}"
                if kind != _DIR:
                    await _strays(blobs, key, kind, report)
                    continue
                for name, kind, stat in await asyncio.to_thread(
                    _entries, blobs / algorithm / prefix
                ):
                    if stat is None or not _is_blob_name(name, prefix, length):
                        await _strays(blobs, f"{key}/{name}", kind, report)
                        continue
                    # A rename changes only the status-change time: count it as a change.
                    changed = max(stat.st_mtime, stat.st_ctime)
                    yield StoredObject(f"{algorithm}:{name}", stat.st_size, changed)

    async def iter_uploads(
        self, stray: Callable[[str], None] | None = None
    ) -> AsyncIterator[StoredObject]:
        report = stray or _ignore
        uploads = self.root / "uploads"
        for name, kind, stat in await asyncio.to_thread(_entries, uploads):
            if stat is None or not paths.is_upload_id(name):
                await _strays(uploads, f"uploads/{name}", kind, report)
                continue
            yield StoredObject(name, stat.st_size, stat.st_mtime)

    def quarantine(self, digest: Digest) -> str | None:
        source = self._blob_path(digest)
        if not source.exists():
            return None
        attempt = 0
        while (self.root / paths.quarantine_key(digest, attempt)).exists():
            attempt += 1
        key = paths.quarantine_key(digest, attempt)
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            source.rename(target)
        except FileNotFoundError:  # removed meanwhile
            return None
        fsync_directory(target.parent)
        fsync_directory(source.parent)
        return key.as_posix()


def _settle(target: Path) -> None:
    fsync_directory(target.parent)
    fsync_directory(target.parent.parent)


_FILE, _DIR, _OTHER = "file", "directory", "other"


def _entries(directory: Path) -> list[tuple[str, str, os.stat_result | None]]:
    """(name, kind, stat of a regular file) of each entry, sorted by name; none when the
    directory is absent. An entry removed while this looks is left out."""
    found: list[tuple[str, str, os.stat_result | None]] = []
    try:
        with os.scandir(directory) as scan:
            for entry in sorted(scan, key=lambda e: e.name):
                try:
                    if entry.is_file(follow_symlinks=False):
                        found.append((entry.name, _FILE, entry.stat(follow_symlinks=False)))
                    elif entry.is_dir(follow_symlinks=False):
                        found.append((entry.name, _DIR, None))
                    else:
                        found.append((entry.name, _OTHER, None))
                except FileNotFoundError:
                    continue
    except (FileNotFoundError, NotADirectoryError):
        return []
    return found


def _is_blob_name(name: str, prefix: str, length: int) -> bool:
    return len(name) == length and name[:2] == prefix and all(c in "0123456789abcdef" for c in name)


async def _strays(root: Path, key: str, kind: str, report: Callable[[str], None]) -> None:
    """Report `key` (relative to `root`'s parent), or every file under it when it is a
    directory."""
    if kind != _DIR:
        report(key)
        return
    top = root.parent / key
    for path in await asyncio.to_thread(
        lambda: sorted(p for p in top.rglob("*") if not p.is_dir())
    ):
        report(path.relative_to(root.parent).as_posix())


def _ignore(_key: str) -> None:
    pass


def fsync_directory(path: Path) -> None:
    """Make a directory's entries (a new name, a rename) survive power loss."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
