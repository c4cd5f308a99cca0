"""rpm sqlite database parsing, checked against databases the real `rpm` builds at test time:
packages, and the digests of the files they ship."""

from __future__ import annotations

import hashlib
import io
import sqlite3
import struct
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan.analysis import Analyzers, LayerAnalysis, analyze_layer
from seawall.scan.assemble import assemble
from seawall.scan.inventory import rpm
from seawall.scan.inventory.osrelease import Distro
from seawall.scan.inventory.rpm import is_rpmdb_sqlite, parse_rpm_header, parse_rpmdb_sqlite
from seawall.scan.layers import Limits
from seawall.scan.malware import MalwareScanner
from seawall.scan.secrets import SecretScanner
from tests.support.fuzz import FUZZ
from tests.support.images import tar_bytes
from tests.support.rpmdbs import install_specs, listing, specs

ROCKY = Distro("rocky", "9.3")
DB_PATH = "var/lib/rpm/rpmdb.sqlite"


SPECS = specs("el9")


@pytest.fixture(scope="module")
def rpmdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real sqlite rpmdb with the SPECS packages installed (database only, no files)."""
    return install_specs(tmp_path_factory.mktemp("rpm"), SPECS)


def test_matches_rpm_query(rpmdb: Path) -> None:
    expected = listing(rpmdb, "sqlite")
    assert len(expected) == 3

    packages = parse_rpmdb_sqlite((rpmdb / "rpmdb.sqlite").read_bytes(), "/" + DB_PATH, ROCKY)
    got = {
        (p.name, p.version, p.source_name, p.source_version, _qualifiers(p.purl)["arch"])
        for p in packages
    }
    assert got == expected
    assert {p.ecosystem for p in packages} == {"Rocky Linux"}
    assert {p.path for p in packages} == {DB_PATH}
    by_name = {p.name: p for p in packages}
    assert by_name["hello"].version == "2:1.2-3.el9"
    assert (
        by_name["hello"].purl
        == "pkg:rpm/rocky/hello@1.2-3.el9?arch=noarch&distro=rocky-9.3&epoch=2"
    )
    assert by_name["libworld"].source_name == "world"
    assert by_name["libworld"].purl == "pkg:rpm/rocky/libworld@0.9.1-1?arch=noarch&distro=rocky-9.3"


def _qualifiers(purl: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in purl.partition("?")[2].split("&"))


def _header(entries: list[tuple[int, int, bytes, int]]) -> bytes:
    """An on-disk rpm header (as rpmdb stores it) from (tag, type, data, count) entries."""
    index, store = b"", b""
    for tag, type_, data, count in entries:
        if type_ == 4:
            store += b"\0" * (-len(store) % 4)  # rpm aligns INT32 data
        index += struct.pack(">IIII", tag, type_, len(store), count)
        store += data
    return struct.pack(">II", len(entries), len(store)) + index + store


def _package(name: str, version: str, release: str, epoch: int | None = None) -> bytes:
    entries = [
        (1000, 6, name.encode() + b"\0", 1),
        (1001, 6, version.encode() + b"\0", 1),
        (1002, 6, release.encode() + b"\0", 1),
        (1022, 6, b"x86_64\0", 1),
    ]
    if epoch is not None:
        entries.append((1003, 4, struct.pack(">I", epoch), 1))
    if name != "gpg-pubkey":
        entries.append((1044, 6, f"{name}-{version}-{release}.src.rpm\0".encode(), 1))
    return _header(entries)


def _database(blobs: list[bytes], *, wal: bool = True) -> bytes:
    """A sqlite database image with rpm's `Packages` table, in WAL mode like rpm leaves it."""
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB)")
    connection.executemany("INSERT INTO Packages (blob) VALUES (?)", [(b,) for b in blobs])
    connection.commit()
    image = bytearray(connection.serialize())
    connection.close()
    if wal:
        image[18] = image[19] = 2
    return bytes(image)


def test_synthetic_database_without_distro() -> None:
    data = _database(
        [
            _package("openssl-libs", "3.0.7", "27.el9", epoch=1),
            _package("gpg-pubkey", "fd431d51", "4ae0493b"),
            _package("bash", "5.1.8", "6.el9"),
        ]
    )
    packages = parse_rpmdb_sqlite(data, "usr/lib/sysimage/rpm/rpmdb.sqlite")
    assert [
        (p.ecosystem, p.name, p.version, p.source_name, p.source_version) for p in packages
    ] == [
        ("RPM", "openssl-libs", "1:3.0.7-27.el9", "openssl-libs", "1:3.0.7-27.el9"),
        ("RPM", "bash", "5.1.8-6.el9", "bash", "5.1.8-6.el9"),
    ]
    assert packages[1].purl == "pkg:rpm/bash@5.1.8-6.el9?arch=x86_64"


@pytest.mark.parametrize(
    ("distro_id", "ecosystem"),
    [
        ("rhel", "Red Hat"),
        ("almalinux", "AlmaLinux"),
        ("opensuse-leap", "openSUSE"),
        ("sles", "SUSE"),
        ("mageia", "Mageia"),
        ("fedora", "RPM"),
    ],
)
def test_ecosystem_from_distro(distro_id: str, ecosystem: str) -> None:
    data = _database([_package("bash", "5.1.8", "6.el9")], wal=False)
    (package,) = parse_rpmdb_sqlite(data, DB_PATH, Distro(distro_id, None))
    assert package.ecosystem == ecosystem
    assert package.purl.startswith(f"pkg:rpm/{distro_id}/bash@")


def test_bad_databases_give_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_rpmdb_sqlite(b"", DB_PATH) == []
    assert parse_rpmdb_sqlite(b"SQLite format 3\0" + b"\xff" * 4000, DB_PATH) == []
    assert parse_rpmdb_sqlite(b"\0" * 8192, DB_PATH) == []
    # `Packages` as a view (a crafted schema) is not read.
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE VIEW Packages AS SELECT 1 AS hnum, x'00' AS blob")
    assert parse_rpmdb_sqlite(connection.serialize(), DB_PATH) == []
    # A too-large file is refused before sqlite sees it.
    one = _database([_package("bash", "5.1.8", "6.el9")])
    assert len(parse_rpmdb_sqlite(one, DB_PATH)) == 1
    monkeypatch.setattr(rpm, "MAX_DB_BYTES", len(one) - 1)
    assert parse_rpmdb_sqlite(one, DB_PATH) == []


def test_malformed_headers_are_skipped_not_fatal() -> None:
    good = _package("bash", "5.1.8", "6.el9")
    truncated = good[: len(good) - 5]
    # NAME is last in the data store, and its NUL is missing.
    unterminated = _header([(1001, 6, b"5.8\0", 1), (1002, 6, b"1\0", 1), (1000, 6, b"zsh", 1)])
    out_of_range = struct.pack(">II", 1, 0) + struct.pack(">IIII", 1000, 6, 2**31, 1)
    data = _database([good, truncated, unterminated, out_of_range, b"", b"\xff" * 16])
    assert [p.name for p in parse_rpmdb_sqlite(data, DB_PATH)] == ["bash"]
    assert parse_rpm_header(struct.pack(">II", 0xFFFFFFFF, 0xFFFFFFFF)) == {}
    assert parse_rpm_header(unterminated) == {1001: "5.8", 1002: "1"}


def test_is_rpmdb_sqlite() -> None:
    assert is_rpmdb_sqlite("var/lib/rpm/rpmdb.sqlite")
    assert is_rpmdb_sqlite("/usr/lib/sysimage/rpm/rpmdb.sqlite")
    assert is_rpmdb_sqlite("./var/lib/rpm/rpmdb.sqlite")
    assert not is_rpmdb_sqlite("var/lib/rpm/Packages")
    assert not is_rpmdb_sqlite("var/lib/rpm/rpmdb.sqlite-wal")
    assert not is_rpmdb_sqlite("opt/var/lib/rpm/rpmdb.sqlite")


@FUZZ
@given(st.binary(max_size=2048))
def test_header_parser_never_raises_on_random_bytes(blob: bytes) -> None:
    start = time.monotonic()
    parse_rpm_header(blob)
    assert time.monotonic() - start < 1


SAMPLE = _package("openssl-libs", "3.0.7", "27.el9", epoch=1)


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(SAMPLE) - 1), st.integers(0, 255)), max_size=8))
def test_header_parser_never_raises_on_mutated_headers(flips: list[tuple[int, int]]) -> None:
    blob = bytearray(SAMPLE)
    for position, value in flips:
        blob[position] = value
    start = time.monotonic()
    tags = parse_rpm_header(bytes(blob))
    assert time.monotonic() - start < 1
    assert set(tags) <= {1000, 1001, 1002, 1003, 1022, 1044}


@settings(FUZZ, max_examples=50)
@given(st.data())
def test_database_parser_never_raises_on_mutated_real_db(rpmdb: Path, data: st.DataObject) -> None:
    image = bytearray((rpmdb / "rpmdb.sqlite").read_bytes())
    for _ in range(data.draw(st.integers(1, 16))):
        position = data.draw(st.integers(0, len(image) - 1))
        image[position] = data.draw(st.integers(0, 255))
    start = time.monotonic()
    parse_rpmdb_sqlite(bytes(image), DB_PATH, ROCKY)
    assert time.monotonic() - start < 2


# A package shipping a private key, as test suites and self-tests do; the key is made at test
# time so that no key sits in the repository.
KEY_SPEC = """\
Name: selftest-keys
Version: 1.0
Release: 1
Summary: ships a test key
License: MIT
BuildArch: noarch
%description
test
%install
mkdir -p %{{buildroot}}/usr/share/selftest
cp {source} %{{buildroot}}/usr/share/selftest/key.pem
%files
/usr/share/selftest/key.pem
"""
KEY_PATH = "usr/share/selftest/key.pem"


@pytest.fixture(scope="module")
def key_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """(an rpm sqlite database with the package installed, the key file it ships)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    root = tmp_path_factory.mktemp("rpm-key")
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (root / "key.pem").write_bytes(key)
    dbpath = install_specs(root, {"keys": KEY_SPEC.format(source=root / "key.pem")})
    return (dbpath / "rpmdb.sqlite").read_bytes(), key


def _analyzed(files: dict[str, bytes]) -> LayerAnalysis:
    analyzers = Analyzers(Limits(), SecretScanner(), MalwareScanner([], []))
    analysis = analyze_layer(io.BytesIO(tar_bytes(files)), analyzers)
    return LayerAnalysis.from_bytes(analysis.to_bytes())


def test_file_digests_are_what_rpm_recorded(key_package: tuple[bytes, bytes]) -> None:
    database, key = key_package
    found = rpm.file_digests(database, {KEY_PATH, "usr/share/other"})
    assert found == {KEY_PATH: [("selftest-keys", "sha256", hashlib.sha256(key).hexdigest())]}
    assert rpm.file_digests(database, {"usr/share/selftest/nope.pem"}) == {}
    assert rpm.file_digests(b"not a database", {KEY_PATH}) == {}


def test_a_key_an_rpm_ships_is_vendor_shipped_until_changed(
    key_package: tuple[bytes, bytes],
) -> None:
    database, key = key_package
    base = _analyzed({DB_PATH: database, KEY_PATH: key})
    changed = _analyzed({KEY_PATH: key.replace(b"-----\n", b"-----\n\n", 1)})
    shipped = assemble([("sha256:base", base)], Limits()).secrets
    assert [(f["kind"], f["severity"], f["package"], f["package_manager"]) for f in shipped] == [
        ("vendor-shipped", "info", "selftest-keys", "rpm")
    ]
    both = assemble([("sha256:base", base), ("sha256:mine", changed)], Limits()).secrets
    assert [(f["layer_index"], f["kind"], f["severity"]) for f in both] == [
        (0, "vendor-shipped", "info"),
        (1, "leak", "critical"),
    ]
