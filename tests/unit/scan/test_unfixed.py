"""Debian's and Ubuntu's records of vulnerabilities with no fix yet, as OSV publishes them:
parsed (severity, the CVE as an alias), matched within their release, reported with
`fix_available: false`; and an index that holds only the ecosystems asked for."""

from __future__ import annotations

from typing import Any

import pytest

from seawall.scan.inventory import Package
from seawall.scan.inventory.osrelease import Distro
from seawall.scan.matching import VulnIndex
from seawall.scan.osv import parse_record
from seawall.scan.report import (
    VULN_FIELDS,
    unfixed_count,
    vulnerabilities,
    vulnerabilities_document,
    vulnerability_views,
)

BOOKWORM = Distro("debian", "12", "Debian GNU/Linux 12 (bookworm)")
JAMMY = Distro("ubuntu", "22.04", "Ubuntu 22.04.4 LTS")

# Shaped like OSV's DEBIAN-CVE records: one entry per release, `upstream` naming the CVE,
# Debian's urgency per entry; bookworm has no fix, bullseye has one.
DEBIAN_CVE: dict[str, Any] = {
    "schema_version": "1.6.0",
    "id": "DEBIAN-CVE-2024-2511",
    "modified": "2025-01-10T00:00:00Z",
    "published": "2024-04-08T14:15:07Z",
    "upstream": ["CVE-2024-2511"],
    "details": "Issue summary: Some non-default TLS server configurations can cause unbounded"
    " memory growth.",
    "affected": [
        {
            "package": {"ecosystem": "Debian:11", "name": "openssl"},
            "ranges": [
                {
                    "type": "ECOSYSTEM",
                    "events": [{"introduced": "0"}, {"fixed": "1.1.1w-0+deb11u2"}],
                }
            ],
            "ecosystem_specific": {"urgency": "low"},
        },
        {
            "package": {"ecosystem": "Debian:12", "name": "openssl"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            "ecosystem_specific": {"urgency": "unimportant"},
        },
    ],
}
# Shaped like OSV's UBUNTU-CVE records: `related` names the CVE, the rating is a `severity`
# entry of type "Ubuntu", the ecosystem carries ":LTS", and `versions` lists released ones.
UBUNTU_CVE: dict[str, Any] = {
    "schema_version": "1.6.3",
    "id": "UBUNTU-CVE-2023-7008",
    "modified": "2025-01-10T00:00:00Z",
    "related": ["CVE-2023-7008"],
    "details": "A vulnerability was found in systemd-resolved.",
    "severity": [{"type": "Ubuntu", "score": "medium"}],
    "affected": [
        {
            "package": {"ecosystem": "Ubuntu:22.04:LTS", "name": "systemd"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}]}],
            "versions": ["249.11-0ubuntu3", "249.11-0ubuntu3.12"],
        }
    ],
}


def deb(name: str, version: str, ecosystem: str = "Debian") -> Package:
    return Package(ecosystem, f"lib{name}3", version, name, version, f"pkg:deb/{name}", "p")


def test_a_debian_record_without_a_fix_parses_with_its_cve_and_urgency() -> None:
    advisory = parse_record(DEBIAN_CVE)
    assert advisory.aliases == ("CVE-2024-2511",)
    bookworm = advisory.affected[1]
    assert bookworm.fixed_versions == ()
    assert bookworm.severity is not None and bookworm.severity.level == "low"  # unimportant


def test_an_ubuntu_record_takes_its_rating_and_cve() -> None:
    advisory = parse_record(UBUNTU_CVE)
    assert advisory.aliases == ("CVE-2023-7008",)
    assert (advisory.severity.level, advisory.severity.source) == ("medium", "Ubuntu")
    # A CVSS vector, when there is one, wins over the rating.
    scored = parse_record(
        {
            **UBUNTU_CVE,
            "severity": [
                {"type": "Ubuntu", "score": "low"},
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
            ],
        }
    )
    assert scored.severity.level == "critical"
    untriaged = parse_record({**UBUNTU_CVE, "severity": [{"type": "Ubuntu", "score": "untriaged"}]})
    assert untriaged.severity.level == "unknown"


def test_related_names_an_alias_only_for_the_records_own_cve() -> None:
    other = parse_record({**UBUNTU_CVE, "related": ["CVE-2020-0001", "USN-1234-1"]})
    assert other.aliases == ()
    listed = parse_record({**UBUNTU_CVE, "aliases": ["CVE-2023-7008"]})
    assert listed.aliases == ("CVE-2023-7008",)


def test_unfixed_findings_match_within_their_release_with_no_fixed_version() -> None:
    index = VulnIndex([parse_record(DEBIAN_CVE), parse_record(UBUNTU_CVE)])
    found, counts = vulnerabilities(index, BOOKWORM, [deb("openssl", "3.0.11-1~deb12u2")])
    (match,) = found
    assert (match.advisory_id, match.fixed_version, match.ecosystem) == (
        "DEBIAN-CVE-2024-2511",
        None,
        "Debian:12",
    )
    assert counts["low"] == 1
    bullseye = Distro("debian", "11")
    (fixed,) = index.match([deb("openssl", "1.1.1n-0+deb11u5")], bullseye)
    assert fixed.fixed_version == "1.1.1w-0+deb11u2"
    assert index.match([deb("openssl", "1.1.1w-0+deb11u2")], bullseye) == []
    (ubuntu,) = index.match(
        [
            Package(
                "Ubuntu",
                "systemd",
                "249.11-0ubuntu3.12",
                "systemd",
                "249.11-0ubuntu3.12",
                "pkg:deb/systemd",
                "p",
            )
        ],
        JAMMY,
    )
    assert (ubuntu.fixed_version, ubuntu.severity) == (None, "medium")


def test_reports_say_whether_a_fix_is_available() -> None:
    index = VulnIndex([parse_record(DEBIAN_CVE)])
    found = index.match([deb("openssl", "3.0.11-1~deb12u2")], BOOKWORM)
    found += index.match([deb("openssl", "1.1.1n-0+deb11u5")], Distro("debian", "11"))
    views = vulnerability_views(vulnerabilities_document(found))
    assert [(v["fixed_version"], v["fix_available"]) for v in views] == [
        (None, False),
        ("1.1.1w-0+deb11u2", True),
    ]
    assert unfixed_count(views) == 1


def test_a_report_stored_before_the_field_existed_shows_it() -> None:
    # A stored document names its fields; one from an older release has no `fix_available`.
    row = ["GHSA-1", [], "s", "high", None, None, None, "PyPI", "demo", "1.0", "pkg:pypi/demo"]
    stored = {"fields": list(VULN_FIELDS), "rows": [row, [*row[:6], "1.1", *row[7:]]]}
    views = vulnerability_views(stored)
    assert [v["fix_available"] for v in views] == [False, True]


def test_an_index_of_some_ecosystems_keeps_only_their_entries() -> None:
    records = [parse_record(DEBIAN_CVE), parse_record(UBUNTU_CVE)]
    bookworm_only = VulnIndex(records, only=frozenset({"Debian:12"}))
    assert bookworm_only.ecosystems() == {"Debian:12"}
    assert bookworm_only.missing({"Debian:12", "PyPI"}) == {"PyPI"}
    assert bookworm_only.match([deb("openssl", "1.1.1n-0+deb11u5")], Distro("debian", "11")) == []
    everything = VulnIndex(records)
    assert everything.ecosystems() == {"Debian:11", "Debian:12", "Ubuntu:22.04"}
    assert everything.missing({"anything"}) == frozenset()


def test_merging_adds_the_missing_ecosystems_and_keeps_what_was_remembered() -> None:
    records = [parse_record(DEBIAN_CVE), parse_record(UBUNTU_CVE)]
    index = VulnIndex(records, only=frozenset({"Debian:12"}))
    package = deb("openssl", "3.0.11-1~deb12u2")
    before = index.match([package], BOOKWORM)
    ubuntu = Package("Ubuntu", "systemd", "249.11-0ubuntu3", "systemd", "249.11-0ubuntu3", "u", "p")
    assert index.match([ubuntu], JAMMY) == []
    index.merge(VulnIndex(records, only=frozenset({"Ubuntu:22.04"})))
    assert index.loaded == {"Debian:12", "Ubuntu:22.04"}
    assert index.match([package], BOOKWORM) == before
    assert [m.advisory_id for m in index.match([ubuntu], JAMMY)] == ["UBUNTU-CVE-2023-7008"]
    with pytest.raises(ValueError, match="does not hold"):
        index.merge(VulnIndex(records, only=frozenset({"Debian:12"})))


def test_keys_for_names_what_an_inventory_is_looked_up_under() -> None:
    packages = [
        deb("openssl", "3.0.11-1"),
        Package("PyPI", "requests", "2.19.0", None, None, "pkg:pypi/requests", "p"),
        Package("Ubuntu", "x", "1", None, None, "u", "p"),  # not this distribution's
    ]
    assert VulnIndex.keys_for(packages, BOOKWORM) == {"Debian:12", "PyPI"}
    assert VulnIndex.keys_for(packages, None) == {"PyPI"}
