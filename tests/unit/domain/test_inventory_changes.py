"""What changed since a saved inventory report: which report `--since` names, and the
comparison of two sets of rows by image."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from seawall.domain.inventory_changes import Since, changes, counts


def _at(*parts: int) -> Since:
    return Since(at=datetime(*parts, tzinfo=UTC).timestamp())


def _row(repository: str, digest: str, findings: list[str], tags: list[str]) -> dict[str, Any]:
    return {"repository": repository, "digest": digest, "tags": tags, "findings": findings}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("LAST", Since()),
        ("7", Since(report_id=7)),
        ("000123", Since(report_id=123)),
        ("2026-12-01", _at(2026, 12, 1)),
        ("2026-12-01T10:30:00Z", _at(2026, 12, 1, 10, 30)),
        ("2026-12-01t10:30:00z", _at(2026, 12, 1, 10, 30)),
        ("2026-12-01T12:30:00+02:00", _at(2026, 12, 1, 10, 30)),
        ("2026-12-01T10:30:00", _at(2026, 12, 1, 10, 30)),
    ],
)
def test_since_names_a_report(text: str, expected: Since) -> None:
    assert Since.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    ["", "last", " LAST", "7 ", "1" * 19, "-1", "yesterday", "2026-W48", "2026-12-1", "2026-02-30"],
)
def test_since_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="since is LAST, a report id, or an ISO 8601 time"):
        Since.parse(text)


def test_changes_by_image_and_finding() -> None:
    before = [
        _row("a/x", "sha256:1", ["no-owner", "unscanned"], ["1"]),
        _row("a/x", "sha256:2", ["untagged"], []),
        _row("b/y", "sha256:3", ["stale"], ["latest"]),
    ]
    after = [
        _row("a/x", "sha256:1", ["unscanned", "stale"], ["1", "one"]),
        _row("b/y", "sha256:3", ["stale"], ["latest"]),
        _row("b/y", "sha256:4", ["vulnerable"], ["2"]),
    ]
    found = changes(before, after)
    assert found["added"] == [
        {"repository": "b/y", "digest": "sha256:4", "tags": ["2"], "findings": ["vulnerable"]}
    ]
    assert found["removed"] == [
        {"repository": "a/x", "digest": "sha256:2", "tags": [], "findings": ["untagged"]}
    ]
    # Only images in both; with the tags they have now.
    assert found["new_findings"] == [
        {"repository": "a/x", "digest": "sha256:1", "tags": ["1", "one"], "finding": "stale"}
    ]
    assert found["resolved_findings"] == [
        {"repository": "a/x", "digest": "sha256:1", "tags": ["1", "one"], "finding": "no-owner"}
    ]
    assert changes(after, after) == {
        "added": [],
        "removed": [],
        "new_findings": [],
        "resolved_findings": [],
    }


def test_counts_names_every_code() -> None:
    rows = [_row("a/x", "1", ["stale", "untagged"], []), _row("a/x", "2", ["stale"], ["v"])]
    assert counts(rows, ("no-owner", "stale", "untagged")) == {
        "no-owner": 0,
        "stale": 2,
        "untagged": 1,
    }
