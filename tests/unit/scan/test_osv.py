"""Parsing OSV records: real upstream records, severity from CVSS vectors and database words, and
malformed input that must fail with `InvalidRecord` only."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from seawall.scan.cvss import InvalidVector, cvss2_base_score, cvss3_base_score
from seawall.scan.osv import Event, InvalidRecord, Range, parse_json, parse_record
from tests.support.fuzz import FUZZ

DATA = Path(__file__).parents[2] / "data" / "osv"


def record(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "TEST-1",
        "modified": "2024-01-01T00:00:00Z",
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": "demo"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2"}]}],
            }
        ],
    }
    base.update(fields)
    return base


@pytest.mark.parametrize("path", sorted(DATA.glob("*.json")), ids=lambda p: p.stem)
def test_real_records_parse(path: Path) -> None:
    advisory = parse_json(path.read_bytes())
    assert advisory.id == path.stem
    assert advisory.modified
    assert advisory.affected
    assert all(a.ranges for a in advisory.affected)


def test_real_record_fields() -> None:
    advisory = parse_json((DATA / "DSA-3029-1.json").read_bytes())
    assert advisory.aliases == ("CVE-2014-3616",)
    assert advisory.summary == "nginx - security update"
    assert advisory.published == "2014-09-20T00:00:00Z"
    assert advisory.withdrawn is None
    (nginx,) = advisory.affected
    assert (nginx.ecosystem, nginx.name) == ("Debian:7", "nginx")
    assert nginx.ranges == (
        Range("ECOSYSTEM", (Event("introduced", "0"), Event("fixed", "1.2.1-2.2+wheezy3"))),
    )
    assert nginx.fixed_versions == ("1.2.1-2.2+wheezy3",)
    pyyaml = parse_json((DATA / "PYSEC-2020-176.json").read_bytes()).affected[0]
    assert pyyaml.purl == "pkg:pypi/pyyaml"
    assert pyyaml.versions == ("5.1", "5.1.1", "5.1.2")


def test_summary_falls_back_to_details() -> None:
    advisory = parse_record(record(details="\n  First line.\nSecond."))
    assert advisory.summary == "First line."


def test_git_ranges_are_dropped_and_packageless_entries_skipped() -> None:
    raw = record(
        affected=[
            {"ranges": [{"type": "GIT", "repo": "https://x", "events": [{"introduced": "0"}]}]},
            {
                "package": {"ecosystem": "Go", "name": "example.com/m"},
                "ranges": [
                    {"type": "GIT", "repo": "https://x", "events": [{"introduced": "abc"}]},
                    {"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]},
                ],
            },
        ]
    )
    (entry,) = parse_record(raw).affected
    assert [r.type for r in entry.ranges] == ["SEMVER"]


# -- severity ----------------------------------------------------------------------------------

CVSS3 = [
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
    ("CVSS:3.0/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N", 5.5),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0),
    ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0),
    ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6),
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H", 9.9),
    ("CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 8.8),
    ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L", 5.3),
    ("CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1),
    ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H/E:P/RL:O", 7.5),  # temporal ignored
]


@pytest.mark.parametrize(("vector", "score"), CVSS3)
def test_cvss3_base_score(vector: str, score: float) -> None:
    assert cvss3_base_score(vector) == score


@pytest.mark.parametrize(
    ("vector", "score"),
    [
        ("AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
        ("AV:N/AC:M/Au:N/C:N/I:P/A:N", 4.3),
        ("AV:N/AC:L/Au:N/C:C/I:C/A:C", 10.0),
        ("AV:L/AC:H/Au:M/C:N/I:N/A:N", 0.0),
    ],
)
def test_cvss2_base_score(vector: str, score: float) -> None:
    assert cvss2_base_score(vector) == score


@pytest.mark.parametrize(
    "vector",
    [
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",  # A missing
        "CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:3.1/AV:N/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "",
    ],
)
def test_bad_cvss3_vectors(vector: str) -> None:
    with pytest.raises(InvalidVector):
        cvss3_base_score(vector)


def test_severity_from_cvss3_then_v2() -> None:
    severity = parse_record(
        record(
            severity=[
                {"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"},
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"},
            ]
        )
    ).severity
    assert (severity.level, severity.score, severity.source) == ("critical", 9.8, "CVSS_V3")
    v2 = parse_record(
        record(severity=[{"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}])
    ).severity
    assert (v2.level, v2.score) == ("high", 7.5)


@pytest.mark.parametrize(
    ("fields", "level"),
    [
        ({"database_specific": {"severity": "MODERATE"}}, "medium"),  # GHSA
        ({"database_specific": {"severity": "CRITICAL"}}, "critical"),
        ({"database_specific": {"severity": "weird"}}, "unknown"),
        ({}, "unknown"),
        (
            {
                "severity": [{"type": "CVSS_V4", "score": "CVSS:4.0/AV:N"}],
                "database_specific": {"severity": "HIGH"},
            },
            "high",
        ),
    ],
)
def test_severity_falls_back_to_database_words(fields: dict[str, Any], level: str) -> None:
    assert parse_record(record(**fields)).severity.level == level


@pytest.mark.parametrize(
    ("urgency", "level"),
    [("low", "low"), ("medium", "medium"), ("high", "high"), ("unimportant", "low")],
)
def test_debian_urgency(urgency: str, level: str) -> None:
    raw = record()
    raw["affected"][0]["ecosystem_specific"] = {"urgency": urgency}
    advisory = parse_record(raw)
    assert advisory.severity.level == level
    assert advisory.affected[0].severity is not None
    assert advisory.affected[0].severity.level == level


def test_not_yet_assigned_urgency_is_unknown() -> None:
    raw = record()
    raw["affected"][0]["ecosystem_specific"] = {"urgency": "not yet assigned"}
    assert parse_record(raw).severity.level == "unknown"


def test_broken_vector_does_not_drop_the_record() -> None:
    advisory = parse_record(record(severity=[{"type": "CVSS_V3", "score": "CVSS:3.1/garbage"}]))
    assert advisory.severity.level == "unknown"


# -- malformed records -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        [],
        "text",
        {"modified": "2024-01-01T00:00:00Z"},  # no id
        {"id": "", "modified": "x"},
        {"id": 5, "modified": "x"},
        {"id": "X-1"},  # no modified
        record(aliases="CVE-1"),
        record(aliases=[1]),
        record(affected={"package": {}}),
        record(affected=["x"]),
        record(affected=[{"package": {"name": "x"}}]),
        record(affected=[{"package": {"ecosystem": "PyPI", "name": ""}}]),
        record(affected=[{"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [{}]}]),
        record(
            affected=[
                {
                    "package": {"ecosystem": "PyPI", "name": "x"},
                    "ranges": [
                        {"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1"}]}
                    ],
                }
            ]
        ),
        record(
            affected=[
                {
                    "package": {"ecosystem": "PyPI", "name": "x"},
                    "ranges": [{"type": "ECOSYSTEM", "events": [{"broken": "1"}]}],
                }
            ]
        ),
        record(
            affected=[
                {"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [{"type": "SEMVER"}]}
            ]
        ),
        record(severity={"type": "CVSS_V3"}),
        record(severity=[{"type": "CVSS_V3", "score": 9.8}]),
    ],
)
def test_malformed_records_raise_invalid_record(raw: Any) -> None:
    with pytest.raises(InvalidRecord):
        parse_record(raw)


@pytest.mark.parametrize("data", [b"", b"{", b"\xff\xfe\x00", b"[1, 2]", b"null"])
def test_malformed_json_raises_invalid_record(data: bytes) -> None:
    with pytest.raises(InvalidRecord):
        parse_json(data)


def test_invalid_record_is_a_value_error_naming_the_record() -> None:
    with pytest.raises(ValueError, match="TEST-1"):
        parse_record(record(aliases=[1]))


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    _containers,
    max_leaves=20,
)
_KEYS = st.sampled_from(
    [
        "id",
        "modified",
        "affected",
        "package",
        "ecosystem",
        "name",
        "ranges",
        "type",
        "events",
        "introduced",
        "fixed",
        "severity",
        "score",
        "versions",
        "aliases",
        "database_specific",
    ]
)
_OSV_LIKE = st.recursive(
    st.none() | st.integers() | st.text(max_size=6) | st.sampled_from(["ECOSYSTEM", "SEMVER", "0"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=5),
    max_leaves=30,
)


@settings(FUZZ, max_examples=300)
@given(_JSON)
def test_arbitrary_json_raises_only_invalid_record(raw: Any) -> None:
    with contextlib.suppress(InvalidRecord):
        parse_record(raw)


@settings(FUZZ, max_examples=500)
@given(_OSV_LIKE)
def test_osv_shaped_garbage_raises_only_invalid_record(raw: Any) -> None:
    with contextlib.suppress(InvalidRecord):
        parse_json(json.dumps(raw))
