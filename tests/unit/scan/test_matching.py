"""Matching inventories against advisories: the OSV evaluation rules, each ecosystem's ordering
and naming, and release scoping for distribution packages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.version import Version as PyPIVersion

from seawall.scan.inventory import Package
from seawall.scan.inventory.osrelease import Distro
from seawall.scan.matching import (
    VulnIndex,
    VulnMatch,
    advisory_ecosystem,
    normalize_name,
    package_ecosystem,
)
from seawall.scan.osv import Advisory, parse_json, parse_record
from tests.support.fuzz import FUZZ

DATA = Path(__file__).parents[2] / "data" / "osv"
DEBIAN_12 = Distro("debian", "12")
NO_DISTRO = None

_counter = iter(range(1_000_000))


def advisory(
    ecosystem: str,
    name: str,
    *events: tuple[str, str],
    range_type: str = "ECOSYSTEM",
    versions: list[str] | None = None,
    ranges: list[list[tuple[str, str]]] | None = None,
    **fields: Any,
) -> Advisory:
    """An advisory for one package; `events` are (kind, version) pairs of a single range."""
    all_ranges = ranges if ranges is not None else ([list(events)] if events else [])
    entry: dict[str, Any] = {
        "package": {"ecosystem": ecosystem, "name": name},
        "ranges": [
            {"type": range_type, "events": [{kind: version} for kind, version in r]}
            for r in all_ranges
        ],
    }
    if versions is not None:
        entry["versions"] = versions
    raw = {
        "id": fields.pop("id", f"TEST-{next(_counter)}"),
        "modified": "2024-01-01T00:00:00Z",
        "affected": [entry],
        **fields,
    }
    return parse_record(raw)


def deb(name: str, version: str, source: str | None = None, ecosystem: str = "Debian") -> Package:
    return Package(ecosystem, f"lib{name}", version, source or name, version, f"pkg:deb/{name}", "")


def lang(ecosystem: str, name: str, version: str) -> Package:
    return Package(ecosystem, name, version, None, None, f"pkg:x/{name}@{version}", "")


def affected(adv: Advisory, package: Package, distro: Distro | None = NO_DISTRO) -> bool:
    return bool(VulnIndex([adv]).match([package], distro))


def only(adv: Advisory, package: Package, distro: Distro | None = NO_DISTRO) -> VulnMatch:
    (found,) = VulnIndex([adv]).match([package], distro)
    return found


# -- the evaluation rules ----------------------------------------------------------------------

PAIRS = advisory(
    "PyPI",
    "pairs",
    # Out of order on purpose: matching sorts events by version.
    ("fixed", "4.0"),
    ("introduced", "3.0"),
    ("fixed", "2.0"),
    ("introduced", "1.0"),
)


@pytest.mark.parametrize(
    ("version", "hit", "fix"),
    [
        ("0.5", False, None),
        ("1.0", True, "2.0"),
        ("1.5", True, "2.0"),
        ("2.0", False, None),
        ("2.5", False, None),
        ("3.0", True, "4.0"),
        ("3.9", True, "4.0"),
        ("4.0", False, None),
        ("9", False, None),
    ],
)
def test_multiple_introduced_fixed_pairs_out_of_order(
    version: str, hit: bool, fix: str | None
) -> None:
    found = VulnIndex([PAIRS]).match([lang("PyPI", "pairs", version)], NO_DISTRO)
    assert bool(found) is hit
    if hit:
        assert found[0].fixed_version == fix


def test_introduced_zero_means_from_the_beginning() -> None:
    adv = advisory("PyPI", "p", ("introduced", "0"), ("fixed", "1.0"))
    assert affected(adv, lang("PyPI", "p", "0.0.1.dev0"))
    assert not affected(adv, lang("PyPI", "p", "1.0"))


def test_no_fix_means_still_affected() -> None:
    adv = advisory("PyPI", "p", ("introduced", "1.0"))
    found = only(adv, lang("PyPI", "p", "99"))
    assert found.fixed_version is None


def test_last_affected_is_inclusive() -> None:
    adv = advisory("PyPI", "p", ("introduced", "1.0"), ("last_affected", "2.0"))
    assert affected(adv, lang("PyPI", "p", "2.0"))
    assert not affected(adv, lang("PyPI", "p", "2.0.1"))
    assert only(adv, lang("PyPI", "p", "1.5")).fixed_version is None


def test_limit_bounds_the_range() -> None:
    adv = advisory("PyPI", "p", ("introduced", "1.0"), ("limit", "2.0"))
    assert affected(adv, lang("PyPI", "p", "1.5"))
    assert not affected(adv, lang("PyPI", "p", "2.5"))
    unlimited = advisory("PyPI", "p", ("introduced", "1.0"), ("limit", "*"))
    assert affected(unlimited, lang("PyPI", "p", "2.5"))


def test_explicit_versions_list() -> None:
    adv = advisory("PyPI", "p", versions=["1.0", "1.2"])
    assert affected(adv, lang("PyPI", "p", "1.2"))
    assert affected(adv, lang("PyPI", "p", "1.2.0"))  # equal under PEP 440
    assert not affected(adv, lang("PyPI", "p", "1.1"))


def test_unparseable_versions_match_only_through_the_list() -> None:
    adv = advisory("Debian:12", "s", ("introduced", "0"), ("fixed", "garbage!"), versions=["1.0-1"])
    assert affected(adv, deb("s", "1.0-1"), DEBIAN_12)
    assert not affected(adv, deb("s", "0.1-1"), DEBIAN_12)
    odd = advisory("npm", "x", ("introduced", "0"), range_type="SEMVER", versions=["not-semver"])
    assert affected(odd, lang("npm", "x", "not-semver"))
    assert not affected(advisory("npm", "x", ("introduced", "0")), lang("npm", "x", "???"))


def test_lowest_fix_across_ranges() -> None:
    adv = advisory(
        "PyPI",
        "p",
        ranges=[[("introduced", "0"), ("fixed", "3.0")], [("introduced", "1.0"), ("fixed", "2.0")]],
    )
    assert only(adv, lang("PyPI", "p", "1.5")).fixed_version == "2.0"


def test_withdrawn_records_never_match() -> None:
    adv = advisory(
        "PyPI", "p", ("introduced", "0"), withdrawn="2024-02-01T00:00:00Z", id="WITHDRAWN-1"
    )
    index = VulnIndex([adv])
    assert index.match([lang("PyPI", "p", "1.0")], NO_DISTRO) == []
    assert len(index) == 0


def test_match_fields() -> None:
    adv = advisory(
        "PyPI",
        "p",
        ("introduced", "0"),
        ("fixed", "2.0"),
        id="GHSA-xxxx",
        aliases=["CVE-2024-1"],
        summary="bad thing",
        severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
    )
    assert only(adv, lang("PyPI", "P", "1.0")) == VulnMatch(
        advisory_id="GHSA-xxxx",
        aliases=("CVE-2024-1",),
        summary="bad thing",
        severity="critical",
        score=9.8,
        vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        package="P",
        version="1.0",
        ecosystem="PyPI",
        fixed_version="2.0",
        purl="pkg:x/P@1.0",
    )


def test_repeated_lookups_give_the_same_answer() -> None:
    index = VulnIndex([PAIRS])
    packages = [lang("PyPI", "pairs", v) for v in ("1.5", "2.5", "1.5")]
    first = index.match(packages, NO_DISTRO)
    assert [m.version for m in first] == ["1.5", "1.5"]
    assert index.match(packages, NO_DISTRO) == first


# -- distributions -----------------------------------------------------------------------------


def test_real_debian_advisory_by_source_package() -> None:
    dsa = parse_json((DATA / "DSA-3029-1.json").read_bytes())
    wheezy = Distro("debian", "7")
    found = only(dsa, deb("nginx", "1.2.1-2.2+wheezy2"), wheezy)
    assert (found.package, found.ecosystem, found.fixed_version) == (
        "libnginx",
        "Debian:7",
        "1.2.1-2.2+wheezy3",
    )
    assert not affected(dsa, deb("nginx", "1.2.1-2.2+wheezy3"), wheezy)
    assert not affected(dsa, deb("nginx", "1.2.1-2.2+wheezy2"), Distro("debian", "8"))


def test_debian_release_scoping() -> None:
    old = advisory("Debian:11", "openssl", ("introduced", "0"), ("fixed", "9"))
    bare = advisory("Debian", "openssl", ("introduced", "0"))
    package = deb("openssl", "3.0.11-1~deb12u2")
    assert not affected(old, package, DEBIAN_12)
    assert affected(old, package, Distro("debian", "11"))
    assert not affected(bare, package, DEBIAN_12)
    assert not affected(old, package, None)  # release unknown: nothing matches
    assert not affected(old, package, Distro("debian", None))
    assert not affected(old, package, Distro("raspbian", "11"))


@pytest.mark.parametrize(
    ("fixed", "installed", "hit"),
    [
        ("1:1.0-1", "2.0-1", True),  # epoch 1 beats any version without one
        ("1.0", "1.0~rc1", True),
        ("2.36-9+deb12u4", "2.36-9+deb12u3", True),
        ("2.36-9+deb12u4", "2.36-9+deb12u10", False),
        ("3.0.11-1~deb12u2", "3.0.11-1~deb12u1", True),
        ("3.0.11-1~deb12u2", "3.0.11-1", False),
    ],
)
def test_dpkg_ordering_in_ranges(fixed: str, installed: str, hit: bool) -> None:
    adv = advisory("Debian:12", "src", ("introduced", "0"), ("fixed", fixed))
    assert affected(adv, deb("src", installed), DEBIAN_12) is hit


def test_binary_name_alone_does_not_match_a_source_advisory() -> None:
    adv = advisory("Debian:12", "libsrc", ("introduced", "0"))
    assert not affected(adv, deb("src", "1.0"), DEBIAN_12)  # binary "libsrc", source "src"


def test_ubuntu_lts_ecosystem() -> None:
    adv = advisory("Ubuntu:22.04:LTS", "glibc", ("introduced", "0"), ("fixed", "2.35-0ubuntu3.6"))
    jammy = Distro("ubuntu", "22.04")
    package = deb("glibc", "2.35-0ubuntu3.1", ecosystem="Ubuntu")
    assert affected(adv, package, jammy)
    assert not affected(adv, package, Distro("ubuntu", "24.04"))
    pro = advisory("Ubuntu:Pro:22.04:LTS", "glibc", ("introduced", "0"))
    assert not affected(pro, package, jammy)


@pytest.mark.parametrize(
    ("fixed", "installed", "hit"),
    [
        ("1.2.3-r10", "1.2.3-r2", True),
        ("1.2.3-r10", "1.2.3-r10", False),
        ("1.2", "1.2_rc1", True),
        ("1.2.3", "1.2.3_p1", False),
    ],
)
def test_alpine(fixed: str, installed: str, hit: bool) -> None:
    adv = advisory("Alpine:v3.19", "musl", ("introduced", "0"), ("fixed", fixed))
    package = Package("Alpine", "musl-utils", installed, "musl", installed, "pkg:apk/musl", "")
    assert affected(adv, package, Distro("alpine", "3.19.1")) is hit
    assert not affected(adv, package, Distro("alpine", "3.18.4"))


def test_rpm_distributions_match_binary_packages() -> None:
    rocky = Distro("rocky", "9.3")
    adv = advisory(
        "Rocky Linux:9", "openssl-libs", ("introduced", "0"), ("fixed", "1:3.0.7-25.el9")
    )
    package = Package(
        "Rocky Linux", "openssl-libs", "1:3.0.7-24.el9", "openssl", "1:3.0.7-24.el9", "p", ""
    )
    assert affected(adv, package, rocky)
    newer = Package("Rocky Linux", "openssl-libs", "1:3.0.7-27.el9", "openssl", "x", "p", "")
    assert not affected(adv, newer, rocky)
    no_epoch = Package("Rocky Linux", "openssl-libs", "3.9-1.el9", "openssl", "x", "p", "")
    assert affected(adv, no_epoch, rocky)  # epoch 0 < epoch 1
    rhel = advisory("Red Hat:enterprise_linux:9::appstream", "python3.11", ("introduced", "0"))
    python = Package("Red Hat", "python3.11", "3.11.2-1.el9", "python3.11", "x", "p", "")
    assert affected(rhel, python, Distro("rhel", "9.2"))


# -- language ecosystems -----------------------------------------------------------------------


def test_pypi_names_are_pep503_normalized() -> None:
    adv = advisory("PyPI", "Foo_Bar", ("introduced", "0"))
    assert affected(adv, lang("PyPI", "foo-bar", "1.0"))
    assert affected(adv, lang("PyPI", "FOO.bar", "1.0"))
    assert normalize_name("PyPI", "Foo__Bar.baz") == "foo-bar-baz"


def test_real_pypi_records() -> None:
    index = VulnIndex(parse_json(p.read_bytes()) for p in DATA.glob("PYSEC-*.json"))
    found = index.match([lang("PyPI", "PyYAML", "5.2b1")], NO_DISTRO)
    # 5.2b1 is the fix of PYSEC-2020-176 (a pre-release), not affected by it.
    assert {m.advisory_id for m in found} == {"PYSEC-2021-142", "PYSEC-2020-96"}
    requests = index.match([lang("PyPI", "requests", "2.2.1")], NO_DISTRO)
    # PYSEC-2015-17 starts at 2.1.0; PYSEC-2023-74 at 2.3.0.
    assert {m.advisory_id for m in requests} == {
        "PYSEC-2014-13",
        "PYSEC-2014-14",
        "PYSEC-2015-17",
        "PYSEC-2018-28",
    }


@pytest.mark.parametrize(
    ("installed", "hit"),
    [("1.0rc1", True), ("1.0", False), ("0.9.post1", True), ("0.9+local", True)],
)
def test_pep440_pre_post_local(installed: str, hit: bool) -> None:
    adv = advisory("PyPI", "p", ("introduced", "0"), ("fixed", "1.0"))
    assert affected(adv, lang("PyPI", "p", installed)) is hit


def test_npm_prerelease_and_case_sensitive_names() -> None:
    adv = advisory("npm", "Lodash", ("introduced", "0"), ("fixed", "1.0.0"), range_type="SEMVER")
    assert affected(adv, lang("npm", "Lodash", "1.0.0-beta.2"))
    assert not affected(adv, lang("npm", "Lodash", "1.0.0"))
    assert not affected(adv, lang("npm", "lodash", "0.1.0"))


def test_go_v_prefix() -> None:
    adv = advisory(
        "Go", "golang.org/x/net", ("introduced", "0"), ("fixed", "0.17.0"), range_type="SEMVER"
    )
    found = only(adv, lang("Go", "golang.org/x/net", "v0.15.0"))
    assert found.fixed_version == "0.17.0"
    assert not affected(adv, lang("Go", "golang.org/x/net", "v0.17.0"))
    assert not affected(adv, lang("Go", "golang.org/x/Net", "v0.15.0"))


def test_severity_from_the_affected_entry_when_the_record_has_no_score() -> None:
    raw = {
        "id": "DEBIAN-CVE-2024-1",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "Debian:12", "name": "src"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
                "ecosystem_specific": {"urgency": "unimportant"},
            }
        ],
    }
    found = only(parse_record(raw), deb("src", "1.0"), DEBIAN_12)
    assert (found.severity, found.score) == ("low", None)


# -- ecosystem keys ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("package_ecosystem_name", "distro", "key"),
    [
        ("Debian", Distro("debian", "12"), "Debian:12"),
        ("Ubuntu", Distro("ubuntu", "22.04"), "Ubuntu:22.04"),
        ("Alpine", Distro("alpine", "3.19.1"), "Alpine:v3.19"),
        ("Alpine", Distro("alpine", "3"), None),
        ("Rocky Linux", Distro("rocky", "9.3"), "Rocky Linux:9"),
        ("AlmaLinux", Distro("almalinux", "8.9"), "AlmaLinux:8"),
        ("Red Hat", Distro("rhel", "9.2"), "Red Hat:9"),
        ("openSUSE", Distro("opensuse-leap", "15.5"), "openSUSE:Leap 15.5"),
        ("openSUSE", Distro("opensuse-tumbleweed", "20240101"), "openSUSE:Tumbleweed"),
        ("SUSE", Distro("sles", "15.5"), "SUSE:Linux Enterprise Server 15 SP5"),
        ("Debian", Distro("ubuntu", "22.04"), None),
        ("Debian", Distro("debian", "trixie"), None),
        ("PyPI", None, "PyPI"),
        ("npm", Distro("debian", "12"), "npm"),
        ("Go", None, "Go"),
    ],
)
def test_package_ecosystem(
    package_ecosystem_name: str, distro: Distro | None, key: str | None
) -> None:
    package = Package(package_ecosystem_name, "n", "1", None, None, "p", "")
    assert package_ecosystem(package, distro) == key


@pytest.mark.parametrize(
    ("written", "key"),
    [
        ("Debian:12", "Debian:12"),
        ("Ubuntu:22.04:LTS", "Ubuntu:22.04"),
        ("Ubuntu:23.10", "Ubuntu:23.10"),
        ("Red Hat:enterprise_linux:9::baseos", "Red Hat:9"),
        ("Alpine:v3.19", "Alpine:v3.19"),
    ],
)
def test_advisory_ecosystem(written: str, key: str) -> None:
    assert advisory_ecosystem(written) == key


# -- the position-based evaluation against a direct reading of the OSV rules --------------------

_VERSIONS = ["1.0", "1.5", "2.0", "2.5", "3.0"]
_EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["introduced", "fixed", "last_affected", "limit"]),
        st.sampled_from(["0", "*", *_VERSIONS]),
    ).filter(lambda e: (e[1] != "0" or e[0] == "introduced") and (e[1] != "*" or e[0] == "limit")),
    min_size=1,
    max_size=6,
)
_ORDER = {"introduced": 0, "last_affected": 1, "fixed": 2, "limit": 3}


def _direct(events: list[tuple[str, str]], installed: str) -> bool:
    """The OSV evaluation as the schema describes it, on packaging versions."""
    version = PyPIVersion(installed)
    limits = [v for kind, v in events if kind == "limit"]
    if limits and not any(v == "*" or version < PyPIVersion(v) for v in limits):
        return False
    ordered = sorted(
        (e for e in events if e[0] != "limit"),
        key=lambda e: (
            e[1] != "0",
            PyPIVersion("0") if e[1] == "0" else PyPIVersion(e[1]),
            _ORDER[e[0]],
        ),
    )
    affected = False
    for kind, v in ordered:
        if kind == "introduced" and (v == "0" or version >= PyPIVersion(v)):
            affected = True
        elif (kind == "fixed" and version >= PyPIVersion(v)) or (
            kind == "last_affected" and version > PyPIVersion(v)
        ):
            affected = False
    return affected


@settings(FUZZ, max_examples=400)
@given(
    _EVENTS,
    st.lists(_EVENTS, max_size=2),
    st.sampled_from(["0.5", "1.2", "2.2", "3.5", *_VERSIONS]),
)
def test_ranges_agree_with_the_direct_rules(
    events: list[tuple[str, str]], more: list[list[tuple[str, str]]], installed: str
) -> None:
    all_ranges = [events, *more]
    adv = advisory("PyPI", "p", ranges=all_ranges)
    expected = any(_direct(r, installed) for r in all_ranges)
    assert affected(adv, lang("PyPI", "p", installed)) is expected
