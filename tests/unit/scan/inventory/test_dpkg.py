"""dpkg status and md5sums parsing, checked against this machine's own dpkg database."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from seawall.scan.inventory.dpkg import (
    is_dpkg_status,
    md5sums_package,
    parse_dpkg_status,
    parse_md5sums,
)
from seawall.scan.inventory.osrelease import Distro

BOOKWORM = Distro("debian", "12")


def _dpkg_query_installed() -> set[tuple[str, str]]:
    if shutil.which("dpkg-query") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("dpkg-query is missing on CI")
        pytest.skip("dpkg-query is not installed")
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package}\t${Version}\t${db:Status-Status}\n"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rows = [line.split("\t") for line in out.splitlines()]
    return {(name, version) for name, version, status in rows if status == "installed"}


def test_matches_dpkg_query_on_this_machine() -> None:
    expected = _dpkg_query_installed()
    status = Path("/var/lib/dpkg/status")
    packages = parse_dpkg_status(status.read_bytes(), "/var/lib/dpkg/status", BOOKWORM)
    assert {(p.name, p.version) for p in packages} == expected
    assert expected  # a machine with dpkg-query has packages
    assert all(p.path == "var/lib/dpkg/status" for p in packages)


STATUS = b"""\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.
 .
 Package: not-a-package
 Version: 0

Package: removed-but-configured
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: libssl3
Status: install ok installed
Architecture: amd64
Source: openssl (3.0.11-1~deb12u2)
Version: 3.0.11-1~deb12u2+b1

Package: half-installed
Status: install reinstreq half-installed
Architecture: all
Version: 2.0

Package: tzdata
Status: hold ok installed
Architecture: all
Version: 2024a-0+deb12u1

Package: no-version
Status: install ok installed
Architecture: all

Package: no-status
Architecture: all
Version: 1
"""


def test_status_file_stanzas() -> None:
    packages = parse_dpkg_status(STATUS, "var/lib/dpkg/status", BOOKWORM)
    got = {p.name: (p.version, p.source_name, p.source_version) for p in packages}
    assert got == {
        "libc6": ("2.36-9+deb12u4", "glibc", "2.36-9+deb12u4"),
        "libssl3": ("3.0.11-1~deb12u2+b1", "openssl", "3.0.11-1~deb12u2"),
        "tzdata": ("2024a-0+deb12u1", "tzdata", "2024a-0+deb12u1"),
    }
    libc = next(p for p in packages if p.name == "libc6")
    assert libc.ecosystem == "Debian"
    assert libc.purl == "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"


def test_status_d_files_each_with_one_or_more_stanzas() -> None:
    files = {
        "var/lib/dpkg/status.d/base": (
            b"Package: base-files\nVersion: 12.4+deb12u5\nArchitecture: amd64\n"
            b"Status: install ok installed\n"
        ),
        "var/lib/dpkg/status.d/libssl3": (
            b"Package: libssl3\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n"
            b"Source: openssl\n\n"
            b"Package: openssl\nVersion: 3.0.11-1~deb12u2\nArchitecture: amd64\n"
        ),
    }
    packages = [
        package
        for path, data in files.items()
        if is_dpkg_status(path)
        for package in parse_dpkg_status(data, path, None)
    ]
    got = {(p.name, p.version, p.source_name, p.path) for p in packages}
    assert got == {
        ("base-files", "12.4+deb12u5", "base-files", "var/lib/dpkg/status.d/base"),
        ("libssl3", "3.0.11-1~deb12u2", "openssl", "var/lib/dpkg/status.d/libssl3"),
        ("openssl", "3.0.11-1~deb12u2", "openssl", "var/lib/dpkg/status.d/libssl3"),
    }
    # Without an os-release the distro qualifier is left out rather than guessed.
    assert packages[0].purl == "pkg:deb/debian/base-files@12.4%2Bdeb12u5?arch=amd64"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("var/lib/dpkg/status", True),
        ("/var/lib/dpkg/status", True),
        ("./var/lib/dpkg/status", True),
        ("var/lib/dpkg/status.d/libc6", True),
        ("var/lib/dpkg/status.d/libc6.md5sums", False),
        ("var/lib/dpkg/status.d/sub/libc6", False),
        ("var/lib/dpkg/status-old", False),
        ("usr/var/lib/dpkg/status", False),
    ],
)
def test_is_dpkg_status(path: str, expected: bool) -> None:
    assert is_dpkg_status(path) is expected


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\n\n\n",
        b"\xff\xfe\x00garbage",
        b":\n:::\n Package: x\n",
        b"Package: " + b"a" * 100_000 + b"\nVersion: 1\nStatus: install ok installed\n",
        b"Package: x\nVersion: 1\nStatus: installed\n",
    ],
)
def test_malformed_input_never_raises(data: bytes) -> None:
    assert parse_dpkg_status(data, "var/lib/dpkg/status") == []


def test_source_without_a_name_falls_back_to_the_package() -> None:
    data = b"Package: x\nVersion: 1\nStatus: install ok installed\nSource: (1.0)\n"
    [package] = parse_dpkg_status(data, "var/lib/dpkg/status")
    assert (package.source_name, package.source_version) == ("x", "1")


def test_md5sums_lists_name_their_package_and_match_the_files_they_list() -> None:
    """This machine's own lists: each names its package, and the files are what dpkg recorded."""
    lists = sorted(Path("/var/lib/dpkg/info").glob("*.md5sums"))
    if not lists:
        if os.environ.get("CI") == "true":
            pytest.fail("no dpkg md5sums on CI")
        pytest.skip("no dpkg md5sums here")
    installed = {name for name, _ in _dpkg_query_installed()}
    for md5sums in lists:
        package = md5sums_package(str(md5sums))
        assert package in installed, md5sums
    checked = 0
    for path, digest in parse_md5sums(Path("/var/lib/dpkg/info/dpkg.md5sums").read_text()):
        on_disk = Path("/") / path
        if on_disk.is_file() and not on_disk.is_symlink() and not path.startswith("etc/"):
            assert hashlib.md5(on_disk.read_bytes()).hexdigest() == digest, path
            checked += 1
    assert checked > 10
    assert md5sums_package("var/lib/dpkg/status.d/libssl3.md5sums") == "libssl3"
    assert md5sums_package("var/lib/dpkg/info/libc6:amd64.list") is None
    assert md5sums_package("opt/var/lib/dpkg/info/x.md5sums") is None
    assert list(parse_md5sums("junk\n" + "0" * 32 + "  ./usr/bin/x\n")) == [("usr/bin/x", "0" * 32)]
