"""Tar streams built byte by byte, for what Python's tarfile will not write: a last file without
its padding or the end-of-archive blocks, sparse maps of every GNU format, odd numeric fields,
global headers, prefixes in every header format, names that are not UTF-8.

`header` makes one 512-byte header block (fields overridable by offset, checksum computed unless
given); `entry`, `pax`, `gnu_long` and the sparse builders make whole members; `EOF` ends an
archive.
"""

from __future__ import annotations

import tarfile
from collections.abc import Mapping, Sequence

BLOCK = 512
EOF = bytes(2 * BLOCK)
Fragments = Sequence[tuple[int, bytes]]  # (offset in the file, the data there)


def octal(value: int, width: int) -> bytes:
    return f"{value:0{width - 1}o}".encode() + b"\0"


def pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % BLOCK)


def header(
    name: bytes,
    size: int = 0,
    typeflag: bytes = b"0",
    *,
    linkname: bytes = b"",
    mode: int = 0o644,
    fmt: str = "ustar",
    prefix: bytes = b"",
    fields: Mapping[int, bytes] | None = None,
    checksum: bytes | None = None,
) -> bytes:
    """One header block. `fmt` is ustar, gnu, star or v7 (no magic)."""
    block = bytearray(BLOCK)

    def put(offset: int, value: bytes) -> None:
        block[offset : offset + len(value)] = value

    put(0, name[:100])
    put(100, octal(mode, 8))
    put(108, octal(0, 8))
    put(116, octal(0, 8))
    put(124, octal(size, 12))
    put(136, octal(1700000000, 12))
    put(156, typeflag)
    put(157, linkname[:100])
    if fmt in ("ustar", "star"):
        put(257, b"ustar\x0000")
    elif fmt == "gnu":
        put(257, b"ustar  \x00")
    if fmt != "v7":
        put(265, b"root")
        put(297, b"root")
        put(329, octal(0, 8))
        put(337, octal(0, 8))
    if fmt == "ustar":
        put(345, prefix[:155])
    elif fmt == "star":
        put(345, prefix[:131])
        put(508, b"tar\x00")
    for offset, value in (fields or {}).items():
        put(offset, value)
    if checksum is None:
        block[148:156] = b" " * 8
        checksum = f"{sum(block):06o}".encode() + b"\0 "
    put(148, checksum)
    return bytes(block)


def entry(name: bytes, data: bytes = b"", typeflag: bytes = b"0", **options: object) -> bytes:
    return header(name, len(data), typeflag, **options) + pad(data)  # type: ignore[arg-type]


def record(key: bytes, value: bytes) -> bytes:
    """One PAX record, `LEN key=value\\n`, LEN counting itself."""
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def pax(records: Sequence[tuple[bytes, bytes]] | bytes, typeflag: bytes = b"x") -> bytes:
    data = records if isinstance(records, bytes) else b"".join(record(k, v) for k, v in records)
    return entry(b"PaxHeaders/entry", data, typeflag)


def gnu_long(name: bytes, typeflag: bytes = b"L") -> bytes:
    return entry(b"././@LongLink", name + b"\0", typeflag, fmt="gnu")


def sparse_data(fragments: Fragments) -> bytes:
    return b"".join(data for _, data in fragments)


def old_gnu_sparse(name: bytes, fragments: Fragments, real_size: int) -> bytes:
    """An old GNU sparse member ('S'): four fragments in the header, 21 per extension block."""
    pairs = [octal(offset, 12) + octal(len(data), 12) for offset, data in fragments]
    data = sparse_data(fragments)
    first, rest = pairs[:4], pairs[4:]
    fields = {483: octal(real_size, 12), 482: b"\x01" if rest else b"\x00"}
    for index, pair in enumerate(first):
        fields[386 + 24 * index] = pair
    out = header(name, len(data), b"S", fmt="gnu", fields=fields)
    while rest:
        chunk, rest = rest[:21], rest[21:]
        block = bytearray(BLOCK)
        for index, pair in enumerate(chunk):
            block[24 * index : 24 * index + 24] = pair
        block[504] = 1 if rest else 0
        out += bytes(block)
    return out + pad(data)


def pax_sparse(name: bytes, fragments: Fragments, real_size: int, version: str) -> bytes:
    """A GNU PAX sparse member: version "0.0", "0.1" or "1.0"."""
    data = sparse_data(fragments)
    numbers = [str(n).encode() for offset, part in fragments for n in (offset, len(part))]
    count = str(len(fragments)).encode()
    if version == "1.0":
        records = [
            (b"GNU.sparse.major", b"1"),
            (b"GNU.sparse.minor", b"0"),
            (b"GNU.sparse.name", name),
            (b"GNU.sparse.realsize", str(real_size).encode()),
        ]
        sparse_map = pad(b"\n".join([count, *numbers]) + b"\n")
        return pax(records) + entry(b"GNUSparseFile.0/" + name, sparse_map + data)
    if version == "0.1":
        records = [
            (b"GNU.sparse.major", b"0"),
            (b"GNU.sparse.minor", b"1"),
            (b"GNU.sparse.name", name),
            (b"GNU.sparse.size", str(real_size).encode()),
            (b"GNU.sparse.numblocks", count),
            (b"GNU.sparse.map", b",".join(numbers)),
        ]
        return pax(records) + entry(b"GNUSparseFile.0/" + name, data)
    records = [(b"GNU.sparse.size", str(real_size).encode()), (b"GNU.sparse.numblocks", count)]
    for offset, part in fragments:
        records += [
            (b"GNU.sparse.offset", str(offset).encode()),
            (b"GNU.sparse.numbytes", str(len(part)).encode()),
        ]
    return pax(records) + entry(name, data)


def tarfile_bytes(members: Sequence[tuple[str, bytes | None, bytes]], fmt: int) -> bytes:
    """An archive Python's tarfile writes: (name, data or None for a link, type flag)."""
    import io

    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        for name, data, typeflag in members:
            info = tarfile.TarInfo(name)
            info.type = typeflag
            if data is None:
                info.linkname = "target/" + "t" * 120
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
