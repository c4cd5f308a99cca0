"""Reading OSV zips as untrusted input: the ecosystem a zip is published for, its central
directory sized before it is loaded (zip64 too), members and whole zips bounded, and arbitrary
bytes never raising."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan.osv_files import (
    Problem,
    RawRecord,
    ZipLimits,
    directory_size,
    read_records,
    read_zip,
    zip_ecosystem,
)
from tests.support.fuzz import FUZZ


def record(identifier: str, padding: int = 0) -> bytes:
    document = {"id": identifier, "modified": "2025-01-01T00:00:00Z", "x": "a" * padding}
    return json.dumps(document).encode()


def make_zip(path: Path, members: dict[str, bytes], zip64: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as out:
        for name, data in members.items():
            with out.open(name, "w", force_zip64=zip64) as member:
                member.write(data)
    return path


@pytest.mark.parametrize(
    ("path", "ecosystem"),
    [
        ("osv/Debian/all.zip", "Debian"),
        ("osv/crates.io/all.zip", "crates.io"),
        ("osv/Ubuntu-all.zip", "Ubuntu"),
        ("osv/PyPI_all.zip", "PyPI"),
        ("osv/Maven.zip", "Maven"),
        ("all.zip", "all"),
    ],
)
def test_the_ecosystem_of_a_zip(path: str, ecosystem: str) -> None:
    assert zip_ecosystem(Path(path)) == ecosystem


def test_bucket_layout_and_flat_zips_tag_every_record(tmp_path: Path) -> None:
    make_zip(tmp_path / "osv" / "Debian" / "all.zip", {"DEBIAN-1.json": record("DEBIAN-1")})
    make_zip(tmp_path / "osv" / "npm-all.zip", {"GHSA-1.json": record("GHSA-1")})
    (tmp_path / "osv" / "loose.json").write_bytes(record("LOOSE-1"))
    found = list(read_records(tmp_path / "osv"))
    assert all(isinstance(item, RawRecord) for item in found)
    assert sorted((item.source or "-", item.origin.rsplit("/", 1)[-1]) for item in found) == [
        ("-", "loose.json"),
        ("Debian", "all.zip:DEBIAN-1.json"),
        ("npm", "npm-all.zip:GHSA-1.json"),
    ]


def test_directory_size_reads_the_end_record(tmp_path: Path) -> None:
    members = {f"R-{i}.json": record(f"R-{i}") for i in range(5)}
    plain = make_zip(tmp_path / "plain.zip", members)
    assert directory_size(plain) == (5, pytest.approx(5 * 56, abs=5 * 30))  # type: ignore[comparison-overlap]
    assert isinstance(directory_size(tmp_path / "missing.zip"), str)
    (tmp_path / "junk.zip").write_bytes(b"PK" + b"\0" * 100)
    assert directory_size(tmp_path / "junk.zip") == "no end of central directory record"


def test_directory_size_reads_a_zip64_end_record(tmp_path: Path) -> None:
    # More than 65,535 entries needs the zip64 end record: the classic one says 0xFFFF.
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as out:
        for i in range(65_540):
            out.writestr(f"{i}.txt", b"")
    sized = directory_size(path)
    assert isinstance(sized, tuple) and sized[0] == 65_540


def test_too_many_entries_are_refused_before_loading(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "Go" / "all.zip", {f"G-{i}.json": record(f"G-{i}") for i in range(4)}
    )
    (problem,) = read_zip(path, ZipLimits(max_entries=3), "Go")
    assert isinstance(problem, Problem) and problem.source == "Go"
    assert "lists 4 entries" in problem.reason
    (small_directory,) = read_zip(path, ZipLimits(max_directory=10), "Go")
    assert isinstance(small_directory, Problem)


def test_a_member_larger_than_it_claims_is_refused(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "a.zip", {"big.json": record("BIG", 5000), "ok.json": record("OK")})
    # Make the header lie: the directory says the big member is tiny.
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("big.json")
    size = info.file_size.to_bytes(4, "little")
    at = data.rfind(b"big.json") - 46 + 24  # its central directory entry's uncompressed size
    assert data[at : at + 4] == size
    data[at : at + 4] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    found = list(read_zip(path, ZipLimits(max_record=1000)))
    # zipfile stops at the size the directory claims, then finds the checksum wrong: the
    # member is refused either way, and no more than the limit is ever decompressed.
    assert isinstance(found[0], Problem)
    assert "larger than 1000 bytes" in found[0].reason or "Bad CRC-32" in found[0].reason
    assert isinstance(found[1], RawRecord) and found[1].data == record("OK")


def test_a_zip_bomb_stops_at_the_zip_budget(tmp_path: Path) -> None:
    members = {f"B-{i}.json": b"[" + b" " * 50_000 + b"]" for i in range(20)}
    path = make_zip(tmp_path / "bomb.zip", members)
    assert path.stat().st_size < 20 * 1000  # it compresses a hundredfold
    found = list(read_zip(path, ZipLimits(max_record=60_000, max_zip_bytes=200_000)))
    records = [item for item in found if isinstance(item, RawRecord)]
    assert len(records) == 3  # 3 x 50,002 bytes fit in 200,000; the fourth does not
    assert isinstance(found[-1], Problem) and "stopped: more than 200000 bytes" in found[-1].reason


@settings(FUZZ)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_raise(tmp_path_factory: pytest.TempPathFactory, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "x.zip"
    path.write_bytes(data)
    for item in read_records(path, limits=ZipLimits(max_record=1000, max_zip_bytes=5000)):
        assert isinstance(item, RawRecord | Problem)


@settings(FUZZ)
@given(st.data())
def test_a_damaged_real_zip_never_raises(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as out:
        for i in range(3):
            out.writestr(f"R-{i}.json", record(f"R-{i}", 300))
    damaged = bytearray(raw.getvalue())
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(damaged) - 1))
        damaged[at] = data.draw(st.integers(0, 255))
    path = tmp_path_factory.mktemp("fuzz") / "y.zip"
    path.write_bytes(bytes(damaged))
    items = list(read_records(path, limits=ZipLimits(max_record=1000, max_zip_bytes=5000)))
    assert all(isinstance(item, RawRecord | Problem) for item in items)
