"""A bounded zip reader for archives held in memory: list the central directory, read a few members.

Java archives are zip files, often larger than the few members an inventory needs, and come from
untrusted images. This reader walks the central directory (never the whole archive), keeps only
the members a caller selects, and inflates a member only up to a byte limit, so a crafted archive
costs at most the bounds below. Python's `zipfile` would build an object for every one of up to
a million directory entries and raises a dozen exception types on bad input; here bad input
makes a member unreadable or the archive empty, and nothing raises.

What is read (APPNOTE.TXT): the end of central directory record (and its Zip64 forms), the
central directory headers and each wanted member's local header. Bytes before the first member (a
launch script in an "executable" Spring Boot jar) are allowed: offsets are shifted by the
difference between where the directory is and where the end record says it is, as Java does.
Only stored (0) and deflated (8) members are read; encrypted ones are not.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

_EOCD = b"PK\x05\x06"
_EOCD64_LOCATOR = b"PK\x06\x07"
_EOCD64 = b"PK\x06\x06"
_CENTRAL = b"PK\x01\x02"
_LOCAL = b"PK\x03\x04"
_EOCD_SIZE = 22
_MAX_COMMENT = 0xFFFF
_CENTRAL_HEADER = struct.Struct("<4s6H3L5H2L")
_LOCAL_HEADER = struct.Struct("<4s5HL2L2H")
_ZIP64_EXTRA = 0x0001
_STORED, _DEFLATED = 0, 8
_ENCRYPTED = 0x1
# A deflate stream cannot expand data more than about 1032 times; a member that claims more is
# not a real zip member.
MAX_RATIO = 1100


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # as stored, decoded as UTF-8 (or cp437 when the UTF-8 flag is clear)
    method: int
    flags: int
    compressed_size: int
    size: int
    offset: int  # of the local header, already shifted by any prefix before the archive


def is_zip(data: bytes | memoryview) -> bool:
    """A local header at the start, or an end record near the end (a prefixed archive)."""
    return bytes(data[:4]) == _LOCAL or _end_record(data) is not None


def members(
    data: bytes | memoryview, wanted: Callable[[str], bool], max_entries: int
) -> tuple[list[Member], int]:
    """The wanted members in central-directory order, and how many directory entries were
    walked. Walking stops after `max_entries` or at damage; what came before is kept."""
    view = memoryview(data)
    found = _directory(view)
    if found is None:
        return [], 0
    start, end, count, shift = found
    kept: list[Member] = []
    position = start
    for index in range(count):
        if index >= max_entries:
            return kept, index
        if position + _CENTRAL_HEADER.size > end:
            return kept, index
        fields = _CENTRAL_HEADER.unpack_from(view, position)
        if fields[0] != _CENTRAL:
            return kept, index
        flags, method = fields[3], fields[4]
        compressed, size = fields[8], fields[9]
        name_length, extra_length, comment_length = fields[10], fields[11], fields[12]
        offset = fields[16]
        name_start = position + _CENTRAL_HEADER.size
        extra_start = name_start + name_length
        position = extra_start + extra_length + comment_length
        if position > end:
            return kept, index
        name = _name(bytes(view[name_start:extra_start]), flags)
        if not wanted(name):
            continue
        sizes = _zip64_sizes(
            view[extra_start : extra_start + extra_length], size, compressed, offset
        )
        size, compressed, offset = sizes
        kept.append(Member(name, method, flags, compressed, size, offset + shift))
    return kept, count


def read_member(data: bytes | memoryview, member: Member, limit: int) -> bytes | memoryview | None:
    """The member's bytes, or None when it is larger than `limit`, damaged, encrypted or
    compressed other than stored or deflated. A stored member comes back as a view of `data`."""
    view = memoryview(data)
    if member.size > limit or member.flags & _ENCRYPTED:
        return None
    if member.method == _DEFLATED and member.size > MAX_RATIO * max(member.compressed_size, 1):
        return None
    position = member.offset
    if position < 0 or position + _LOCAL_HEADER.size > len(view):
        return None
    header = _LOCAL_HEADER.unpack_from(view, position)
    if header[0] != _LOCAL:
        return None
    start = position + _LOCAL_HEADER.size + header[9] + header[10]
    stop = start + member.compressed_size
    if stop > len(view):
        return None
    if member.method == _STORED:
        return view[start:stop] if member.compressed_size == member.size else None
    if member.method != _DEFLATED:
        return None
    inflater = zlib.decompressobj(-15)
    try:
        # One byte past the declared size shows a member that lies about its size.
        out = inflater.decompress(view[start:stop], member.size + 1)
    except zlib.error:
        return None
    return out if len(out) == member.size else None


def _name(raw: bytes, flags: int) -> str:
    if flags & 0x800:
        return raw.decode("utf-8", "replace")
    return raw.decode("cp437")


def _end_record(view: bytes | memoryview) -> int | None:
    """Where the end of central directory record starts."""
    tail_start = max(0, len(view) - _EOCD_SIZE - _MAX_COMMENT)
    tail = bytes(view[tail_start:])
    at = tail.rfind(_EOCD)
    while at >= 0:
        # The record's comment must reach exactly to the end of the file.
        if at + _EOCD_SIZE <= len(tail):
            (comment_length,) = struct.unpack_from("<H", tail, at + 20)
            if at + _EOCD_SIZE + comment_length == len(tail):
                return tail_start + at
        at = tail.rfind(_EOCD, 0, at)
    return None


def _directory(view: memoryview) -> tuple[int, int, int, int] | None:
    """(start, end, entry count, shift) of the central directory, or None."""
    eocd = _end_record(view)
    if eocd is None:
        return None
    count, size, offset = struct.unpack_from("<HLL", view, eocd + 10)
    record = eocd
    if count == 0xFFFF or 0xFFFFFFFF in (size, offset):
        found = _zip64_directory(view, eocd)
        if found is None:
            return None
        count, size, offset, record = found
    start = record - size
    if start < 0:
        return None
    # Bytes before the archive (a launch script) shift every offset by the same amount.
    shift = start - offset
    if shift < 0:
        return None
    return start, record, count, shift


def _zip64_directory(view: memoryview, eocd: int) -> tuple[int, int, int, int] | None:
    locator = eocd - 20
    if locator < 0 or bytes(view[locator : locator + 4]) != _EOCD64_LOCATOR:
        return None
    # The Zip64 record (without extensible data, as every writer makes it) sits just before its
    # locator, whatever the locator's offset says: that offset ignores bytes in front.
    record = locator - 56
    if record < 0 or bytes(view[record : record + 4]) != _EOCD64:
        return None
    count, size, offset = struct.unpack_from("<QQQ", view, record + 32)
    return count, size, offset, record


def _zip64_sizes(
    extra: memoryview, size: int, compressed: int, offset: int
) -> tuple[int, int, int]:
    """Sizes and offset from the Zip64 extra field, for those the header marks as too large."""
    position = 0
    while position + 4 <= len(extra):
        tag, length = struct.unpack_from("<HH", extra, position)
        body = position + 4
        if tag == _ZIP64_EXTRA:
            values = []
            for start in range(body, min(body + length, len(extra)) - 7, 8):
                values.append(struct.unpack_from("<Q", extra, start)[0])
            pick = iter(values)
            size = next(pick, size) if size == 0xFFFFFFFF else size
            compressed = next(pick, compressed) if compressed == 0xFFFFFFFF else compressed
            offset = next(pick, offset) if offset == 0xFFFFFFFF else offset
            break
        position = body + length
    return size, compressed, offset
