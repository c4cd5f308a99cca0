"""The ndb `Packages.db` reader. Debian's rpm has no ndb backend (`_db_backend ndb` is refused
as invalid), so the database is laid out at test time by `tests.support.rpmdbs.write_ndb` as
rpm's ndb backend lays it out, around the header blobs the real rpm installed into a sqlite
database, and the result is compared with rpm's listing of that sqlite database."""

from __future__ import annotations

import io
import struct
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan.analysis import Analyzers, LayerAnalysis, analyze_layer
from seawall.scan.assemble import assemble
from seawall.scan.inventory import rpm_ndb
from seawall.scan.inventory.osrelease import Distro
from seawall.scan.inventory.rpm import parse_rpm_header, parse_rpmdb
from seawall.scan.layers import Limits
from seawall.scan.malware import MalwareScanner
from seawall.scan.matching import VulnIndex
from seawall.scan.osv import parse_record
from seawall.scan.secrets import SecretScanner
from tests.support.fuzz import FUZZ
from tests.support.images import tar_bytes
from tests.support.rpmdbs import SqliteDb, build_sqlite_db, header, listing, write_ndb

SLES = Distro("sles", "15.5", "SUSE Linux Enterprise Server 15 SP5")
DB_PATH = "usr/lib/sysimage/rpm/Packages.db"
SLES_OS_RELEASE = b"""\
NAME="SLES"
VERSION="15-SP5"
VERSION_ID="15.5"
PRETTY_NAME="SUSE Linux Enterprise Server 15 SP5"
ID="sles"
ID_LIKE="suse"
ANSI_COLOR="0;32"
CPE_NAME="cpe:/o:suse:sles:15:sp5"
DOCUMENTATION_URL="https://documentation.suse.com/"
"""


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory) -> SqliteDb:
    return build_sqlite_db(tmp_path_factory.mktemp("rpm"))


@pytest.fixture(scope="module")
def ndb(sqlite_db: SqliteDb) -> bytes:
    return write_ndb(sqlite_db.blobs)


def test_matches_rpms_listing(sqlite_db: SqliteDb, ndb: bytes) -> None:
    expected = listing(sqlite_db.dbpath, "sqlite")
    assert len(expected) == 4
    assert rpm_ndb.header_blobs(ndb) == [blob for _, blob in sqlite_db.blobs]
    packages = parse_rpmdb(ndb, "/" + DB_PATH, SLES)
    got = {
        (p.name, p.version, p.source_name, p.source_version, p.purl.split("arch=")[1][:6])
        for p in packages
    }
    assert got == expected
    assert {p.ecosystem for p in packages} == {"SUSE"}
    assert {p.path for p in packages} == {DB_PATH}


def test_many_slot_pages_and_install_order() -> None:
    # 600 packages need three slot pages (254 slots on the first, 256 on the next ones).
    blobs = [(index, header(f"pkg{index}", "1.0", "1")) for index in range(600, 0, -1)]
    data = write_ndb(blobs)
    assert struct.unpack_from("<I", data, 12)[0] == 3
    names = [parse_rpm_header(blob)[1000] for blob in rpm_ndb.header_blobs(data)]
    assert names == [f"pkg{index}" for index in range(1, 601)]


def _slot(data: bytes, index: int) -> int:
    """The file offset of the slot of package `index`."""
    for position in range(32, 4096, 16):
        if struct.unpack_from("<4sI", data, position) == (b"Slot", index):
            return position
    raise AssertionError(index)


def test_slots_that_disagree_with_their_blobs_are_dropped() -> None:
    blobs = [(index, header(f"pkg{index}", "1.0", "1")) for index in range(1, 7)]
    data = bytearray(write_ndb(blobs))
    # 1: freed slot. 2: points into the slot pages. 3: blob names another package.
    # 4: blob's tail magic broken. 5: block count that the blob length does not fill.
    struct.pack_into("<II", data, _slot(data, 1) + 8, 0, 0)
    struct.pack_into("<I", data, _slot(data, 2) + 8, 1)
    offset3 = struct.unpack_from("<I", data, _slot(data, 3) + 8)[0] * 16
    struct.pack_into("<I", data, offset3 + 4, 99)
    offset4, count4 = struct.unpack_from("<II", data, _slot(data, 4) + 8)
    data[(offset4 + count4) * 16 - 1] ^= 0xFF
    struct.pack_into("<I", data, _slot(data, 5) + 12, count4 + 1)
    names = [parse_rpm_header(blob)[1000] for blob in rpm_ndb.header_blobs(bytes(data))]
    assert names == ["pkg6"]
    # A file cut inside the last blob loses that blob only.
    whole = write_ndb(blobs)
    assert len(rpm_ndb.header_blobs(whole[:-20])) == 5


def test_not_a_database_gives_nothing(ndb: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_rpmdb(b"", DB_PATH) == []
    assert parse_rpmdb(b"RpmP" + b"\0" * 5000, DB_PATH) == []
    assert parse_rpmdb(ndb[:4095], DB_PATH) == []
    for field, value in ((4, 1), (12, 0), (12, 100_000), (12, 1000)):
        bad = bytearray(ndb)
        struct.pack_into("<I", bad, field, value)
        assert parse_rpmdb(bytes(bad), DB_PATH) == []
    assert len(parse_rpmdb(ndb, DB_PATH)) == 4
    monkeypatch.setattr(rpm_ndb, "MAX_DB_BYTES", len(ndb) - 1)
    assert parse_rpmdb(ndb, DB_PATH) == []


@settings(FUZZ, max_examples=100)
@given(st.data())
def test_never_raises_on_mutated_real_databases(ndb: bytes, data: st.DataObject) -> None:
    image = bytearray(ndb)
    for _ in range(data.draw(st.integers(1, 32))):
        # Half the flips land in the header and slots, where the structure lives.
        end = 4096 if data.draw(st.booleans()) else len(image)
        image[data.draw(st.integers(0, end - 1))] = data.draw(st.integers(0, 255))
    start = time.monotonic()
    parse_rpmdb(bytes(image), DB_PATH, SLES)
    assert time.monotonic() - start < 2


@FUZZ
@given(st.binary(min_size=4096, max_size=8192))
def test_never_raises_on_random_slot_pages(body: bytes) -> None:
    image = bytearray(body)
    struct.pack_into("<4sIII", image, 0, b"RpmP", 0, 1, 1)
    rpm_ndb.header_blobs(bytes(image))


def test_an_image_with_an_ndb_rpmdb_is_inventoried_and_matched(ndb: bytes) -> None:
    analyzers = Analyzers(Limits(), SecretScanner(), MalwareScanner([], []))
    layer = analyze_layer(
        io.BytesIO(tar_bytes({"etc/os-release": SLES_OS_RELEASE, DB_PATH: ndb})), analyzers
    )
    layer = LayerAnalysis.from_bytes(layer.to_bytes())
    inventory = assemble([("sha256:base", layer)], Limits())
    rpms = {p.name: p for p in inventory.packages if p.path == DB_PATH}
    assert set(rpms) == {"hello", "world", "libworld", "bigfiles"}
    assert {p.ecosystem for p in rpms.values()} == {"SUSE"}
    advisory = parse_record(
        {
            "id": "SUSE-SU-2024:0001-1",
            "modified": "2024-01-01T00:00:00Z",
            "affected": [
                {
                    "package": {
                        "ecosystem": "SUSE:Linux Enterprise Server 15 SP5",
                        "name": "libworld",
                    },
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.9.2-1"}]}
                    ],
                }
            ],
        }
    )
    (found,) = VulnIndex([advisory]).match(inventory.packages, inventory.distro)
    assert (found.package, found.version, found.ecosystem) == (
        "libworld",
        "0.9.1-1",
        "SUSE:Linux Enterprise Server 15 SP5",
    )
