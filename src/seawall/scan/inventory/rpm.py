"""RPM's package databases, in `var/lib/rpm/` or `usr/lib/sysimage/rpm/`:

- `rpmdb.sqlite` (rpm >= 4.16: RHEL 9, Fedora, Rocky/Alma 9, ...), read here through sqlite;
- `Packages`, Berkeley DB (RHEL/CentOS 7 and 8, Amazon Linux 2, older SLES): `rpm_bdb`;
- `Packages.db`, ndb (SUSE since SLE 15 SP3 / Leap 15.3): `rpm_ndb`.

Which of the three a file is, is told by its magic bytes (`header_blobs`), not its name. All
three hold one blob per installed package: the package's rpm header as stored on disk (no
8-byte magic prefix, unlike a header inside a `.rpm` file):

    u32 index_count, u32 data_length           (big-endian, like everything here)
    index_count x { u32 tag, u32 type, u32 offset, u32 count }
    data_length bytes of data store            (offsets in the index point into it)

Each header also lists the package's files (`BASENAMES`, `DIRNAMES`, `DIRINDEXES`) and their
digests (`FILEDIGESTS`, by `FILEDIGESTALGO`); `file_digests` reads those for chosen paths.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator

from seawall.scan.inventory import Package, fits, path_parts, rpm_bdb, rpm_ndb
from seawall.scan.inventory.osrelease import (
    RPM_ECOSYSTEMS,
    Distro,
    distro_qualifier,
    package_ecosystem,
)
from seawall.scan.inventory.purl import build_purl

PATHS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")
BDB_PATHS = ("var/lib/rpm/Packages", "usr/lib/sysimage/rpm/Packages")
NDB_PATHS = ("var/lib/rpm/Packages.db", "usr/lib/sysimage/rpm/Packages.db")
_ALL_PATHS = frozenset(PATHS + BDB_PATHS + NDB_PATHS)
# A whole distribution's rpmdb is tens of megabytes; anything far larger is not one.
MAX_DB_BYTES = 256 * 1024 * 1024
MAX_PACKAGES = 100_000
# rpm itself refuses headers with more index entries or a larger data store than these.
_MAX_INDEX_ENTRIES = 0xFFFF
_MAX_HEADER_BYTES = 64 * 1024 * 1024
# sqlite calls the progress handler every this many VM steps; past the budget the query stops,
# so a crafted database (huge tables, odd schema) cannot keep the scanner busy forever.
_PROGRESS_STEPS = 10_000
_PROGRESS_BUDGET = 2_000

_TAG_NAME = 1000
_TAG_VERSION = 1001
_TAG_RELEASE = 1002
_TAG_EPOCH = 1003
_TAG_ARCH = 1022
_TAG_SOURCERPM = 1044
_STRING_TAGS = frozenset({_TAG_NAME, _TAG_VERSION, _TAG_RELEASE, _TAG_ARCH, _TAG_SOURCERPM})
_TAG_FILEDIGESTS = 1035
_TAG_DIRINDEXES = 1116
_TAG_BASENAMES = 1117
_TAG_DIRNAMES = 1118
_TAG_FILEDIGESTALGO = 5011
_TYPE_INT32 = 4
_TYPE_STRING = 6
_TYPE_STRING_ARRAY = 8
_TYPE_I18NSTRING = 9  # an array of translations; the first one is the untranslated text
_INDEX_ENTRY = struct.Struct(">IIII")
# rpm's digest algorithm numbers (PGPHASHALGO); a header without FILEDIGESTALGO uses MD5.
_DIGEST_ALGORITHMS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}


def is_rpmdb_sqlite(path: str) -> bool:
    return "/".join(path_parts(path)) in PATHS


def is_rpmdb(path: str) -> bool:
    """An rpm package database of any of the three formats, by its path."""
    return "/".join(path_parts(path)) in _ALL_PATHS


def header_blobs(data: bytes) -> list[bytes] | Iterator[bytes]:
    """The package header blobs of an rpm database in any of the three formats, told apart by
    their magic bytes; nothing for anything else."""
    if data.startswith(b"SQLite format 3\0"):
        return _blobs(data)
    if data.startswith(b"RpmP"):
        return rpm_ndb.header_blobs(data)
    return rpm_bdb.header_blobs(data)


def parse_rpm_header(blob: bytes) -> dict[int, str | int]:
    """The wanted tags of one header: strings for NAME..SOURCERPM, an int for EPOCH.

    Every offset and count is checked against the blob, so a malformed header only loses the
    tags that do not fit; the result is empty when the header's own sizes are inconsistent.
    """
    if len(blob) < 8:
        return {}
    index_count, data_length = struct.unpack_from(">II", blob, 0)
    if index_count > _MAX_INDEX_ENTRIES or data_length > _MAX_HEADER_BYTES:
        return {}
    store_start = 8 + index_count * _INDEX_ENTRY.size
    if store_start + data_length > len(blob):
        return {}
    store = memoryview(blob)[store_start : store_start + data_length]
    tags: dict[int, str | int] = {}
    for position in range(8, store_start, _INDEX_ENTRY.size):
        tag, type_, offset, count = _INDEX_ENTRY.unpack_from(blob, position)
        if tag in tags or count == 0 or offset >= data_length:
            continue
        if tag in _STRING_TAGS and type_ in (_TYPE_STRING, _TYPE_I18NSTRING):
            text = _c_string(store, offset)
            if text is not None:
                tags[tag] = text
        elif tag == _TAG_EPOCH and type_ == _TYPE_INT32 and offset + 4 <= data_length:
            (tags[tag],) = struct.unpack_from(">I", store, offset)
    return tags


def _index(blob: bytes) -> tuple[memoryview, dict[int, tuple[int, int, int]]] | None:
    """The data store and {tag: (type, offset, count)} of a header; None when it is malformed."""
    if len(blob) < 8:
        return None
    index_count, data_length = struct.unpack_from(">II", blob, 0)
    if index_count > _MAX_INDEX_ENTRIES or data_length > _MAX_HEADER_BYTES:
        return None
    store_start = 8 + index_count * _INDEX_ENTRY.size
    if store_start + data_length > len(blob):
        return None
    entries: dict[int, tuple[int, int, int]] = {}
    for position in range(8, store_start, _INDEX_ENTRY.size):
        tag, type_, offset, count = _INDEX_ENTRY.unpack_from(blob, position)
        if offset < data_length:
            entries.setdefault(tag, (type_, offset, count))
    return memoryview(blob)[store_start : store_start + data_length], entries


def _strings(
    store: memoryview, entry: tuple[int, int, int] | None, kinds: tuple[int, ...]
) -> list[bytes] | None:
    """A string or string-array tag as `count` NUL-terminated byte strings; None if malformed."""
    if entry is None or entry[0] not in kinds:
        return None
    _, offset, count = entry
    parts = bytes(store[offset:]).split(b"\0", count)
    return parts[:count] if len(parts) > count else None


def _int32s(store: memoryview, entry: tuple[int, int, int] | None) -> list[int] | None:
    if entry is None or entry[0] != _TYPE_INT32:
        return None
    _, offset, count = entry
    if offset + 4 * count > len(store):
        return None
    return list(struct.unpack_from(f">{count}I", store, offset))


def file_digests(data: bytes, paths: set[str]) -> dict[str, list[tuple[str, str, str]]]:
    """For each of `paths` (root-relative) that a package lists: (package, hashlib algorithm
    name, hex digest) per package listing it. Malformed headers and databases give nothing."""
    found: dict[str, list[tuple[str, str, str]]] = {}
    basenames_wanted = {
        path.rpartition("/")[2].encode("utf-8", "surrogateescape") for path in paths
    }
    for blob in header_blobs(data):
        parsed = _index(blob)
        if parsed is None:
            continue
        store, entries = parsed
        basenames = _strings(store, entries.get(_TAG_BASENAMES), (_TYPE_STRING_ARRAY,))
        if not basenames or basenames_wanted.isdisjoint(basenames):
            continue
        dirnames = _strings(store, entries.get(_TAG_DIRNAMES), (_TYPE_STRING_ARRAY,))
        dirindexes = _int32s(store, entries.get(_TAG_DIRINDEXES))
        digests = _strings(store, entries.get(_TAG_FILEDIGESTS), (_TYPE_STRING_ARRAY,))
        name = _strings(store, entries.get(_TAG_NAME), (_TYPE_STRING, _TYPE_I18NSTRING))
        algorithms = _int32s(store, entries.get(_TAG_FILEDIGESTALGO))
        algorithm = _DIGEST_ALGORITHMS.get(algorithms[0] if algorithms else 1)
        count = len(basenames)
        if not (dirnames and dirindexes and digests and name and algorithm):
            continue
        if len(dirindexes) != count or len(digests) != count:
            continue
        package = name[0].decode("utf-8", errors="replace")
        for basename, dirindex, digest in zip(basenames, dirindexes, digests, strict=True):
            if basename not in basenames_wanted or dirindex >= len(dirnames) or not digest:
                continue
            path = "/".join(
                path_parts((dirnames[dirindex] + basename).decode("utf-8", "surrogateescape"))
            )
            if path in paths:
                found.setdefault(path, []).append(
                    (package, algorithm, digest.decode("ascii", "replace").lower())
                )
    return found


def _c_string(store: memoryview, offset: int) -> str | None:
    """The NUL-terminated UTF-8 string at offset; None when it is unterminated or too long."""
    window = bytes(store[offset : offset + 4 * 1024 + 1])
    end = window.find(b"\0")
    if end < 0:
        return None
    return window[:end].decode("utf-8", errors="replace")


def _source(sourcerpm: str) -> tuple[str, str] | None:
    """`bash-5.1.8-6.el9.src.rpm` → ("bash", "5.1.8-6.el9"); None when it does not parse."""
    for suffix in (".src.rpm", ".nosrc.rpm"):
        if sourcerpm.endswith(suffix):
            stem = sourcerpm[: -len(suffix)]
            break
    else:
        return None
    rest, _, release = stem.rpartition("-")
    name, _, version = rest.rpartition("-")
    if not (name and version and release):
        return None
    return name, f"{version}-{release}"


def _blobs(data: bytes) -> Iterator[bytes]:
    """Every `Packages.blob`, read from an in-memory copy of the database; nothing on error."""
    if len(data) > MAX_DB_BYTES or len(data) < 100 or not data.startswith(b"SQLite format 3\0"):
        return
    image = bytearray(data)
    # rpm keeps its database in WAL mode (header bytes 18 and 19 are 2); sqlite's in-memory
    # VFS has no WAL, so it only opens the image after we mark it a rollback-journal database.
    # rpm checkpoints the WAL on close, so the main file holds every committed package.
    image[18] = image[19] = 1
    steps = 0

    def over_budget() -> int:
        nonlocal steps
        steps += 1
        return int(steps > _PROGRESS_BUDGET)

    connection = sqlite3.connect(":memory:")
    try:
        connection.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, _MAX_HEADER_BYTES)
        connection.set_progress_handler(over_budget, _PROGRESS_STEPS)
        connection.deserialize(image)
        # The database is untrusted: `Packages` could be a view (arbitrary SQL) or have
        # generated columns calling functions; read only a real table, run no function the
        # schema names, and have sqlite check page cells before using them.
        connection.execute("PRAGMA trusted_schema = OFF")
        connection.execute("PRAGMA cell_size_check = ON")
        connection.execute("PRAGMA query_only = ON")
        kind = connection.execute(
            "SELECT type FROM sqlite_master WHERE name = 'Packages'"
        ).fetchone()
        if kind != ("table",):
            return
        rows = connection.execute(
            "SELECT blob FROM Packages ORDER BY hnum LIMIT ?", (MAX_PACKAGES,)
        )
        for (blob,) in rows:
            if isinstance(blob, bytes):
                yield blob
    except (sqlite3.Error, OverflowError, MemoryError):
        return
    finally:
        connection.close()


def parse_rpmdb_sqlite(data: bytes, path: str, found: Distro | None = None) -> list[Package]:
    """`parse_rpmdb`, by its older name."""
    return parse_rpmdb(data, path, found)


def parse_rpmdb(data: bytes, path: str, found: Distro | None = None) -> list[Package]:
    """Installed packages of an rpm database of any of the three formats, in install order;
    `gpg-pubkey` pseudo-packages are skipped.

    The version is `[epoch:]version-release`. The source version is the source rpm's
    `version-release` with the binary's epoch, since every package built from one spec shares
    its epoch and the source rpm's file name never carries one.
    """
    namespace = found.id if found is not None else None
    # A distribution OSV has no advisories for (CentOS, Fedora, Amazon Linux, ...) gets "RPM".
    ecosystem = package_ecosystem(found, RPM_ECOSYSTEMS, "RPM")
    image_path = "/".join(path_parts(path))
    packages: list[Package] = []
    for blob in header_blobs(data):
        tags = parse_rpm_header(blob)
        name, version, release, arch, sourcerpm = (
            str(tags.get(tag, ""))
            for tag in (_TAG_NAME, _TAG_VERSION, _TAG_RELEASE, _TAG_ARCH, _TAG_SOURCERPM)
        )
        epoch = tags.get(_TAG_EPOCH)
        if name == "gpg-pubkey" or not fits(name, version, release) or len(arch) > 64:
            continue
        prefix = f"{epoch}:" if isinstance(epoch, int) else ""
        full_version = f"{prefix}{version}-{release}"
        source = _source(sourcerpm)
        source_name, source_version = source if source else (name, f"{version}-{release}")
        if not fits(full_version, source_name, source_version):
            continue
        purl = build_purl(
            "rpm",
            name,
            f"{version}-{release}",
            namespace=namespace,
            qualifiers={
                "arch": arch,
                "epoch": str(epoch) if isinstance(epoch, int) else None,
                "distro": distro_qualifier(found),
            },
        )
        packages.append(
            Package(
                ecosystem,
                name,
                full_version,
                source_name,
                prefix + source_version,
                purl,
                image_path,
            )
        )
    return packages
