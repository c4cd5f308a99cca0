"""The Berkeley DB `Packages` reader, on databases Berkeley DB itself writes at test time from
headers the real rpm installed, checked against rpm's own reading of the same files."""

from __future__ import annotations

import hashlib
import io
import struct
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan.analysis import Analyzers, LayerAnalysis, analyze_layer
from seawall.scan.assemble import assemble
from seawall.scan.inventory import Package, rpm_bdb
from seawall.scan.inventory.osrelease import Distro
from seawall.scan.inventory.rpm import is_rpmdb, parse_rpmdb
from seawall.scan.layers import Limits
from seawall.scan.malware import MalwareScanner
from seawall.scan.matching import VulnIndex
from seawall.scan.osv import parse_record
from seawall.scan.owners import Owner, find_owners
from seawall.scan.secrets import SecretScanner
from tests.support.fuzz import FUZZ
from tests.support.images import tar_bytes
from tests.support.rpmdbs import BIG_FILE, SqliteDb, build_sqlite_db, listing, write_bdb

RHEL_8 = Distro("rhel", "8.9")
DB_PATH = "var/lib/rpm/Packages"
UBI8_OS_RELEASE = b"""\
NAME="Red Hat Enterprise Linux"
VERSION="8.9 (Ootpa)"
ID="rhel"
ID_LIKE="fedora"
VERSION_ID="8.9"
PLATFORM_ID="platform:el8"
PRETTY_NAME="Red Hat Enterprise Linux 8.9 (Ootpa)"
CPE_NAME="cpe:/o:redhat:enterprise_linux:8::baseos"
"""


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> SqliteDb:
    return build_sqlite_db(tmp_path_factory.mktemp("rpm"))


@pytest.fixture(scope="module")
def bdbs(tmp_path_factory: pytest.TempPathFactory, sqlite_db: SqliteDb) -> dict[str, Path]:
    """--dbpath directories holding a `Packages` per page size and byte order."""
    root = tmp_path_factory.mktemp("bdb")
    return {
        f"{size}-{order}": write_bdb(sqlite_db, root / f"{size}-{order}", size, order == "be")
        for size in (512, 4096)
        for order in ("le", "be")
    }


def _got(packages: list[Package]) -> set[tuple[str, str, str | None, str | None, str]]:
    return {(p.name, p.version, p.source_name, p.source_version, _arch(p.purl)) for p in packages}


def _arch(purl: str) -> str:
    return dict(pair.split("=", 1) for pair in purl.partition("?")[2].split("&"))["arch"]


@pytest.mark.parametrize("variant", ["512-le", "512-be", "4096-le", "4096-be"])
def test_matches_rpms_own_reading(variant: str, bdbs: dict[str, Path], sqlite_db: SqliteDb) -> None:
    dbpath = bdbs[variant]
    expected = listing(dbpath, "bdb_ro")
    assert len(expected) == 4
    assert expected == listing(sqlite_db.dbpath, "sqlite")
    data = (dbpath / "Packages").read_bytes()
    # Byte for byte the headers rpm stored, in install order; the big one spans many pages.
    blobs = rpm_bdb.header_blobs(data)
    assert blobs == [blob for _, blob in sqlite_db.blobs]
    assert max(len(blob) for blob in blobs) > 10 * int(variant.split("-")[0])
    packages = parse_rpmdb(data, "/" + DB_PATH, RHEL_8)
    assert _got(packages) == expected
    assert {p.ecosystem for p in packages} == {"Red Hat"}
    by_name = {p.name: p for p in packages}
    assert by_name["hello"].version == "2:1.2-3.el8"
    assert by_name["hello"].purl == (
        "pkg:rpm/rhel/hello@1.2-3.el8?arch=noarch&distro=rhel-8.9&epoch=2"
    )
    assert by_name["libworld"].source_name == "world"


def test_file_owners_come_from_bdb_headers(bdbs: dict[str, Path]) -> None:
    data = (bdbs["512-be"] / "Packages").read_bytes()
    digest = hashlib.sha256(b"7\n").hexdigest()  # the file holds its number
    assert find_owners({BIG_FILE, "usr/share/none"}, [], [data]) == {
        BIG_FILE: [Owner("bigfiles", "rpm", "sha256", digest)]
    }


def _page_with(data: bytes, page_size: int, kind: int) -> int:
    """The number of the first page of type `kind`."""
    for number in range(1, len(data) // page_size):
        if data[number * page_size + 25] == kind:
            return number
    raise AssertionError(f"no page of type {kind}")


def _set_next(data: bytearray, page_size: int, number: int, target: int) -> None:
    struct.pack_into("<I", data, number * page_size + 16, target)


def test_cycles_and_misplaced_pages_end_the_chain(bdbs: dict[str, Path]) -> None:
    data = (bdbs["512-le"] / "Packages").read_bytes()
    names = {p.name for p in parse_rpmdb(data, DB_PATH)}
    # An overflow page that chains to itself: the item spanning it is dropped, nothing hangs.
    looped = bytearray(data)
    overflow = _page_with(data, 512, 7)
    _set_next(looped, 512, overflow, overflow)
    start = time.monotonic()
    survivors = {p.name for p in parse_rpmdb(bytes(looped), DB_PATH)}
    assert time.monotonic() - start < 1
    assert survivors < names
    # A bucket page that chains back to itself.
    looped = bytearray(data)
    bucket = _page_with(data, 512, 13)
    _set_next(looped, 512, bucket, bucket)
    assert {p.name for p in parse_rpmdb(bytes(looped), DB_PATH)} <= names
    # A page whose own number is wrong is not followed.
    moved = bytearray(data)
    struct.pack_into("<I", moved, overflow * 512 + 8, overflow + 1)
    assert {p.name for p in parse_rpmdb(bytes(moved), DB_PATH)} < names


def test_not_a_database_gives_nothing(
    bdbs: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = (bdbs["4096-le"] / "Packages").read_bytes()
    assert parse_rpmdb(b"", DB_PATH) == []
    assert parse_rpmdb(b"\0" * 8192, DB_PATH) == []
    assert parse_rpmdb(data[:511], DB_PATH) == []
    encrypted = bytearray(data)
    encrypted[24] = 1
    assert parse_rpmdb(bytes(encrypted), DB_PATH) == []
    odd_pages = bytearray(data)
    struct.pack_into("<I", odd_pages, 20, 1000)
    assert parse_rpmdb(bytes(odd_pages), DB_PATH) == []
    many_buckets = bytearray(data)
    struct.pack_into("<I", many_buckets, 72, 0xFFFFFFFF)
    assert parse_rpmdb(bytes(many_buckets), DB_PATH) == []
    assert len(parse_rpmdb(data, DB_PATH)) == 4
    monkeypatch.setattr(rpm_bdb, "MAX_DB_BYTES", len(data) - 1)
    assert parse_rpmdb(data, DB_PATH) == []


def test_paths() -> None:
    assert is_rpmdb("var/lib/rpm/Packages")
    assert is_rpmdb("/usr/lib/sysimage/rpm/Packages")
    assert is_rpmdb("usr/lib/sysimage/rpm/Packages.db")
    assert is_rpmdb("var/lib/rpm/rpmdb.sqlite")
    assert not is_rpmdb("var/lib/rpm/Name")
    assert not is_rpmdb("opt/var/lib/rpm/Packages")


@settings(FUZZ, max_examples=100)
@given(st.data())
def test_never_raises_on_mutated_real_databases(bdbs: dict[str, Path], data: st.DataObject) -> None:
    variant = data.draw(st.sampled_from(sorted(bdbs)))
    image = bytearray((bdbs[variant] / "Packages").read_bytes())
    for _ in range(data.draw(st.integers(1, 32))):
        # Bias towards the page headers and item offsets, where the structure lives.
        page = data.draw(st.integers(0, len(image) // 512 - 1))
        position = page * 512 + data.draw(st.integers(0, 63))
        image[position] = data.draw(st.integers(0, 255))
    start = time.monotonic()
    rpm_bdb.header_blobs(bytes(image))
    parse_rpmdb(bytes(image), DB_PATH, RHEL_8)
    assert time.monotonic() - start < 2


@FUZZ
@given(
    st.binary(min_size=512, max_size=4096),
    st.sampled_from([b"\x61\x15\x06\x00", b"\x00\x06\x15\x61"]),
)
def test_never_raises_on_random_pages(body: bytes, magic: bytes) -> None:
    image = bytearray(body)
    image[12:16] = magic
    rpm_bdb.header_blobs(bytes(image))


def _analyzed(files: dict[str, bytes]) -> LayerAnalysis:
    analyzers = Analyzers(Limits(), SecretScanner(), MalwareScanner([], []))
    analysis = analyze_layer(io.BytesIO(tar_bytes(files)), analyzers)
    return LayerAnalysis.from_bytes(analysis.to_bytes())


def test_an_image_with_a_bdb_rpmdb_is_inventoried_and_matched(bdbs: dict[str, Path]) -> None:
    layer = _analyzed(
        {
            "etc/os-release": UBI8_OS_RELEASE,
            DB_PATH: (bdbs["4096-le"] / "Packages").read_bytes(),
        }
    )
    inventory = assemble([("sha256:base", layer)], Limits())
    assert inventory.distro is not None and inventory.distro.id == "rhel"
    rpms = {p.name: p for p in inventory.packages if p.path == DB_PATH}
    assert set(rpms) == {"hello", "world", "libworld", "bigfiles"}
    assert {p.ecosystem for p in rpms.values()} == {"Red Hat"}
    assert inventory.package_layers[DB_PATH] == "sha256:base"
    advisory = parse_record(
        {
            "id": "RHSA-2024:0001",
            "modified": "2024-01-01T00:00:00Z",
            "affected": [
                {
                    "package": {"ecosystem": "Red Hat:enterprise_linux:8::baseos", "name": "hello"},
                    "ranges": [
                        {
                            "type": "ECOSYSTEM",
                            "events": [{"introduced": "0"}, {"fixed": "2:1.2-4.el8"}],
                        }
                    ],
                }
            ],
        }
    )
    (found,) = VulnIndex([advisory]).match(inventory.packages, inventory.distro)
    assert (found.advisory_id, found.package, found.ecosystem, found.fixed_version) == (
        "RHSA-2024:0001",
        "hello",
        "Red Hat:8",
        "2:1.2-4.el8",
    )
