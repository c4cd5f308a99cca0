"""Read image layers safely as streams, and apply them in order to get an image's file view.

A layer is a tar stream, gzip- or zstd-compressed or plain (told apart by magic bytes), read by
`seawall.scan.tar` as Go's archive/tar reads it: what a container runtime unpacks is what is
scanned, and a layer is refused only when the runtime would refuse it. What was unusual about a
layer (no end-of-archive blocks, a last entry without its padding, paths listed twice, ...) comes
out as `LayerNote`s. Reading never writes to disk and never opens a path built from tar names:
entries are names and metadata, and the bytes of a regular file are read into memory only when
the caller wants that path and the file is within `Limits.max_content_bytes`. Every limit breach
raises `LayerRejected` with a reason meant for a scan report; nothing else escapes for bad input.

Tar names are bytes and need not be UTF-8: a path is the name decoded as UTF-8 with
`surrogateescape`, so every name maps to one path and back (`seawall.scan.names` turns it into
text for reports).

`read_layer` yields one layer's entries; `seawall.scan.image.ImageFiles` applies layers in order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import BinaryIO

from seawall.scan.decompress import StreamRejected, decompressed
from seawall.scan.names import shown
from seawall.scan.tar import TarEnding, TarError, TarHeader, TarReader

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
MAX_SYMLINK_HOPS = 40
# A note names at most this many of the paths it is about.
NOTE_EXAMPLES = 5

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
    # The link target, taken as written, climbs out of the image root by "..". (An absolute
    # target starts at the root, as in a container.)
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


@dataclass(frozen=True, slots=True)
class LayerNote:
    """Something unusual about the layer that does not stop it being read, in words for a
    report; yielded after the layer's last entry."""

    text: str


LayerItem = LayerEntry | Whiteout | SkippedEntry | LayerNote


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
    # An absolute target starts at the image root inside a container; a relative one escapes
    # when its ".." climb above the root, which only a tool unpacking the image onto a host
    # directory and following the link would act on.
    if target.startswith("/"):
        return False
    base = parent_path(path)
    return normalize_name(f"{base}/{target}" if base else target) is None


def _rejection(error: TarError, members_read: int) -> LayerRejected:
    if members_read == 0:
        return LayerRejected(f"not a tar stream: {error.reason}")
    if error.reason == "truncated tar":
        return LayerRejected(error.reason)
    return LayerRejected(f"malformed tar: {error.reason}")


# Type flags after Go's reading (a NUL flag is already "0" or "5"). Contiguous ("7") and old GNU
# sparse ("S") entries hold a regular file's bytes; the global PAX header ("g") is no entry.
_KINDS = {
    b"0": EntryKind.FILE,
    b"7": EntryKind.FILE,
    b"S": EntryKind.FILE,
    b"5": EntryKind.DIR,
    b"2": EntryKind.SYMLINK,
    b"1": EntryKind.HARDLINK,
    b"3": EntryKind.OTHER,
    b"4": EntryKind.OTHER,
    b"6": EntryKind.OTHER,
}
_USUAL_TYPES = frozenset(b"0123456")
# Go reads these, but Docker and containerd refuse to unpack a layer that holds one.
_TYPE_NAMES = {b"7": "contiguous file", b"S": "GNU sparse file"}


def read_layer(
    source: BinaryIO, limits: Limits | None = None, wanted: Wanted = want_nothing
) -> Iterator[LayerItem]:
    """Yield the layer's entries, whiteouts and skipped members in tar order, reading it once,
    then a `LayerNote` for each unusual thing about it.

    Raises `LayerRejected` when the stream is not a tar Go's reader accepts or passes a limit;
    entries already yielded stay valid, but the layer as a whole should be reported as not
    scanned.
    """
    limits = limits or Limits()
    unusual = _Unusual()
    members_read = 0
    try:
        reader = TarReader(decompressed(source, limits.max_decompressed_bytes))
        while (header := reader.next()) is not None:
            members_read += 1
            if members_read > limits.max_entries:
                raise LayerRejected(f"more than {limits.max_entries} entries")
            item = _item(reader, header, limits, wanted, unusual)
            if item is not None:
                yield item
        # Read to the end of the stream, as a runtime does to check the layer's digest: a
        # corrupt compressed tail fails the layer there too.
        trailing, nonzero = reader.trailing()
    except TarError as error:
        raise _rejection(error, members_read) from error
    except StreamRejected as error:
        raise LayerRejected(error.reason) from error
    assert reader.ending is not None
    for text in unusual.notes(reader.ending, trailing if nonzero else 0):
        yield LayerNote(text)


@dataclass
class _Unusual:
    """What a layer did that a plain archive does not, gathered while it is read."""

    kinds: dict[str, EntryKind] = field(default_factory=dict)
    duplicates: list[str] = field(default_factory=list)
    duplicate_count: int = 0
    types: Counter[bytes] = field(default_factory=Counter)
    sparse: int = 0
    global_headers: int = 0

    def entry(self, header: TarHeader, path: str, kind: EntryKind) -> None:
        if header.sparse:
            self.sparse += 1
        if header.typeflag[0] not in _USUAL_TYPES:
            self.types[header.typeflag] += 1
        earlier = self.kinds.get(path)
        self.kinds[path] = kind
        # A directory listed again only sets its metadata again; anything else replaces what
        # was there, so a reader that kept the first copy would see another file.
        if earlier is not None and EntryKind.DIR not in (earlier, kind):
            self.duplicate_count += 1
            if len(self.duplicates) < NOTE_EXAMPLES:
                self.duplicates.append(path)

    def notes(self, ending: TarEnding, trailing: int) -> Iterator[str]:
        if ending.padding_missing:
            yield (
                f"the stream ends inside the last entry's padding ({ending.padding_missing}"
                " bytes missing)"
            )
        if ending.zero_blocks < 2:
            yield (
                "missing end-of-archive blocks"
                if ending.zero_blocks == 0
                else "only one of the two end-of-archive blocks"
            )
        if ending.dangling:
            yield f"the stream ends with a {ending.dangling} that applies to no entry"
        if trailing:
            yield f"{trailing} bytes after the end-of-archive blocks, which no runtime unpacks"
        if self.duplicate_count:
            yield (
                f"{self.duplicate_count} entries repeat a path listed earlier in the layer (the"
                f" last copy wins): {', '.join(map(shown, self.duplicates))}"
            )
        for typeflag, count in sorted(self.types.items()):
            name = _TYPE_NAMES.get(typeflag, "unknown type")
            yield (
                f"{count} entries of type {typeflag.decode('latin-1')!r} ({name}): Docker and"
                " containerd refuse to unpack such a layer"
            )
        if self.sparse:
            yield f"{self.sparse} sparse files (their holes are read as zeros)"
        if self.global_headers:
            yield (
                f"{self.global_headers} PAX global headers, ignored as Go's archive/tar"
                " ignores them"
            )


def _item(
    reader: TarReader,
    header: TarHeader,
    limits: Limits,
    wanted: Wanted,
    unusual: _Unusual,
) -> LayerItem | None:
    if header.typeflag == b"g":
        unusual.global_headers += 1
        return None
    name = header.name.decode("utf-8", "surrogateescape")
    path = normalize_name(name)
    if path is None:
        return SkippedEntry(name, "path escapes the image root")
    if path == "":
        return None  # the root directory itself
    parent, _, base = path.rpartition("/")
    if base.startswith(WHITEOUT_PREFIX):
        return _whiteout(name, parent, base)
    kind = _KINDS.get(header.typeflag, EntryKind.OTHER)
    unusual.entry(header, path, kind)
    if kind is EntryKind.SYMLINK or kind is EntryKind.HARDLINK:
        target = header.linkname.decode("utf-8", "surrogateescape")
        escapes = (
            _symlink_escapes(path, target)
            if kind is EntryKind.SYMLINK
            else normalize_name(target) is None
        )
        return LayerEntry(path, kind, 0, header.mode, target, link_escapes=escapes)
    if kind is not EntryKind.FILE:
        return LayerEntry(path, kind, 0, header.mode)
    oversized = header.size > limits.max_file_bytes
    content = None
    if not oversized and header.size <= limits.max_content_bytes and wanted(path):
        content = reader.read()
    return LayerEntry(path, kind, header.size, header.mode, oversized=oversized, content=content)


def _whiteout(name: str, parent: str, base: str) -> LayerItem:
    if base == OPAQUE_MARKER:
        return Whiteout(parent, opaque=True)
    hidden = base[len(WHITEOUT_PREFIX) :]
    if hidden.startswith(WHITEOUT_PREFIX) or hidden in ("", ".", ".."):
        # `.wh..wh.*` other than the opaque marker is aufs bookkeeping, not a deletion.
        return SkippedEntry(name, "not a whiteout of a name")
    return Whiteout(f"{parent}/{hidden}" if parent else hidden)
