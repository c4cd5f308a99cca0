"""What changed in the inventory since a saved report (`seawall inventory --since`).

Pure code: the rows of the saved report and the rows now, each an inventory row as the
inventory service builds it, compared by image (repository and digest):

- images added (a row now that the report did not have) and removed (the other way round),
  each with its tags and findings;
- findings new and resolved, by stable code, on the images present in both: a finding of an
  image added or removed is listed with that image, not again here.

Which report to compare with is `Since`: the last one saved, one by id, or the newest saved at
or before a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

LAST = "LAST"
_REPORT_ID = re.compile(r"[0-9]{1,18}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(\Z|[Tt ])", re.ASCII)


@dataclass(frozen=True, slots=True)
class Since:
    """The report to compare with: by id, the newest at or before `at`, or (neither) the last."""

    report_id: int | None = None
    at: float | None = None

    @classmethod
    def parse(cls, text: str) -> Since:
        """`LAST`, a report id, or a date or ISO 8601 time (UTC when it has no offset);
        ValueError with a message saying so otherwise."""
        if text == LAST:
            return cls()
        if _REPORT_ID.fullmatch(text):
            return cls(report_id=int(text))
        if not _DATE.match(text):  # RFC 3339's dates and times only: no weeks, no basic form
            raise ValueError(_WHAT)
        value = text
        if value.endswith(("Z", "z")):
            value = value[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(_WHAT) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return cls(at=moment.timestamp())

    def __str__(self) -> str:
        if self.report_id is not None:
            return f"report {self.report_id}"
        if self.at is not None:
            stamp = datetime.fromtimestamp(self.at, UTC).isoformat(timespec="seconds")
            return "the last report saved at or before " + stamp.replace("+00:00", "Z")
        return "the last report"


_WHAT = "since is LAST, a report id, or an ISO 8601 time (like 2026-12-01T00:00:00Z)"


def _key(row: dict[str, Any]) -> tuple[str, str]:
    return str(row["repository"]), str(row["digest"])


def _image(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "repository": row["repository"],
        "digest": row["digest"],
        "tags": list(row["tags"]),
        "findings": list(row["findings"]),
    }


def _finding(row: dict[str, Any], code: str) -> dict[str, Any]:
    return {
        "repository": row["repository"],
        "digest": row["digest"],
        "tags": list(row["tags"]),
        "finding": code,
    }


def changes(
    before: Iterable[dict[str, Any]], after: Iterable[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Images `added` and `removed`, findings `new` and `resolved` (see the module docstring),
    each list by repository then digest, findings in their row's order."""
    old = {_key(r): r for r in before}
    now = {_key(r): r for r in after}
    added = [_image(now[k]) for k in sorted(now.keys() - old.keys())]
    removed = [_image(old[k]) for k in sorted(old.keys() - now.keys())]
    new: list[dict[str, Any]] = []
    resolved: list[dict[str, Any]] = []
    for key in sorted(now.keys() & old.keys()):
        was, is_ = old[key]["findings"], now[key]["findings"]
        if was == is_:
            continue
        new += [_finding(now[key], code) for code in is_ if code not in was]
        resolved += [_finding(now[key], code) for code in was if code not in is_]
    return {"added": added, "removed": removed, "new_findings": new, "resolved_findings": resolved}


def counts(rows: Sequence[dict[str, Any]], codes: Sequence[str]) -> dict[str, int]:
    """How many rows have each finding code, every code named (0 when none has it)."""
    found = dict.fromkeys(codes, 0)
    for row in rows:
        for code in row["findings"]:
            found[code] = found.get(code, 0) + 1
    return found
