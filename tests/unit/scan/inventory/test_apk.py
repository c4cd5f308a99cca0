"""apk `installed` database parsing."""

from __future__ import annotations

import pytest

from seawall.scan.inventory.apk import is_apk_installed, parse_apk_installed
from seawall.scan.inventory.osrelease import Distro

ALPINE = Distro("alpine", "3.19.1")

INSTALLED = b"""\
C:Q1Zqn1BbLJp1h1fKLIQ8sQMAcXgtk=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407995
I:667648
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1705491476
c:2ebf05fb1f7b3e83b6e3d1f0fa1cdbd6b7c2d3d9
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1G8ApKPu5vGL7S4wcFWQZI7ADwQ0=
R:libc.musl-x86_64.so.1

C:Q1Aq5o1L7EWbf8ERLvsuGQxSp+wM4=
P:busybox-binsh
V:1.36.1-r15
A:x86_64
S:1559
I:1
T:busybox ash /bin/sh
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Soren Tempel <soeren+alpine@soeren-tempel.net>
D:busybox=1.36.1-r15
F:bin
R:sh

C:Q1noorigin=
P:ca-certificates-bundle
V:20240226-r0
A:x86_64

P:no-version
A:x86_64

V:1.0
A:x86_64
"""


def test_installed_records() -> None:
    packages = parse_apk_installed(INSTALLED, "/lib/apk/db/installed", ALPINE)
    got = {p.name: (p.version, p.source_name, p.source_version) for p in packages}
    assert got == {
        "musl": ("1.2.4_git20230717-r4", "musl", "1.2.4_git20230717-r4"),
        "busybox-binsh": ("1.36.1-r15", "busybox", "1.36.1-r15"),
        "ca-certificates-bundle": ("20240226-r0", "ca-certificates-bundle", "20240226-r0"),
    }
    busybox = next(p for p in packages if p.name == "busybox-binsh")
    assert busybox.ecosystem == "Alpine"
    assert busybox.path == "lib/apk/db/installed"
    assert (
        busybox.purl == "pkg:apk/alpine/busybox-binsh@1.36.1-r15?arch=x86_64&distro=alpine-3.19.1"
    )


def test_file_without_trailing_blank_line_and_crlf() -> None:
    data = b"P:zlib\r\nV:1.3.1-r0\r\nA:aarch64\r\no:zlib"
    [zlib] = parse_apk_installed(data, "lib/apk/db/installed")
    assert (zlib.name, zlib.version, zlib.source_name) == ("zlib", "1.3.1-r0", "zlib")
    assert zlib.purl == "pkg:apk/alpine/zlib@1.3.1-r0?arch=aarch64"


@pytest.mark.parametrize(
    "data",
    [b"", b"\n\n", b"\xff\xfe", b"P\nV\n", b"P:" + b"x" * 10_000 + b"\nV:1\n", b"P:\nV:1\n"],
)
def test_malformed_input_never_raises(data: bytes) -> None:
    assert parse_apk_installed(data, "lib/apk/db/installed") == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("lib/apk/db/installed", True),
        ("/lib/apk/db/installed", True),
        ("usr/lib/apk/db/installed", False),
        ("lib/apk/db/installed.old", False),
    ],
)
def test_is_apk_installed(path: str, expected: bool) -> None:
    assert is_apk_installed(path) is expected
