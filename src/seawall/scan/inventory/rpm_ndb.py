"""RPM's ndb `Packages.db` (SUSE since SLE 15 SP3 / Leap 15.3: `usr/lib/sysimage/rpm/Packages.db`),
rpm's own simple format, read from bytes.

Every integer is a little-endian u32. The file is counted in 16-byte blocks:

    0   header: "RpmP", version 0, generation, slot page count, next package index
    32  slots up to the end of the slot pages (4096 bytes each, the header taking the first
        two slots): "Slot", package index, block offset, block count; offset 0 = a free slot
    blobs, each at its slot's block offset and filling its block count:
        head "BlbS", package index, timestamp, blob length; the header blob;
        zero padding; tail adler32, blob length, "BlbE"

A slot is used only when its blob agrees with it: magic at both ends, the same package index
and length, and a block count that the length fills exactly, all inside the file and past the
slot pages. rpm itself does not check the adler32 when it reads a package, so neither do we
(a header that does not parse is dropped later anyway). Nothing here raises on malformed input.
"""

from __future__ import annotations

import struct

# A whole distribution's rpmdb is tens of megabytes; anything far larger is not one.
MAX_DB_BYTES = 256 * 1024 * 1024
MAX_PACKAGES = 100_000
# 254 slots on the first page, 256 on each next one: room for MAX_PACKAGES and then some.
_MAX_SLOT_PAGES = 512

_DB_MAGIC = b"RpmP"
_SLOT_MAGIC = b"Slot"
_HEAD_MAGIC = b"BlbS"
_TAIL_MAGIC = b"BlbE"
_HEADER_SIZE = 32
_PAGE_SIZE = 4096
_SLOT_SIZE = 16
_BLOCK = 16
_HEAD_SIZE = 16
_TAIL_SIZE = 12
_SLOT = struct.Struct("<4sIII")
_HEAD = struct.Struct("<4sIII")
_TAIL = struct.Struct("<II4s")


def _blob(data: bytes, index: int, offset: int, count: int) -> bytes | None:
    """The header blob a slot points at, or None when the blob does not match the slot."""
    start, end = offset * _BLOCK, (offset + count) * _BLOCK
    if end > len(data) or count * _BLOCK < _HEAD_SIZE + _TAIL_SIZE:
        return None
    magic, blob_index, _, length = _HEAD.unpack_from(data, start)
    if magic != _HEAD_MAGIC or blob_index != index:
        return None
    if count != -(-(_HEAD_SIZE + length + _TAIL_SIZE) // _BLOCK):
        return None
    _, tail_length, tail_magic = _TAIL.unpack_from(data, end - _TAIL_SIZE)
    if tail_magic != _TAIL_MAGIC or tail_length != length:
        return None
    return data[start + _HEAD_SIZE : start + _HEAD_SIZE + length]


def header_blobs(data: bytes) -> list[bytes]:
    """Every package's header blob, in package-index (install) order; [] when `data` is not an
    ndb package database."""
    if len(data) < _PAGE_SIZE or len(data) > MAX_DB_BYTES or not data.startswith(_DB_MAGIC):
        return []
    version, _, slot_pages = struct.unpack_from("<III", data, 4)
    if version != 0 or not 0 < slot_pages <= _MAX_SLOT_PAGES:
        return []
    if slot_pages * _PAGE_SIZE > len(data):
        return []
    first_blob_block = slot_pages * _PAGE_SIZE // _BLOCK
    found: dict[int, bytes] = {}
    for position in range(_HEADER_SIZE, slot_pages * _PAGE_SIZE, _SLOT_SIZE):
        magic, index, offset, count = _SLOT.unpack_from(data, position)
        if magic != _SLOT_MAGIC or offset == 0 or index == 0 or index in found:
            continue
        if offset < first_blob_block:
            continue
        blob = _blob(data, index, offset, count)
        if blob is not None:
            found[index] = blob
            if len(found) >= MAX_PACKAGES:
                break
    return [found[index] for index in sorted(found)]
