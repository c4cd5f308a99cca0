"""A layer blob as the tar stream it carries: gzip, zstd or plain, told apart by magic bytes,
decompressed as it is read, and counted.

Decompressed bytes past the limit make the layer a bomb. A stream that is cut short or corrupt
fails the layer, as it fails a container runtime: gzip checks its own trailer, and zstd frames are
walked as they pass (python-zstandard ends quietly on a cut frame, Go's decoder does not).
"""

from __future__ import annotations

import gzip
import io
import zlib
from enum import StrEnum
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

import zstandard
from isal import igzip, isal_zlib

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# isal's stubs declare its error as an instance; it is the exception class.
_ISAL_ERROR = cast(type[Exception], isal_zlib.error)
_READ_CHUNK = 64 * 1024


class StreamRejected(Exception):
    """The blob cannot be decompressed, or decompresses past the limit; `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Compression(StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _skippable_frame(head: bytes) -> bool:
    """A zstd skippable frame's magic: 0x184D2A50 to 0x184D2A5F, little-endian."""
    return len(head) >= 4 and head[1:4] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50


def detect_compression(head: bytes) -> Compression:
    """Tell the compression from a layer's first bytes (zstd may open with a skippable frame,
    as zstd:chunked layers do; containerd takes those for zstd too)."""
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(ZSTD_MAGIC) or _skippable_frame(head):
        return Compression.ZSTD
    return Compression.NONE


class _ZstdFrames:
    """Follows the frame and block headers of a zstd stream as its bytes pass, to tell at the
    end whether the last frame was complete. Costs a few header bytes per 128 KiB block."""

    def __init__(self) -> None:
        self._pending = bytearray()  # bytes of the header being read
        self._need = 4  # header bytes wanted next
        self._state = "magic"
        self._skip = 0  # bytes of block content (or a skippable frame) still to pass
        self._checksum = False
        self.broken = False  # not a zstd stream any more: the decoder will say so

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view and not self.broken:
            if self._skip:
                step = min(self._skip, len(view))
                self._skip -= step
                view = view[step:]
                continue
            take = min(self._need - len(self._pending), len(view))
            self._pending += view[:take]
            view = view[take:]
            if len(self._pending) == self._need:
                header, self._pending = bytes(self._pending), bytearray()
                self._header(header)

    def _header(self, header: bytes) -> None:
        if self._state == "magic":
            if header == ZSTD_MAGIC:
                self._state, self._need = "descriptor", 1
            elif _skippable_frame(header):
                self._state, self._need = "skippable", 4
            else:
                self.broken = True
        elif self._state == "skippable":
            self._skip = int.from_bytes(header, "little")
            self._state, self._need = "magic", 4
        elif self._state == "descriptor":
            descriptor = header[0]
            single_segment = bool(descriptor & 0x20)
            self._checksum = bool(descriptor & 0x04)
            content_size = (1 if single_segment else 0, 2, 4, 8)[descriptor >> 6]
            self._skip = (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] + content_size
            self._state, self._need = "block", 3
        elif self._state == "block":
            value = int.from_bytes(header, "little")
            kind, size = (value >> 1) & 3, value >> 3
            self._skip = 1 if kind == 1 else size  # an RLE block holds one byte
            if value & 1:  # the frame's last block
                self._skip += 4 if self._checksum else 0
                self._state, self._need = "magic", 4

    def complete(self) -> bool:
        return self.broken or (self._state == "magic" and not self._pending and not self._skip)


class _Prefixed(io.RawIOBase):
    """The source with the magic bytes we already read put back in front, so nothing seeks."""

    def __init__(self, head: bytes, source: BinaryIO, frames: _ZstdFrames | None) -> None:
        self._head = head
        self._source = source
        self._frames = frames

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        size = len(view)
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
        else:
            data = self._source.read(size)
        if self._frames is not None:
            self._frames.feed(data)
        view[: len(data)] = data
        return len(data)


class CountedStream(io.RawIOBase):
    """Decompressed bytes, counted: past the limit the layer is a bomb. Decoder errors become
    `StreamRejected`; errors of the source itself pass through unchanged."""

    def __init__(
        self,
        inner: _Readable,
        compression: Compression,
        limit: int,
        errors: tuple[type[Exception], ...],
        frames: _ZstdFrames | None = None,
    ) -> None:
        self._inner = inner
        self._compression = compression
        self._limit = limit
        self._errors = errors
        self._frames = frames
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            raise ValueError("a layer is only read in bounded chunks")
        try:
            data = self._inner.read(size)
        except self._errors as error:
            raise StreamRejected(f"corrupt {self._compression} stream: {error}") from error
        if not data and size and self._frames is not None and not self._frames.complete():
            raise StreamRejected("corrupt zstd stream: the last frame is cut short")
        self.count += len(data)
        if self.count > self._limit:
            raise StreamRejected(
                f"decompressed size passes the limit of {self._limit} bytes (decompression bomb?)"
            )
        return data


def decompressed(source: BinaryIO, limit: int) -> CountedStream:
    """The tar stream a layer blob carries, read forward only."""
    head = b""
    while len(head) < len(ZSTD_MAGIC):
        chunk = source.read(len(ZSTD_MAGIC) - len(head))
        if not chunk:
            break
        head += chunk
    compression = detect_compression(head)
    frames = _ZstdFrames() if compression is Compression.ZSTD else None
    raw = io.BufferedReader(_Prefixed(head, source, frames), _READ_CHUNK)
    inner: _Readable
    errors: tuple[type[Exception], ...]
    if compression is Compression.GZIP:
        # ISA-L's inflate: twice zlib's speed, the same format and errors.
        inner = igzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call]
        errors = (gzip.BadGzipFile, EOFError, zlib.error, _ISAL_ERROR)
    elif compression is Compression.ZSTD:
        inner = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        errors = (zstandard.ZstdError,)
    else:
        inner, errors = raw, ()
    return CountedStream(inner, compression, limit, errors, frames)
