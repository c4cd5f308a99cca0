"""RPM's Berkeley DB `Packages` file (rpm < 4.16: RHEL/CentOS 7 and 8, Amazon Linux 2, SLES 15
before SP3), read from bytes with no Berkeley DB library.

`Packages` is a BDB hash database: key = the package's instance number (4 bytes, in the file's
byte order), value = the package's rpm header blob (as in the sqlite database). Instance 0 holds
rpm's next-instance counter, not a package. The layout read here (all integers in the byte order
the metadata page's magic reveals, since BDB writes in the writer's native order):

    page 0, the hash metadata page:
      12 magic 0x061561   16 version (8..10)   20 page size   24 encryption algorithm
      32 last page number  72 max bucket        96 spares[32]  (bucket b lives on page
                                                    b + spares[bit length of b])
    every other page: a 26-byte header
       8 page number   16 next page   20 item count (u16)   22 high free offset (u16)   25 type
    hash pages (type 2, 13; 8 in hash version 8 files) hold a u16 offset per item after the
    header; items alternate key, value, and each ends where the previous one starts (the first
    ends at the page's end). An item's first byte is its kind: 1 = bytes on the page,
    3 = off-page: u32 first overflow page, u32 total length at +4 and +8. A bucket's pages are
    chained by "next page".
    overflow pages (type 7) hold "high free offset" bytes of the item after the header, and
    chain to the next by "next page".

Buckets 0..max bucket are walked as rpm's own read-only BDB reader (`bdb_ro`) walks them. Every
page is read at most once, so a crafted file (cycles, pages shared between chains) costs at most
one pass over its pages; every offset and length is checked against the page and the file.
Encrypted databases are not read. Nothing here raises on malformed input.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

# A whole distribution's rpmdb is tens of megabytes; anything far larger is not one.
MAX_DB_BYTES = 256 * 1024 * 1024
MAX_PACKAGES = 100_000
# rpm refuses headers larger than this; a value claiming more is corrupt.
MAX_VALUE_BYTES = 64 * 1024 * 1024

_HASH_MAGIC = 0x061561
_PAGE_HEADER = 26
_HASH_PAGE_TYPES = frozenset({2, 8, 13})
_OVERFLOW_PAGE = 7
_KEYDATA = 1
_OFFPAGE = 3
_OFFPAGE_SIZE = 12
_SPARES = 32


class _Reader:
    """One database image: pages by number, each handed out at most once."""

    def __init__(self, data: bytes, order: str, page_size: int, last_page: int) -> None:
        self.data = data
        self.order = order
        self.page_size = page_size
        self.last_page = last_page
        self.seen: set[int] = set()

    def page(self, number: int, types: frozenset[int]) -> memoryview | None:
        """Page `number` if it is in the file, not read before, and of one of `types`."""
        if not 0 < number <= self.last_page or number in self.seen:
            return None
        self.seen.add(number)
        start = number * self.page_size
        page = memoryview(self.data)[start : start + self.page_size]
        if len(page) < self.page_size or page[25] not in types:
            return None
        # A page that does not know its own number is not the page we were sent to.
        if struct.unpack_from(self.order + "I", page, 8)[0] != number:
            return None
        return page

    def u16(self, page: memoryview, offset: int) -> int:
        value: int = struct.unpack_from(self.order + "H", page, offset)[0]
        return value

    def u32(self, page: memoryview, offset: int) -> int:
        value: int = struct.unpack_from(self.order + "I", page, offset)[0]
        return value

    def overflow(self, first: int, length: int) -> bytes | None:
        """An off-page item: `length` bytes from the overflow chain starting at `first`."""
        if not 0 < length <= min(MAX_VALUE_BYTES, len(self.data)):
            return None
        parts: list[bytes] = []
        remaining = length
        number = first
        while remaining > 0:
            page = self.page(number, frozenset({_OVERFLOW_PAGE}))
            if page is None:
                return None
            used = self.u16(page, 22)
            if used == 0 or used > remaining or _PAGE_HEADER + used > self.page_size:
                return None
            parts.append(bytes(page[_PAGE_HEADER : _PAGE_HEADER + used]))
            remaining -= used
            number = self.u32(page, 16)
        return b"".join(parts)

    def item(self, page: memoryview, start: int, end: int) -> bytes | None:
        """The item between offsets `start` and `end` of a hash page."""
        if not _PAGE_HEADER <= start < end <= self.page_size:
            return None
        kind = page[start]
        if kind == _KEYDATA:
            return bytes(page[start + 1 : end])
        if kind == _OFFPAGE and end - start == _OFFPAGE_SIZE:
            return self.overflow(self.u32(page, start + 4), self.u32(page, start + 8))
        return None


def _open(data: bytes) -> tuple[_Reader, int, list[int]] | None:
    """The reader, max bucket and spares of a hash database; None when it is not one."""
    if len(data) < 512 or len(data) > MAX_DB_BYTES:
        return None
    for order in ("<", ">"):
        if struct.unpack_from(order + "I", data, 12)[0] == _HASH_MAGIC:
            break
    else:
        return None
    version, page_size = struct.unpack_from(order + "II", data, 16)
    if not 8 <= version <= 10 or data[25] != 8 or data[24] != 0:  # hash metadata, unencrypted
        return None
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        return None
    pages = len(data) // page_size
    (last_page,) = struct.unpack_from(order + "I", data, 32)
    (max_bucket,) = struct.unpack_from(order + "I", data, 72)
    spares = list(struct.unpack_from(f"{order}{_SPARES}I", data, 96))
    # Each bucket has a page of its own, so there cannot be more buckets than pages.
    if max_bucket >= pages:
        return None
    return _Reader(data, order, page_size, min(last_page, pages - 1)), max_bucket, spares


def _pairs(reader: _Reader, page: memoryview) -> Iterator[tuple[bytes, bytes]]:
    """The (key, value) items of one hash page; malformed items are skipped."""
    count = reader.u16(page, 20)
    count = min(count, (reader.page_size - _PAGE_HEADER) // 2)
    offsets = [reader.u16(page, _PAGE_HEADER + 2 * i) for i in range(count)]
    for index in range(0, count - 1, 2):
        key_start, value_start = offsets[index], offsets[index + 1]
        key_end = reader.page_size if index == 0 else offsets[index - 1]
        key = reader.item(page, key_start, key_end)
        if key is None:
            continue
        value = reader.item(page, value_start, key_start)
        if value is not None:
            yield key, value


def header_blobs(data: bytes) -> list[bytes]:
    """Every package's header blob, in instance-number (install) order; [] when `data` is not a
    readable BDB hash database."""
    opened = _open(data)
    if opened is None:
        return []
    reader, max_bucket, spares = opened
    found: dict[int, bytes] = {}
    for bucket in range(max_bucket + 1):
        number = bucket + spares[min(bucket.bit_length(), _SPARES - 1)]
        while number and len(found) < MAX_PACKAGES:
            page = reader.page(number, _HASH_PAGE_TYPES)
            if page is None:
                break
            for key, value in _pairs(reader, page):
                if len(key) == 4:
                    (instance,) = struct.unpack(reader.order + "I", key)
                    if instance:
                        found.setdefault(instance, value)
            number = reader.u32(page, 16)
    return [found[instance] for instance in sorted(found)]
