"""Version ordering per ecosystem: each ecosystem's own rules, and the fast dpkg key agreeing with
univers' reference implementation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from univers.versions import DebianVersion, SemverVersion

from seawall.scan.versions import base_ecosystem, semver_key, version_key
from tests.support.fuzz import FUZZ

ASCENDING = [
    # dpkg: epochs, "~" before everything, "+debNuM" security updates, revisions
    ("Debian", "2.0-1", "1:0.5-1"),
    ("Debian", "1.0~rc1", "1.0"),
    ("Debian", "1.0~rc1", "1.0~rc2"),
    ("Debian", "1.0~~", "1.0~"),
    ("Debian", "1.0", "1.0.0"),
    ("Debian", "1.0", "1.0a"),
    ("Debian", "2.36-9+deb12u4", "2.36-9+deb12u10"),
    ("Debian", "1.2.1-2.2", "1.2.1-2.2+wheezy3"),
    ("Debian", "3.0.11-1~deb12u2", "3.0.11-1"),
    ("Debian:12", "1.0-1", "1.0-2"),
    ("Ubuntu", "2.35-0ubuntu3.1", "2.35-0ubuntu3.6"),
    ("Ubuntu", "1.1.1f-1ubuntu2", "1:1.0"),
    # apk: -rN revisions compare numerically, _rc before the release, _p after it
    ("Alpine", "1.2.3-r2", "1.2.3-r10"),
    ("Alpine", "1.2_rc1", "1.2"),
    ("Alpine", "1.2.3", "1.2.3_p1"),
    ("Alpine:v3.19", "3.1.4-r5", "3.1.4-r6"),
    # rpm: epoch first, then version, then release
    ("Rocky Linux", "2.0-1.el9", "1:1.0-1.el9"),
    ("AlmaLinux", "1.0-1.el9", "1.0-2.el9"),
    ("Red Hat", "1.0-9.el9", "1.0-10.el9"),
    # PEP 440: pre < release < post; local versions after their public version
    ("PyPI", "1.0rc1", "1.0"),
    ("PyPI", "1.0a1", "1.0b1"),
    ("PyPI", "5.2b1", "5.2"),
    ("PyPI", "1.0", "1.0.post1"),
    ("PyPI", "1.0", "1.0+local.1"),
    ("PyPI", "1.0.dev1", "1.0a1"),
    # semver: pre-releases before the release, compared field by field
    ("npm", "1.0.0-alpha", "1.0.0-alpha.1"),
    ("npm", "1.0.0-alpha.1", "1.0.0-beta"),
    ("npm", "1.0.0-beta", "1.0.0"),
    ("npm", "1.9.0", "1.10.0"),
    ("Go", "v1.2.3", "1.2.4"),
    ("Go", "v0.0.0-20200101000000-abcdef123456", "v0.1.0"),
]


@pytest.mark.parametrize(("ecosystem", "lower", "higher"), ASCENDING)
def test_ordering(ecosystem: str, lower: str, higher: str) -> None:
    low, high = version_key(ecosystem, lower), version_key(ecosystem, higher)
    assert low is not None and high is not None
    assert low < high
    assert not high < low


@pytest.mark.parametrize(
    ("ecosystem", "left", "right"),
    [
        ("Debian", "1.0-0", "1.0"),  # a missing revision is revision "0"
        ("Debian", "0:1.0", "1.0"),  # epoch 0 is no epoch
        ("PyPI", "1.0", "1.0.0"),
        ("PyPI", "1.0RC1", "1.0rc1"),
        ("Go", "v1.2.3", "1.2.3"),
    ],
)
def test_equal(ecosystem: str, left: str, right: str) -> None:
    assert version_key(ecosystem, left) == version_key(ecosystem, right)


@pytest.mark.parametrize(
    ("ecosystem", "text"),
    [
        ("Debian", ""),
        ("Debian", "abc"),
        ("Debian", "1.0 beta"),
        ("Debian", " 1.0"),
        ("Alpine", "not-a-version"),
        ("PyPI", "1.0-foo-bar"),
        ("npm", "latest"),
        ("Go", "master"),
        ("Hackage", "1.0"),  # no ordering we know
        ("Debian", "1" * 300),  # longer than any real version
    ],
)
def test_unparseable_is_none(ecosystem: str, text: str) -> None:
    assert version_key(ecosystem, text) is None


def test_semver_key_takes_an_optional_v() -> None:
    assert semver_key("v1.2.3") == semver_key("1.2.3")
    low, high = semver_key("1.2.3-rc.1"), semver_key("v1.2.3")
    assert low is not None and high is not None and low < high


def test_base_ecosystem() -> None:
    assert base_ecosystem("Debian:12") == "Debian"
    assert base_ecosystem("Ubuntu:22.04:LTS") == "Ubuntu"
    assert base_ecosystem("PyPI") == "PyPI"


def test_parses_are_cached() -> None:
    assert version_key("Alpine", "1.2.3-r4") is version_key("Alpine", "1.2.3-r4")


_DPKG_TEXT = st.text(alphabet="0123456789.~+-:aZ", min_size=1, max_size=10)


def _sign(left: object, right: object) -> int:
    return int(left > right) - int(left < right)  # type: ignore[operator]


@settings(FUZZ, max_examples=2000)
@given(_DPKG_TEXT, _DPKG_TEXT)
def test_dpkg_key_orders_as_univers(left: str, right: str) -> None:
    a, b = version_key("Debian", left), version_key("Debian", right)
    if a is None or b is None:
        return
    assert _sign(a, b) == _sign(DebianVersion(left), DebianVersion(right))


@given(st.text(max_size=40))
def test_version_key_never_raises(text: str) -> None:
    for ecosystem in ("Debian", "Alpine", "Rocky Linux", "PyPI", "npm", "Go", "Nope"):
        version_key(ecosystem, text)


_IDENT = st.one_of(
    st.integers(0, 30).map(str),
    st.text(alphabet="abcxyz-", min_size=1, max_size=3),
)
_SEMVER = st.builds(
    lambda major, minor, patch, pre: (
        f"{major}.{minor}.{patch}" + (f"-{'.'.join(pre)}" if pre else "")
    ),
    st.integers(0, 3),
    st.integers(0, 12),
    st.integers(0, 12),
    st.lists(_IDENT, max_size=3),
)


@settings(FUZZ, max_examples=2000)
@given(_SEMVER, _SEMVER)
def test_semver_key_orders_as_univers(left: str, right: str) -> None:
    a, b = version_key("npm", left), version_key("npm", right)
    assert a is not None and b is not None
    assert _sign(a, b) == _sign(SemverVersion(left), SemverVersion(right))
    assert version_key("Go", "v" + left) == a


def test_loose_semver_is_coerced() -> None:
    assert version_key("npm", "1.2") == version_key("npm", "1.2.0")
    assert version_key("Go", "v1") == version_key("Go", "1.0.0")
