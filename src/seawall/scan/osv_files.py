"""Reading OSV records from disk: one `.json` file, a directory of them (searched recursively),
an OSV `all.zip` (one JSON file per record), or a directory holding such zips: OSV's bucket
layout `<ECOSYSTEM>/all.zip` (as `gsutil cp -r gs://osv-vulnerabilities/Debian .` leaves it) or
a flat directory of `<ECOSYSTEM>.zip` / `<ECOSYSTEM>-all.zip` files.

Records are yielded one at a time, never collected, so a 1 GiB zip costs one record of memory.
Every record says which zip's ecosystem it came from (`source`), for per-ecosystem counts.
Anything unreadable (a file too large, a broken zip, an I/O error) is yielded as a `Problem` and
reading goes on; parsing the JSON is the importer's job.

Zips are untrusted input, so every size is bounded before it costs memory: the central directory
(its entry count and size, read from the end record before `zipfile` loads it), each member
(`max_record`, however large its header claims it is not) and the bytes decompressed from one
zip in all (`max_zip_bytes`: entries that share one deflate stream would otherwise decompress
the same bomb again and again).
"""

from __future__ import annotations

import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# No real OSV record comes near this (the largest are a few hundred KiB).
MAX_RECORD = 10 * 1024 * 1024
# OSV's largest ecosystem zip holds well under 200,000 records; its directory a few tens of MiB.
MAX_ENTRIES = 1_000_000
MAX_DIRECTORY = 256 * 1024 * 1024
# Decompressed from one zip in all: OSV's whole data set is a few GiB uncompressed.
MAX_ZIP_BYTES = 8 * 1024 * 1024 * 1024
_END = b"PK\x05\x06"  # end of central directory record
_END64_LOCATOR = b"PK\x06\x07"
_END64 = b"PK\x06\x06"
_TAIL = 22 + 65_535  # the end record and the longest comment a zip may have
# "Debian-all.zip", "Debian_all.zip", "Debian.zip" name the ecosystem Debian.
_FLAT = re.compile(r"(.+?)(?:[-_]all)?\.zip", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class RawRecord:
    origin: str  # where it came from: a path, or "archive.zip:entry.json"
    data: bytes
    source: str | None = None  # the ecosystem its zip is published for, when known


@dataclass(frozen=True, slots=True)
class Problem:
    origin: str
    reason: str
    source: str | None = None


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """The bounds on one zip (module docstring)."""

    max_record: int = MAX_RECORD
    max_entries: int = MAX_ENTRIES
    max_directory: int = MAX_DIRECTORY
    max_zip_bytes: int = MAX_ZIP_BYTES


def read_records(
    path: Path, max_record: int = MAX_RECORD, limits: ZipLimits | None = None
) -> Iterator[RawRecord | Problem]:
    """Every record under `path`, in a stable order (sorted names); see the module docstring."""
    limits = limits or ZipLimits(max_record=max_record)
    if path.is_dir():
        # Sorted, so repeated imports read in the same order and report problems the same way.
        for child in sorted(path.rglob("*")):
            if child.is_file() and child.suffix.lower() == ".json":
                yield _read_file(child, limits.max_record)
            elif child.is_file() and child.suffix.lower() == ".zip":
                yield from read_zip(child, limits, zip_ecosystem(child))
    elif path.suffix.lower() == ".zip":
        yield from read_zip(path, limits, zip_ecosystem(path))
    elif path.is_file():
        yield _read_file(path, limits.max_record)
    else:
        yield Problem(str(path), "no such file or directory")


def zip_ecosystem(path: Path) -> str:
    """The ecosystem a zip is published for: its folder's name for OSV's `<ECOSYSTEM>/all.zip`,
    else its own name without `.zip` (and a `-all`/`_all` suffix)."""
    if path.name.lower() == "all.zip" and path.parent.name:
        return path.parent.name
    found = _FLAT.fullmatch(path.name)
    return found[1] if found else path.stem


def _read_file(path: Path, max_record: int) -> RawRecord | Problem:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_record + 1)
    except OSError as exc:
        return Problem(str(path), f"cannot read: {exc.strerror or exc}")
    if len(data) > max_record:
        return Problem(str(path), f"larger than {max_record} bytes")
    return RawRecord(str(path), data)


def directory_size(path: Path) -> tuple[int, int] | str:
    """(entries, central directory bytes) from a zip's end record (zip64 too), or why the file
    is not a zip we can size. Read before `zipfile` loads the directory into memory."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            start = max(0, size - _TAIL)
            handle.seek(start)
            tail = handle.read()
            at = tail.rfind(_END)
            if at < 0 or len(tail) - at < 22:
                return "no end of central directory record"
            entries, directory = struct.unpack_from("<HI", tail, at + 10)
            if entries != 0xFFFF and directory != 0xFFFFFFFF:
                return entries, directory
            # Zip64: the locator sits just before the end record and points at the zip64 one.
            locator = at - 20
            if locator < 0 or tail[locator : locator + 4] != _END64_LOCATOR:
                return "a zip64 end record without its locator"
            (offset,) = struct.unpack_from("<Q", tail, locator + 8)
            if offset > size - 56:
                return "a zip64 end record out of the file"
            handle.seek(offset)
            record = handle.read(56)
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if len(record) < 56 or record[:4] != _END64:
        return "a broken zip64 end record"
    entries64, directory64 = struct.unpack_from("<QQ", record, 32)
    return entries64, directory64


def read_zip(
    path: Path, limits: ZipLimits, source: str | None = None
) -> Iterator[RawRecord | Problem]:
    """The records of one zip, within `limits`; each tagged with `source`."""
    sized = directory_size(path)
    if isinstance(sized, str):
        yield Problem(str(path), f"not a readable zip: {sized}", source)
        return
    entries, directory = sized
    if entries > limits.max_entries or directory > limits.max_directory:
        yield Problem(
            str(path),
            f"its directory lists {entries} entries in {directory} bytes, more than"
            f" {limits.max_entries} entries or {limits.max_directory} bytes",
            source,
        )
        return
    try:
        archive = zipfile.ZipFile(path)
    except (
        OSError,
        zipfile.BadZipFile,
        ValueError,
        EOFError,
        struct.error,
        NotImplementedError,  # a directory entry asking for a newer zip version
        OverflowError,
    ) as exc:
        yield Problem(str(path), f"not a readable zip: {exc}", source)
        return
    budget = limits.max_zip_bytes
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.lower().endswith(".json"):
                continue
            origin = f"{path}:{info.filename}"
            if info.file_size > limits.max_record:
                yield Problem(origin, f"larger than {limits.max_record} bytes", source)
                continue
            found = _member(archive, info, min(limits.max_record, budget))
            if isinstance(found, str):
                yield Problem(origin, found, source)
                continue
            if len(found) > budget:
                yield Problem(
                    str(path),
                    f"stopped: more than {limits.max_zip_bytes} bytes decompressed from it",
                    source,
                )
                return
            budget -= len(found)
            if len(found) > limits.max_record:
                yield Problem(origin, f"larger than {limits.max_record} bytes", source)
                continue
            yield RawRecord(origin, found, source)


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, most: int) -> bytes | str:
    """At most `most` + 1 bytes of a member (one past: the caller sees it is too long), or why
    it cannot be read."""
    try:
        with archive.open(info) as member:
            # The declared size can lie: read at most one byte past the limit.
            return member.read(most + 1)
    except (
        OSError,
        zipfile.BadZipFile,
        zlib.error,
        RuntimeError,
        NotImplementedError,
        EOFError,
        ValueError,
        struct.error,
        OverflowError,
    ) as exc:
        # RuntimeError: encrypted; NotImplementedError: unknown compression method;
        # the others: corrupt or truncated data.
        return f"cannot read: {exc}"
