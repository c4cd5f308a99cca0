"""Rust binaries built with `cargo auditable`: the dependency list it links into the executable.

Found by content. `cargo auditable build` links in an object file whose ELF section `.dep-v0`
(not loaded at run time: no SHF_ALLOC) holds zlib-compressed JSON
(rust-secure-code/cargo-auditable, PARSING.md and cargo-auditable.schema.json):

    {"format": 1, "packages": [{"name": "itoa", "version": "1.0.9", "source": "crates.io",
      "kind": "build", "dependencies": [3], "root": true}, ...]}

`source` is "crates.io", "registry" (another registry), "git" or "local" (a path dependency);
`kind` is "runtime" when left out; `root` marks the binary's own package.

What is listed: packages whose source is crates.io, the only ones OSV's crates.io advisories
are about (a crate from another registry or a git repository may share a name with a
crates.io crate and nothing else). The root package counts like any other: it is local for
an application built from its own tree, and from crates.io for a `cargo install`ed tool,
which advisories about that crate then concern. Build-time dependencies (build scripts,
procedural macros) are left out: their code is not in the binary.

Binaries built with plain `cargo build` carry no such list; they are not inventoried.
"""

from __future__ import annotations

import json
import re
import struct
import zlib
from typing import Any

from seawall.scan.inventory import Package, fits, path_parts
from seawall.scan.inventory.purl import build_purl

SECTION = b".dep-v0"
# cargo-auditable's own parser stops at 8 MiB of JSON; real lists are a few KiB.
MAX_JSON_BYTES = 8 * 1024 * 1024
MAX_PACKAGES = 100_000
# e_shnum is 16 bits; the cap is only a bound on work per file.
_MAX_SECTIONS = 65_535
_SECTION_NAME_BYTES = 64
_CRATE_NAME = re.compile(r"[A-Za-z0-9_-]+")
_CRATES_IO = "crates.io"


def is_auditable_binary(data: bytes) -> bool:
    """An ELF file whose bytes hold the section name; cheap, and may still fail to parse."""
    return data.startswith(b"\x7fELF") and SECTION in data


def find_section(data: bytes, wanted: bytes) -> bytes | None:
    """The bytes of the first ELF section named `wanted`, or None (no such section, or a
    header that does not hold together)."""
    try:
        wide = {1: False, 2: True}[data[4]]
        order = {1: "<", 2: ">"}[data[5]]
        word = "Q" if wide else "I"
        (table,) = struct.unpack_from(order + word, data, 0x28 if wide else 0x20)
        entry_size, count, names_index = struct.unpack_from(
            order + "HHH", data, 0x3A if wide else 0x2E
        )
        header = struct.Struct(order + "II" + word * 4 + "II" + word * 2)
        count = min(count, _MAX_SECTIONS)
        if table == 0 or entry_size != header.size or table + count * entry_size > len(data):
            return None
        if names_index >= count:
            return None
        sections = [header.unpack_from(data, table + i * entry_size) for i in range(count)]
    except (IndexError, KeyError, struct.error):
        return None
    names_offset, names_size = sections[names_index][4], sections[names_index][5]
    if names_offset + names_size > len(data):
        return None
    for name, _, _, _, offset, size, *_ in sections:
        if name >= names_size:
            continue
        start = names_offset + name
        label = data[start : min(start + _SECTION_NAME_BYTES, names_offset + names_size)]
        if label.partition(b"\0")[0] == wanted:
            return data[offset : offset + size] if offset + size <= len(data) else None
    return None


def read_audit_data(data: bytes) -> dict[str, Any] | None:
    """The decompressed, decoded JSON of the `.dep-v0` section, or None."""
    compressed = find_section(data, SECTION)
    if not compressed:
        return None
    inflater = zlib.decompressobj()
    try:
        text = inflater.decompress(compressed, MAX_JSON_BYTES + 1)
    except zlib.error:
        return None
    if len(text) > MAX_JSON_BYTES:
        return None  # larger than any real list: a zip bomb, or not cargo-auditable's
    try:
        document = json.loads(text.decode("utf-8"))
    except (ValueError, RecursionError):
        return None
    return document if isinstance(document, dict) else None


def parse_auditable_binary(data: bytes, path: str) -> list[Package]:
    """The crates.io packages compiled into the binary (see the module docstring)."""
    document = read_audit_data(data)
    entries = document.get("packages") if document is not None else None
    if not isinstance(entries, list):
        return []
    where = "/".join(path_parts(path))
    packages: list[Package] = []
    seen: set[tuple[str, str]] = set()
    for entry in entries[:MAX_PACKAGES]:
        if not isinstance(entry, dict) or entry.get("source") != _CRATES_IO:
            continue
        if entry.get("kind", "runtime") == "build":
            continue
        name, version = entry.get("name"), entry.get("version")
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        if not fits(name, version) or not _CRATE_NAME.fullmatch(name) or version != version.strip():
            continue
        if (name, version) in seen:
            continue
        seen.add((name, version))
        purl = build_purl("cargo", name, version)
        packages.append(Package("crates.io", name, version, None, None, purl, where))
    return packages
