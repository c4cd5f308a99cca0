"""Streaming verification of a stored blob: its bytes hashed with its digest's own algorithm
(`Digest.hasher`), read a piece at a time, never whole in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from seawall.domain.digests import Digest
from seawall.storage.base import BlobStore

HASH_CHUNK = 1024 * 1024


async def stored_hex(
    blobs: BlobStore, digest: Digest, advance: Callable[[int], None] | None = None
) -> str | None:
    """The hex digest of the bytes stored as `digest` (equal to `digest.hex` when they are
    intact), or None when there is no such blob. `advance(n)` hears of every `n` bytes read
    (possibly from a worker thread). A local file is read and hashed in one worker thread: one
    hop per blob, not two per MiB."""
    hasher = digest.hasher()
    path = blobs.local_path(digest)
    try:
        if path is not None:
            await asyncio.to_thread(_hash_file, path, hasher, advance)
        else:
            async for chunk in blobs.read(digest):
                await asyncio.to_thread(hasher.update, chunk)
                if advance is not None:
                    advance(len(chunk))
    except FileNotFoundError:
        return None
    return str(hasher.hexdigest())


def _hash_file(path: Path, hasher: Any, advance: Callable[[int], None] | None) -> None:
    with open(path, "rb") as file:
        while chunk := file.read(HASH_CHUNK):
            hasher.update(chunk)
            if advance is not None:
                advance(len(chunk))
