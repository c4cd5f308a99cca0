"""Package URL building and percent-encoding, per the purl spec's examples and rules."""

from __future__ import annotations

import pytest

from seawall.scan.inventory.purl import build_purl


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {
                "type_": "deb",
                "name": "curl",
                "version": "7.50.3-1",
                "namespace": "debian",
                "qualifiers": {"distro": "debian-12", "arch": "i386"},
            },
            "pkg:deb/debian/curl@7.50.3-1?arch=i386&distro=debian-12",
        ),
        # Debian epochs keep their colon; '+' must be encoded, '~' is unreserved.
        (
            {
                "type_": "deb",
                "name": "libssl3",
                "version": "1:3.0.11-1~deb12u2+b1",
                "namespace": "debian",
            },
            "pkg:deb/debian/libssl3@1:3.0.11-1~deb12u2%2Bb1",
        ),
        (
            {"type_": "npm", "name": "core", "version": "7.24.0", "namespace": "@babel"},
            "pkg:npm/%40babel/core@7.24.0",
        ),
        ({"type_": "pypi", "name": "django", "version": "1.11.1"}, "pkg:pypi/django@1.11.1"),
        ({"type_": "npm", "name": "a b", "version": "1.0.0 beta"}, "pkg:npm/a%20b@1.0.0%20beta"),
        ({"type_": "npm", "name": "a/b?c#d"}, "pkg:npm/a%2Fb%3Fc%23d"),
        (
            {
                "type_": "apk",
                "name": "musl",
                "version": "1.2.4-r4",
                "namespace": "alpine",
                "qualifiers": {"arch": "x86_64", "distro": None, "Empty": ""},
            },
            "pkg:apk/alpine/musl@1.2.4-r4?arch=x86_64",
        ),
        (
            {"type_": "deb", "name": "x", "version": "1", "qualifiers": {"repo": "a&b=c"}},
            "pkg:deb/x@1?repo=a%26b%3Dc",
        ),
    ],
)
def test_build_purl(kwargs: dict[str, object], expected: str) -> None:
    assert build_purl(**kwargs) == expected  # type: ignore[arg-type]


def test_non_ascii_is_utf8_percent_encoded() -> None:
    assert build_purl("npm", "café", "1.0.0") == "pkg:npm/caf%C3%A9@1.0.0"
