"""os-release parsing: shell-style quoting and the distribution it names."""

from __future__ import annotations

import pytest

from seawall.scan.inventory.osrelease import (
    Distro,
    distro,
    distro_qualifier,
    is_os_release,
    parse_os_release,
)

DEBIAN = b"""\
PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
"""

ALPINE = b"""\
NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.19.1
PRETTY_NAME="Alpine Linux v3.19"
"""


def test_debian() -> None:
    fields = parse_os_release(DEBIAN)
    assert fields["PRETTY_NAME"] == "Debian GNU/Linux 12 (bookworm)"
    assert fields["VERSION_CODENAME"] == "bookworm"
    found = distro(fields)
    assert found == Distro("debian", "12")
    assert distro_qualifier(found) == "debian-12"


def test_alpine() -> None:
    assert distro(parse_os_release(ALPINE)) == Distro("alpine", "3.19.1")


def test_quoting_comments_and_bad_lines() -> None:
    data = (
        b"# a comment\n"
        b"A='single quoted $HOME'\n"
        b'B="escaped \\"quote\\" and \\$dollar"\n'
        b'E="keeps \\n literal"\n'
        b"C=unterminated 'quote\n"
        b"not an assignment\n"
        b"9X=bad key\n"
        b"D=\n"
        b"ID=first\n"
        b"ID=Last\n"
    )
    fields = parse_os_release(data)
    assert fields == {
        "A": "single quoted $HOME",
        "B": 'escaped "quote" and $dollar',
        "D": "",
        "E": "keeps \\n literal",
        "ID": "Last",
    }
    assert distro(fields) == Distro("last", None)
    assert distro_qualifier(distro(fields)) is None


@pytest.mark.parametrize("data", [b"", b"\xff\xfe\x00", b"=\n==\n", b"ID\n"])
def test_nothing_to_find(data: bytes) -> None:
    assert distro(parse_os_release(data)) is None


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("etc/os-release", True),
        ("/usr/lib/os-release", True),
        ("etc/lsb-release", False),
        ("opt/etc/os-release", False),
    ],
)
def test_is_os_release(path: str, expected: bool) -> None:
    assert is_os_release(path) is expected


def test_a_nul_is_replaced_like_an_undecodable_byte() -> None:
    fields = parse_os_release(b"ID=deb\0ian\nVERSION_ID=\xff12\n")
    assert fields == {"ID": "deb\ufffdian", "VERSION_ID": "\ufffd12"}
