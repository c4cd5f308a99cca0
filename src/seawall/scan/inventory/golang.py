"""Go binaries: the module build info the Go linker embeds in every ELF executable it links.

Found by content, not path. Since Go 1.18 the `.go.buildinfo` data starts, 16-byte aligned, with

    "\\xff Go buildinf:" (14 bytes), pointer size (1 byte), flags (1 byte), padding to 32 bytes

and, when flags has bit 2 set, two strings each prefixed by its length as an unsigned varint:
the Go version ("go1.19.8") and the module info. The module info is wrapped in two 16-byte
sentinels and holds tab-separated lines:

    path  <main package>
    mod   <main module> <version> [<sum>]
    dep   <module> <version> [<sum>]
    =>    <replacement path> <version> [<sum>]     (replaces the module on the line before)
    build <key>=<value>

Older binaries (Go 1.13-1.17, flags without bit 2) hold instead, at byte 16, two pointers (of the
pointer size, big-endian when flags has bit 1) to Go string headers {data pointer, length};
those are virtual addresses, mapped to file offsets through the ELF `PT_LOAD` program headers.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from seawall.scan.inventory import Package, fits, path_parts
from seawall.scan.inventory.purl import build_purl

MAGIC = b"\xff Go buildinf:"
_HEADER_SIZE = 32
_ALIGN = 16
_FLAG_BIG_ENDIAN = 1
_FLAG_INLINE_STRINGS = 2
_PT_LOAD = 1
# Real executables have about ten program headers; the cap bounds the work on a crafted one.
_MAX_PROGRAM_HEADERS = 256
# The magic can also occur as a string literal (in binaries that read build info themselves);
# give up after this many occurrences, so a file full of them cannot keep the scanner busy.
_MAX_CANDIDATES = 1024
_MAX_VERSION_BYTES = 256
_MAX_MODINFO_BYTES = 16 * 1024 * 1024
_MAX_LINES = 100_000
_SENTINEL_SIZE = 16
# A released toolchain: "go1.19.8", "go1.20" (= 1.20.0), "go1.21rc2"; "devel ..." is not one.
_GO_RELEASE = re.compile(r"go(\d+)\.(\d+)(?:\.(\d+))?(?:(rc|beta)(\d+))?")
# Go writes these as the version of a module built from a directory rather than a download.
_NOT_A_VERSION = frozenset({"", "(devel)"})


@dataclass(frozen=True, slots=True)
class BuildInfo:
    go_version: str  # as the toolchain wrote it, e.g. "go1.19.8" or "go1.20.5 X:boringcrypto"
    modinfo: str  # the module lines, sentinels removed; "" when built outside module mode


@dataclass(frozen=True, slots=True)
class Module:
    path: str
    version: str
    replaced_by: Module | None = None


def is_go_binary(data: bytes) -> bool:
    """An ELF file containing the build-info magic; cheap, and may still fail to parse."""
    return data.startswith(b"\x7fELF") and MAGIC in data


def _uvarint(data: bytes, position: int) -> tuple[int, int] | None:
    """(value, position after it) for the unsigned LEB128 varint at position."""
    value = shift = 0
    for index in range(position, min(position + 10, len(data))):
        byte = data[index]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, index + 1
        shift += 7
    return None


def _string(data: bytes, position: int, limit: int) -> tuple[bytes, int] | None:
    read = _uvarint(data, position)
    if read is None:
        return None
    length, start = read
    if length > limit or start + length > len(data):
        return None
    return data[start : start + length], start + length


def _inline_strings(data: bytes, offset: int) -> tuple[bytes, bytes] | None:
    version = _string(data, offset + _HEADER_SIZE, _MAX_VERSION_BYTES)
    if version is None:
        return None
    modinfo = _string(data, version[1], _MAX_MODINFO_BYTES)
    return None if modinfo is None else (version[0], modinfo[0])


def _load_segments(data: bytes) -> list[tuple[int, int, int]]:
    """(virtual address, file offset, file size) of each `PT_LOAD` segment inside the file."""
    if len(data) < 64 or data[4] not in (1, 2) or data[5] not in (1, 2):
        return []
    order = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # ELF64: p_type, p_flags, p_offset, p_vaddr, p_paddr, p_filesz
        (table,) = struct.unpack_from(order + "Q", data, 0x20)
        entry_size, count = struct.unpack_from(order + "HH", data, 0x36)
        entry, picks = struct.Struct(order + "IIQQQQ"), (0, 2, 3, 5)
    else:  # ELF32: p_type, p_offset, p_vaddr, p_paddr, p_filesz
        (table,) = struct.unpack_from(order + "I", data, 0x1C)
        entry_size, count = struct.unpack_from(order + "HH", data, 0x2A)
        entry, picks = struct.Struct(order + "IIIII"), (0, 1, 2, 4)
    count = min(count, _MAX_PROGRAM_HEADERS)
    if entry_size < entry.size or table + count * entry_size > len(data):
        return []
    segments = []
    for position in range(table, table + count * entry_size, entry_size):
        fields = entry.unpack_from(data, position)
        kind, offset, address, size = (fields[pick] for pick in picks)
        if kind == _PT_LOAD and offset + size <= len(data):
            segments.append((address, offset, size))
    return segments


def _read_virtual(
    data: bytes, segments: list[tuple[int, int, int]], address: int, size: int
) -> bytes | None:
    for start, offset, length in segments:
        if start <= address and address + size <= start + length:
            return data[offset + address - start : offset + address - start + size]
    return None


def _pointed_strings(
    data: bytes, offset: int, pointer_size: int, flags: int
) -> tuple[bytes, bytes] | None:
    """The two strings of the pre-1.18 format, read through their pointers."""
    order = ">" if flags & _FLAG_BIG_ENDIAN else "<"
    word = "Q" if pointer_size == 8 else "I"
    segments = _load_segments(data)
    strings: list[bytes] = []
    for index, limit in enumerate((_MAX_VERSION_BYTES, _MAX_MODINFO_BYTES)):
        (pointer,) = struct.unpack_from(order + word, data, offset + 16 + index * pointer_size)
        header = _read_virtual(data, segments, pointer, 2 * pointer_size)
        if header is None:
            return None
        address, length = struct.unpack(order + 2 * word, header)
        if length > limit:
            return None
        text = b"" if length == 0 else _read_virtual(data, segments, address, length)
        if text is None:
            return None
        strings.append(text)
    return strings[0], strings[1]


def _build_info_at(data: bytes, offset: int) -> BuildInfo | None:
    if offset + _HEADER_SIZE > len(data):
        return None
    pointer_size, flags = data[offset + 14], data[offset + 15]
    if pointer_size not in (4, 8):
        return None
    if flags & _FLAG_INLINE_STRINGS:
        strings = _inline_strings(data, offset)
    else:
        strings = _pointed_strings(data, offset, pointer_size, flags)
    if strings is None or not strings[0].startswith(b"go"):
        return None
    version, raw = strings
    # The text sits between the sentinels and ends in a newline; anything else is not modinfo.
    if len(raw) > 2 * _SENTINEL_SIZE and raw[-_SENTINEL_SIZE - 1] == ord("\n"):
        text = raw[_SENTINEL_SIZE:-_SENTINEL_SIZE].decode("utf-8", errors="replace")
    else:
        text = ""
    return BuildInfo(version.decode("utf-8", errors="replace"), text)


def read_build_info(data: bytes) -> BuildInfo | None:
    """The build info of a Go ≥1.13 ELF binary, or None when there is none we can read."""
    if not data.startswith(b"\x7fELF"):
        return None
    offset = -1
    for _ in range(_MAX_CANDIDATES):
        offset = data.find(MAGIC, offset + 1)
        if offset < 0:
            return None
        # The linker aligns the section; a literal elsewhere only lands aligned by chance.
        info = None if offset % _ALIGN else _build_info_at(data, offset)
        if info is not None:
            return info
    return None


def parse_modinfo(text: str) -> tuple[Module | None, list[Module]]:
    """The main module (None when absent) and the dependencies, each with its replacement."""
    main: Module | None = None
    deps: list[Module] = []
    for line in text.split("\n")[:_MAX_LINES]:
        fields = line.split("\t")
        kind = fields[0]
        if kind not in ("mod", "dep", "=>") or len(fields) < 2:
            continue
        module = Module(fields[1], fields[2] if len(fields) > 2 else "")
        if kind == "mod":
            main = module
        elif kind == "dep":
            deps.append(module)
        elif deps:  # "=>" replaces the dep just before it; the main module is never replaced
            deps[-1] = Module(deps[-1].path, deps[-1].version, module)
    return main, deps


def stdlib_version(go_version: str) -> str | None:
    """ "go1.19.8" → "1.19.8", "go1.20" → "1.20.0", "go1.21rc2" → "1.21.0-rc.2" (the semver
    spelling OSV uses for `stdlib`); None for development toolchains."""
    words = go_version.split()
    match = _GO_RELEASE.fullmatch(words[0]) if words else None
    if match is None:
        return None
    major, minor, patch, pre, number = match.groups()
    version = f"{major}.{minor}.{patch or 0}"
    return f"{version}-{pre}.{number}" if pre else version


def _package(name: str, version: str, path: str) -> Package:
    # Go writes module versions with a leading "v"; the purl keeps Go's spelling. A module
    # path's last element is the purl name, the elements before it the namespace.
    purl_version = version if version.startswith("v") else f"v{version}"
    namespace, _, last = name.rpartition("/")
    purl = build_purl("golang", last, purl_version, namespace=namespace or None)
    return Package("Go", name, version, None, None, purl, path)


def parse_go_binary(data: bytes, path: str) -> list[Package]:
    """The Go standard library ("stdlib") and the modules linked into a Go binary.

    Versions are kept as Go writes them ("v1.2.3"), except stdlib's, which is the toolchain
    release in semver ("1.19.8"). A replaced dependency is reported as its replacement. Left out,
    because no advisory can be matched against them: the main module when built from a checkout
    (version "(devel)", as before Go 1.24 it always is) and modules replaced by a local
    directory (their code is whatever that directory held; the version they replaced is
    usually a placeholder such as v0.0.0).
    """
    info = read_build_info(data)
    if info is None:
        return []
    image_path = "/".join(path_parts(path))
    packages: list[Package] = []
    go = stdlib_version(info.go_version)
    if go is not None:
        packages.append(_package("stdlib", go, image_path))
    main, deps = parse_modinfo(info.modinfo)
    modules = ([main] if main is not None else []) + [
        dep.replaced_by if dep.replaced_by is not None else dep for dep in deps
    ]
    for module in modules:
        if module.version in _NOT_A_VERSION or not fits(module.path, module.version):
            continue
        packages.append(_package(module.path, module.version, image_path))
    return packages
