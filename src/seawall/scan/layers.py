"""Read image layers safely as streams, and apply them in order to get an image's file view.

A layer is a tar stream, gzip- or zstd-compressed or plain (told apart by magic bytes). Reading
never writes to disk and never opens a path built from tar names: entries are names and metadata,
and the bytes of a regular file are read into memory only when the caller wants that path and the
file is within `Limits.max_content_bytes`. Every limit breach raises `LayerRejected` with a reason
meant for a scan report; nothing else escapes for bad input.

`read_layer` yields one layer's entries; `seawall.scan.image.ImageFiles` applies layers in order.
"""

from __future__ import annotations

import gzip
import io
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, BinaryIO, Protocol, cast

import zstandard
from isal import igzip, isal_zlib

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
MAX_SYMLINK_HOPS = 40
# isal's stubs declare its error as an instance; it is the exception class.
_ISAL_ERROR = cast(type[Exception], isal_zlib.error)
_READ_CHUNK = 64 * 1024
# tarfile's stream buffer: large reads keep the per-call overhead of small ones off the hot path.
_TAR_BUFFER = 256 * 1024
# tarfile reads ahead at most one buffer past the block it parses.
_TAIL_BYTES = _TAR_BUFFER + 4 * tarfile.RECORDSIZE

Wanted = Callable[[str], bool]
ContentSink = Callable[[str, int, bytes], None]


def want_nothing(path: str) -> bool:
    """The default `wanted`: no file's bytes are read."""
    return False


class LayerRejected(Exception):
    """The layer cannot be scanned; `reason` says why in words fit for a report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Limits:
    """What one layer may cost to read."""

    max_decompressed_bytes: int = 8 * 1024**3
    max_entries: int = 500_000
    # A larger file is listed (and flagged `oversized`) but its bytes are never read.
    max_file_bytes: int = 256 * 1024**2
    # The largest file whose bytes are handed to an analyzer.
    max_content_bytes: int = 16 * 1024**2

    def __post_init__(self) -> None:
        for name in ("max_decompressed_bytes", "max_entries", "max_file_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.max_content_bytes < 0:
            raise ValueError("max_content_bytes must not be negative")


class Compression(StrEnum):
    GZIP = "gzip"
    ZSTD = "zstd"
    NONE = "none"


class EntryKind(StrEnum):
    FILE = "file"
    DIR = "dir"
    SYMLINK = "symlink"
    HARDLINK = "hardlink"
    # Devices, fifos and unknown types: listed, never read.
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class LayerEntry:
    """One tar member with a safe name. `content` is set only for wanted files within limits."""

    path: str
    kind: EntryKind
    size: int
    mode: int
    link_target: str | None = None
    # The link target, taken as written, points outside the image root (absolute or via "..").
    link_escapes: bool = False
    oversized: bool = False
    content: bytes | None = None


@dataclass(frozen=True, slots=True)
class Whiteout:
    """Deletes `path` and everything under it from lower layers; `opaque` hides only what is under
    `path` (the directory itself stays)."""

    path: str
    opaque: bool = False


@dataclass(frozen=True, slots=True)
class SkippedEntry:
    """A tar member left out of the view, with the raw name and why."""

    name: str
    reason: str


LayerItem = LayerEntry | Whiteout | SkippedEntry


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def detect_compression(head: bytes) -> Compression:
    """Tell the compression from a layer's first bytes."""
    if head.startswith(GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(ZSTD_MAGIC):
        return Compression.ZSTD
    return Compression.NONE


def normalize_name(name: str) -> str | None:
    """The tar name as a root-relative path: "./", "/" and "//" are dropped and ".." is resolved
    by name. None when the name climbs above the root. "" is the root itself."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)


def parent_path(path: str) -> str:
    return path.rpartition("/")[0]


def _symlink_escapes(path: str, target: str) -> bool:
    if target.startswith("/"):
        return True
    base = parent_path(path)
    return normalize_name(f"{base}/{target}" if base else target) is None


class _Prefixed(io.RawIOBase):
    """The source with the magic bytes we already read put back in front, so nothing seeks."""

    def __init__(self, head: bytes, source: BinaryIO) -> None:
        self._head = head
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer)
        size = len(view)
        if self._head:
            data, self._head = self._head[:size], self._head[size:]
        else:
            data = self._source.read(size)
        view[: len(data)] = data
        return len(data)


class _Counted(io.RawIOBase):
    """Decompressed bytes, counted: past the limit the layer is a bomb. Decoder errors become
    `LayerRejected`; errors of the source itself pass through unchanged. The last bytes handed
    out are kept so the block tarfile stopped at can be looked at afterwards."""

    def __init__(
        self,
        inner: _Readable,
        compression: Compression,
        limit: int,
        errors: tuple[type[Exception], ...],
    ) -> None:
        self._inner = inner
        self._compression = compression
        self._limit = limit
        self._errors = errors
        self._tail = bytearray()
        self.count = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            raise ValueError("a layer is only read in bounded chunks")
        try:
            data = self._inner.read(size)
        except self._errors as error:
            raise LayerRejected(f"corrupt {self._compression} stream: {error}") from error
        self.count += len(data)
        if self.count > self._limit:
            raise LayerRejected(
                f"decompressed size passes the limit of {self._limit} bytes (decompression bomb?)"
            )
        self._tail += data
        if len(self._tail) > 2 * _TAIL_BYTES:
            del self._tail[:-_TAIL_BYTES]
        return data

    def block_at(self, offset: int) -> bytes | None:
        """The tar block at `offset` if it is among the last bytes read, else None."""
        start = offset - (self.count - len(self._tail))
        if start < 0 or start + tarfile.BLOCKSIZE > len(self._tail):
            return None
        return bytes(self._tail[start : start + tarfile.BLOCKSIZE])


def _decompressed(source: BinaryIO, limit: int) -> _Counted:
    head = b""
    while len(head) < len(ZSTD_MAGIC):
        chunk = source.read(len(ZSTD_MAGIC) - len(head))
        if not chunk:
            break
        head += chunk
    compression = detect_compression(head)
    raw = io.BufferedReader(_Prefixed(head, source), _READ_CHUNK)
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
    return _Counted(inner, compression, limit, errors)


# tarfile raises these, besides TarError, on some malformed headers (pax numbers, sparse maps).
_HEADER_ERRORS = (tarfile.TarError, ValueError, OverflowError, UnicodeError, IndexError, KeyError)


def _tar_rejection(error: Exception, members_read: int) -> LayerRejected:
    text = str(error) or type(error).__name__
    if members_read == 0:
        return LayerRejected(f"not a tar stream: {text}")
    if "unexpected end" in text or "truncated" in text:
        return LayerRejected("truncated tar")
    return LayerRejected(f"malformed tar: {text}")


def _kind(member: tarfile.TarInfo) -> EntryKind:
    if member.isreg():
        return EntryKind.FILE
    if member.isdir():
        return EntryKind.DIR
    if member.issym():
        return EntryKind.SYMLINK
    if member.islnk():
        return EntryKind.HARDLINK
    return EntryKind.OTHER


def read_layer(
    source: BinaryIO, limits: Limits | None = None, wanted: Wanted = want_nothing
) -> Iterator[LayerItem]:
    """Yield the layer's entries, whiteouts and skipped members in tar order, reading it once.

    Raises `LayerRejected` when the stream is not a readable tar or passes a limit; entries
    already yielded stay valid, but the layer as a whole should be reported as not scanned.
    """
    limits = limits or Limits()
    stream = _decompressed(source, limits.max_decompressed_bytes)
    members_read = 0
    with _open_tar(stream) as tar:
        while True:
            try:
                member = tar.next()
            except _HEADER_ERRORS as error:
                raise _tar_rejection(error, members_read) from error
            # Stream mode keeps every member it has seen (500k of them is a lot of memory) and we
            # never look back; typeshed does not declare the attribute.
            tar.members.clear()  # type: ignore[attr-defined]
            if member is None:
                _check_clean_end(tar, stream)
                return
            members_read += 1
            if members_read > limits.max_entries:
                raise LayerRejected(f"more than {limits.max_entries} entries")
            item = _item(tar, member, limits, wanted, members_read)
            if item is not None:
                yield item


def _open_tar(stream: _Counted) -> tarfile.TarFile:
    try:
        # "r|": a forward-only stream of plain tar; decompression is ours, so it is counted.
        return tarfile.open(fileobj=stream, mode="r|", bufsize=_TAR_BUFFER)
    except _HEADER_ERRORS as error:
        raise _tar_rejection(error, 0) from error


def _check_clean_end(tar: tarfile.TarFile, stream: _Counted) -> None:
    # After the first member tarfile ends quietly on a cut or invalid header. A scanner must not:
    # a header tarfile refuses but a runtime accepts would hide every file after it. A stream that
    # ends exactly between members is accepted, as Go's archive/tar does.
    read_past = tar.fileobj.tell() - tar.offset
    if read_past == 0:
        return
    if read_past < tarfile.BLOCKSIZE:
        raise LayerRejected("truncated tar")
    block = stream.block_at(tar.offset)
    if block is None or block.count(0) != tarfile.BLOCKSIZE:
        raise LayerRejected(f"malformed tar: invalid header at byte {tar.offset}")


def _item(
    tar: tarfile.TarFile, member: tarfile.TarInfo, limits: Limits, wanted: Wanted, index: int
) -> LayerItem | None:
    path = normalize_name(member.name)
    if path is None:
        return SkippedEntry(member.name, "path escapes the image root")
    if "\x00" in path:
        return SkippedEntry(member.name, "path contains NUL")
    if path == "":
        return None  # the root directory itself
    parent, _, base = path.rpartition("/")
    if base.startswith(WHITEOUT_PREFIX):
        return _whiteout(member.name, parent, base)
    kind = _kind(member)
    if kind is EntryKind.SYMLINK:
        target = member.linkname
        return LayerEntry(
            path, kind, 0, member.mode, target, link_escapes=_symlink_escapes(path, target)
        )
    if kind is EntryKind.HARDLINK:
        target = member.linkname
        return LayerEntry(
            path, kind, 0, member.mode, target, link_escapes=normalize_name(target) is None
        )
    if kind is not EntryKind.FILE:
        return LayerEntry(path, kind, 0, member.mode)
    oversized = member.size > limits.max_file_bytes
    content = None
    if not oversized and member.size <= limits.max_content_bytes and wanted(path):
        content = _read_content(tar, member, index)
    return LayerEntry(path, kind, member.size, member.mode, oversized=oversized, content=content)


def _whiteout(name: str, parent: str, base: str) -> LayerItem:
    if base == OPAQUE_MARKER:
        return Whiteout(parent, opaque=True)
    hidden = base[len(WHITEOUT_PREFIX) :]
    if hidden.startswith(WHITEOUT_PREFIX) or hidden in ("", ".", ".."):
        # `.wh..wh.*` other than the opaque marker is aufs bookkeeping, not a deletion.
        return SkippedEntry(name, "not a whiteout of a name")
    return Whiteout(f"{parent}/{hidden}" if parent else hidden)


def _read_content(tar: tarfile.TarFile, member: tarfile.TarInfo, index: int) -> bytes:
    try:
        handle = tar.extractfile(member)
        data = handle.read() if handle is not None else b""
    except _HEADER_ERRORS as error:
        raise _tar_rejection(error, index) from error
    if len(data) != member.size:
        raise LayerRejected("truncated tar")
    return data
