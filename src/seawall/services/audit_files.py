"""The audit archive's file format: `audit-<first>-<last>.jsonl.gz` (one row per line as canonical
JSON, with its `seq` and `hash`) and `<file>.manifest.json` beside it (the hash the first row
chains from, the first and last hashes, the file's SHA-256). Writing one durably, and proving
one on its own, with no database (`verify_file`).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, BinaryIO

from seawall.domain.audit import GENESIS, Break, StoredEvent, canonical_json, verify_chain
from seawall.storage.filesystem import fsync_directory

FORMAT = "seawall-audit-archive/1"
READ_CHUNK = 1024 * 1024


class ArchiveUnreadable(Exception):
    """An archive or its manifest cannot be read as one."""


@dataclass(frozen=True, slots=True)
class Verification:
    """What a verification proved: the rows that chain, and where the proof stops if it does."""

    rows: int
    first_seq: int | None
    last_seq: int | None
    last_hash: str
    broken: Break | None
    notes: tuple[str, ...] = ()
    previous_hash: str = GENESIS  # what the first row chains from

    @property
    def ok(self) -> bool:
        return self.broken is None

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


@dataclass(frozen=True, slots=True)
class Manifest:
    first_seq: int
    last_seq: int
    rows: int
    previous_hash: str
    first_hash: str
    last_hash: str
    file_sha256: str
    created_at: str

    def to_json(self) -> bytes:
        return (canonical_json({"format": FORMAT, **asdict(self)}) + "\n").encode()

    @classmethod
    def read(cls, archive: Path) -> Manifest:
        path = manifest_path(archive)
        try:
            data = json.loads(path.read_bytes())
            if data.get("format") != FORMAT:
                raise ArchiveUnreadable(f"{path}: not a {FORMAT} manifest")
            return cls(
                first_seq=int(data["first_seq"]),
                last_seq=int(data["last_seq"]),
                rows=int(data["rows"]),
                previous_hash=str(data["previous_hash"]),
                first_hash=str(data["first_hash"]),
                last_hash=str(data["last_hash"]),
                file_sha256=str(data["file_sha256"]),
                created_at=str(data["created_at"]),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ArchiveUnreadable(f"{path}: {exc}") from None


def manifest_path(archive: Path) -> Path:
    return archive.with_name(archive.name + ".manifest.json")


def verify_file(path: Path) -> Verification:
    """Prove an archive file against its manifest; raises ArchiveUnreadable when either
    cannot be read at all."""
    manifest = Manifest.read(path)
    bytes_match = _file_sha256(path) == manifest.file_sha256
    lines = ArchiveLines(path, manifest.first_seq)
    report = verify_chain(lines, manifest.previous_hash, manifest.first_seq)
    broken = report.broken or lines.broken
    last = manifest.first_seq + report.rows - 1
    if broken is None and last != manifest.last_seq:
        reason = (
            f"rows {last + 1}..{manifest.last_seq} are missing"
            if last < manifest.last_seq
            else f"rows {manifest.last_seq + 1}..{last} are beyond the manifest's last row"
        )
        broken = Break(min(last, manifest.last_seq) + 1, reason)
    elif broken is None and report.rows != manifest.rows:
        broken = Break(manifest.first_seq, f"the manifest counts {manifest.rows} rows")
    elif broken is None and report.last_hash != manifest.last_hash:
        broken = Break(last, "the last row's hash differs from the manifest's last_hash")
    elif broken is None and lines.first_hash != manifest.first_hash:
        broken = Break(manifest.first_seq, "the first row's hash differs from the manifest's")
    elif broken is None and not bytes_match:
        # The rows prove out, but this is not the file the manifest describes.
        broken = Break(manifest.first_seq, "the file's sha256 differs from its manifest's")
    return Verification(
        rows=report.rows,
        first_seq=manifest.first_seq if report.rows else None,
        last_seq=last if report.rows else None,
        last_hash=report.last_hash,
        broken=broken,
        notes=() if bytes_match else ("the file's sha256 differs from its manifest's",),
        previous_hash=manifest.previous_hash,
    )


class _HashingWriter:
    """What gzip writes to: the file, hashed on the way."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class ArchiveFile:
    """An archive being written: a temporary file in the target directory until `commit`
    fsyncs it and renames it into place."""

    def __init__(self, directory: Path, name: str) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.final = directory / name
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
        self.temp = Path(temp)
        self._raw = os.fdopen(fd, "wb")
        self._hashing = _HashingWriter(self._raw)
        # mtime 0: the same rows always make the same bytes.
        self._gzip = gzip.GzipFile(fileobj=self._hashing, mode="wb", compresslevel=6, mtime=0)

    def write(self, rows: Sequence[StoredEvent]) -> None:
        text = "".join(canonical_json(row.as_dict()) + "\n" for row in rows)
        self._gzip.write(text.encode("utf-8"))

    def commit(self) -> str:
        """Close, fsync and rename into place; the file's sha256."""
        self._gzip.close()
        self._raw.flush()
        os.fsync(self._raw.fileno())
        self._raw.close()
        self.temp.replace(self.final)
        fsync_directory(self.final.parent)
        return self._hashing.sha256.hexdigest()

    def abort(self) -> None:
        self._gzip.close()
        self._raw.close()
        self.temp.unlink(missing_ok=True)


class ArchiveLines:
    """The rows of an archive file, in order; a line that is not a row (or a file that is not
    gzip) stops the rows, and `broken` names its row."""

    def __init__(self, path: Path, first_seq: int) -> None:
        self.path = path
        self.first_seq = first_seq
        self.broken: Break | None = None
        self.first_hash = ""

    def __iter__(self) -> Iterator[StoredEvent]:
        seq = self.first_seq
        try:
            with gzip.open(self.path, "rb") as file:
                for line in file:
                    try:
                        row = StoredEvent.from_dict(json.loads(line.decode("utf-8")))
                    except (ValueError, KeyError, TypeError, AttributeError):
                        self.broken = Break(seq, f"line {seq - self.first_seq + 1} is not a row")
                        return
                    self.first_hash = self.first_hash or row.hash
                    yield row
                    seq += 1
        except (OSError, EOFError) as exc:  # gzip.BadGzipFile is an OSError
            self.broken = Break(seq, f"the file cannot be read from here on: {exc}")


def _file_sha256(path: Path) -> str:
    sha256 = hashlib.sha256()
    try:
        with path.open("rb") as file:
            while chunk := file.read(READ_CHUNK):
                sha256.update(chunk)
    except OSError as exc:
        raise ArchiveUnreadable(f"{path}: {exc}") from None
    return sha256.hexdigest()


def write_durably(path: Path, data: bytes) -> None:
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        Path(temp).replace(path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)
