"""Reading OSV records from disk: one `.json` file, a directory of them (searched recursively),
an OSV `all.zip` (one JSON file per record), or a directory holding such zips.

Records are yielded one at a time, never collected, so a 1 GiB zip costs one record of memory.
Anything unreadable (a file too large, a broken zip, an I/O error) is yielded as a `Problem` and
reading goes on; parsing the JSON is the importer's job.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# No real OSV record comes near this (the largest are a few hundred KiB).
MAX_RECORD = 10 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RawRecord:
    origin: str  # where it came from: a path, or "archive.zip:entry.json"
    data: bytes


@dataclass(frozen=True, slots=True)
class Problem:
    origin: str
    reason: str


def read_records(path: Path, max_record: int = MAX_RECORD) -> Iterator[RawRecord | Problem]:
    """Every record under `path`, in a stable order (sorted names); see the module docstring."""
    if path.is_dir():
        # Sorted, so repeated imports read in the same order and report problems the same way.
        for child in sorted(path.rglob("*")):
            if child.is_file() and child.suffix.lower() == ".json":
                yield _read_file(child, max_record)
            elif child.is_file() and child.suffix.lower() == ".zip":
                yield from _read_zip(child, max_record)
    elif path.suffix.lower() == ".zip":
        yield from _read_zip(path, max_record)
    elif path.is_file():
        yield _read_file(path, max_record)
    else:
        yield Problem(str(path), "no such file or directory")


def _read_file(path: Path, max_record: int) -> RawRecord | Problem:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_record + 1)
    except OSError as exc:
        return Problem(str(path), f"cannot read: {exc.strerror or exc}")
    if len(data) > max_record:
        return Problem(str(path), f"larger than {max_record} bytes")
    return RawRecord(str(path), data)


def _read_zip(path: Path, max_record: int) -> Iterator[RawRecord | Problem]:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        yield Problem(str(path), f"not a readable zip: {exc}")
        return
    with archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.lower().endswith(".json"):
                continue
            origin = f"{path}:{info.filename}"
            if info.file_size > max_record:
                yield Problem(origin, f"larger than {max_record} bytes")
                continue
            try:
                with archive.open(info) as member:
                    # The declared size can lie: read at most one byte past the limit.
                    data = member.read(max_record + 1)
            except (
                OSError,
                zipfile.BadZipFile,
                zlib.error,
                RuntimeError,
                NotImplementedError,
                EOFError,
                ValueError,
            ) as exc:
                # RuntimeError: encrypted; NotImplementedError: unknown compression method;
                # the others: corrupt or truncated data.
                yield Problem(origin, f"cannot read: {exc}")
                continue
            if len(data) > max_record:
                yield Problem(origin, f"larger than {max_record} bytes")
                continue
            yield RawRecord(origin, data)
