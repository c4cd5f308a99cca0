"""OSV records (https://ossf.github.io/osv-schema/) parsed into frozen dataclasses.

Only what matching and reports use is kept: identity, aliases, summary, dates, withdrawal, one
severity, and per affected package its ranges (`ECOSYSTEM` and `SEMVER`; `GIT` ranges name
commits, which an image inventory never has, so they are dropped) and explicit versions.
A range may have no `fixed` event at all: Debian's and Ubuntu's per-CVE records
(`DEBIAN-CVE-*`, `UBUNTU-CVE-*`) say "affected, no fix yet" with `introduced` alone, and are kept
like any other; matching reports them without a fixed version.
`parse_record` raises `InvalidRecord` (a `ValueError`) and nothing else on malformed input.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from seawall.scan.cvss import (
    InvalidVector,
    cvss2_base_score,
    cvss3_base_score,
    level_v2,
    level_v3,
)

EVENT_KINDS = ("introduced", "fixed", "last_affected", "limit")
RANGE_TYPES = frozenset({"ECOSYSTEM", "SEMVER"})
LEVELS = ("critical", "high", "medium", "low", "none", "unknown")
# Words databases use for severity, mapped to our levels. GHSA says MODERATE; Debian's urgency
# adds "unimportant" and "not yet assigned" (no rating yet, so unknown).
_WORDS = {
    "critical": "critical",
    "high": "high",
    "important": "high",
    "moderate": "medium",
    "medium": "medium",
    "low": "low",
    "negligible": "low",
    "unimportant": "low",
    "none": "none",
}
# A distribution's record about one CVE: its id ends with the CVE's.
_DISTRO_CVE = re.compile(r"[A-Z]+-(CVE-\d{4}-\d{4,})")
_MAX_LIST = 100_000  # more entries than any real record has: a sign of garbage


class InvalidRecord(ValueError):
    """The record is not an OSV record we can use; the message says why."""


@dataclass(frozen=True, slots=True)
class Event:
    kind: str  # one of EVENT_KINDS
    version: str  # "0" for "introduced at the beginning"; "*" is an unbounded limit


@dataclass(frozen=True, slots=True)
class Range:
    type: str  # "ECOSYSTEM" or "SEMVER"
    events: tuple[Event, ...]  # in record order; matching sorts them


@dataclass(frozen=True, slots=True)
class Severity:
    level: str  # one of LEVELS
    score: float | None  # CVSS base score when a vector gave one
    vector: str | None
    # "CVSS_V3", "CVSS_V2", a database's own severity type ("Ubuntu"), "database_specific",
    # "ecosystem_specific", "none"
    source: str


UNKNOWN = Severity("unknown", None, None, "none")


@dataclass(frozen=True, slots=True)
class Affected:
    ecosystem: str  # as written, with its release: "Debian:12", "PyPI"
    name: str
    purl: str | None
    ranges: tuple[Range, ...]
    versions: tuple[str, ...]
    severity: Severity | None  # set when this entry carries its own

    @property
    def fixed_versions(self) -> tuple[str, ...]:
        """Every `fixed` version named in this entry, in record order, for reports."""
        return tuple(e.version for r in self.ranges for e in r.events if e.kind == "fixed")


@dataclass(frozen=True, slots=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    modified: str
    published: str | None
    withdrawn: str | None
    severity: Severity
    affected: tuple[Affected, ...]


def parse_json(data: bytes | str) -> Advisory:
    """Parse the JSON text of one record."""
    try:
        raw = json.loads(data)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidRecord(f"not JSON: {exc}") from None
    return parse_record(raw)


def parse_record(raw: Any) -> Advisory:
    """An `Advisory` from a decoded OSV record; raises `InvalidRecord` when it is unusable."""
    if not isinstance(raw, dict):
        raise InvalidRecord("a record is a JSON object")
    record_id = _text(raw, "id", required=True)
    assert record_id is not None  # required=True
    try:
        affected = tuple(_affected(entry) for entry in _list(raw, "affected"))
        return Advisory(
            id=record_id,
            aliases=_aliases(record_id, raw),
            summary=_text(raw, "summary") or _first_line(_text(raw, "details")),
            modified=_text(raw, "modified", required=True) or "",
            published=_text(raw, "published"),
            withdrawn=_text(raw, "withdrawn"),
            severity=_record_severity(raw),
            affected=tuple(a for a in affected if a is not None),
        )
    except InvalidRecord as exc:
        raise InvalidRecord(f"{record_id}: {exc}") from None


def _aliases(record_id: str, raw: Mapping[str, Any]) -> tuple[str, ...]:
    """`aliases`, plus the CVE a distribution's per-CVE record is about: Debian's and Ubuntu's
    `DEBIAN-CVE-2024-1234` / `UBUNTU-CVE-2024-1234` name it under `upstream` or `related`
    instead, and reports, exceptions and gates go by the CVE id."""
    aliases = _strings(raw, "aliases")
    found = _DISTRO_CVE.fullmatch(record_id)
    if found is not None and found[1] not in aliases:
        named = _strings(raw, "upstream") + _strings(raw, "related")
        if found[1] in named:
            aliases = [*aliases, found[1]]
    return tuple(aliases)


def _text(raw: Mapping[str, Any], key: str, required: bool = False) -> str | None:
    value = raw.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        raise InvalidRecord(f"{key!r} must be a {'non-empty ' if required else ''}string")
    return value


def _list(raw: Mapping[str, Any], key: str) -> list[Any]:
    value = raw.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > _MAX_LIST:
        raise InvalidRecord(f"{key!r} must be a list")
    return value


def _strings(raw: Mapping[str, Any], key: str) -> list[str]:
    values = _list(raw, key)
    if not all(isinstance(v, str) for v in values):
        raise InvalidRecord(f"{key!r} must be a list of strings")
    return values


def _first_line(details: str | None) -> str:
    if not details:
        return ""
    return next((line.strip() for line in details.splitlines() if line.strip()), "")[:200]


def _affected(raw: Any) -> Affected | None:
    """One `affected` entry; None for entries with no package (GIT-only, repository records)."""
    if not isinstance(raw, dict):
        raise InvalidRecord("'affected' entries must be objects")
    package = raw.get("package")
    if package is None:
        return None
    if not isinstance(package, dict):
        raise InvalidRecord("'package' must be an object")
    ecosystem = _text(package, "ecosystem", required=True)
    name = _text(package, "name", required=True)
    assert ecosystem is not None and name is not None  # required=True
    ranges = tuple(r for r in (_range(item) for item in _list(raw, "ranges")) if r is not None)
    return Affected(
        ecosystem=ecosystem,
        name=name,
        purl=_text(package, "purl"),
        ranges=ranges,
        versions=tuple(_strings(raw, "versions")),
        severity=_entry_severity(raw),
    )


def _range(raw: Any) -> Range | None:
    if not isinstance(raw, dict):
        raise InvalidRecord("'ranges' entries must be objects")
    kind = _text(raw, "type", required=True)
    events = []
    for event in _list(raw, "events"):
        if not isinstance(event, dict) or len(event) != 1:
            raise InvalidRecord("an event is an object with exactly one key")
        ((key, value),) = event.items()
        if key not in EVENT_KINDS or not isinstance(value, str) or not value:
            raise InvalidRecord(f"bad event {key!r}")
        events.append(Event(key, value))
    if kind not in RANGE_TYPES:
        return None  # GIT, or a type from a newer schema: not comparable with package versions
    if not events:
        raise InvalidRecord("a range needs events")
    return Range(kind, tuple(events))


def _record_severity(raw: Mapping[str, Any]) -> Severity:
    """The record's severity: a CVSS v3 then v2 vector at the top level or on an affected entry,
    else the database's own word for it, else unknown."""
    found = _cvss(raw.get("severity"))
    if found is None:
        for entry in _list(raw, "affected"):
            if isinstance(entry, dict) and (found := _cvss(entry.get("severity"))):
                break
    if found is None:
        found = _typed_word(raw.get("severity"))
    if found is None:
        found = _worded(raw, "database_specific")
    if found is None:
        for entry in _list(raw, "affected"):
            if isinstance(entry, dict) and (found := _entry_worded(entry)):
                break
    return found or UNKNOWN


def _entry_severity(raw: Mapping[str, Any]) -> Severity | None:
    return _cvss(raw.get("severity")) or _entry_worded(raw)


def _entry_worded(raw: Mapping[str, Any]) -> Severity | None:
    return _worded(raw, "ecosystem_specific") or _worded(raw, "database_specific")


def _cvss(items: Any) -> Severity | None:
    """The best CVSS score in a `severity` list (v3 before v2); v4 vectors are not scored."""
    if items is None:
        return None
    if not isinstance(items, list):
        raise InvalidRecord("'severity' must be a list")
    by_type: dict[str, str] = {}
    for item in items:
        if not isinstance(item, dict):
            raise InvalidRecord("'severity' entries must be objects")
        kind, score = item.get("type"), item.get("score")
        if not isinstance(kind, str) or not isinstance(score, str):
            raise InvalidRecord("a severity has a string 'type' and 'score'")
        by_type.setdefault(kind, score)
    if (vector := by_type.get("CVSS_V3")) is not None:
        try:
            score3 = cvss3_base_score(vector)
            return Severity(level_v3(score3), score3, vector, "CVSS_V3")
        except InvalidVector:
            pass  # a broken vector is no reason to drop the record; try the next source
    if (vector := by_type.get("CVSS_V2")) is not None:
        try:
            score2 = cvss2_base_score(vector)
            return Severity(level_v2(score2), score2, vector, "CVSS_V2")
        except InvalidVector:
            pass
    return None


def _typed_word(items: Any) -> Severity | None:
    """A database's own rating in the `severity` list, e.g. Ubuntu's `{"type": "Ubuntu",
    "score": "medium"}` (its priority; "untriaged" is no rating). `_cvss` checked the shape."""
    for item in items if isinstance(items, list) else ():
        kind, word = item.get("type"), item.get("score")
        if kind not in ("CVSS_V2", "CVSS_V3", "CVSS_V4") and word.strip().lower() in _WORDS:
            return Severity(_WORDS[word.strip().lower()], None, None, kind)
    return None


def _worded(raw: Mapping[str, Any], field: str) -> Severity | None:
    specific = raw.get(field)
    if not isinstance(specific, dict):
        return None
    for key in ("severity", "urgency"):
        word = specific.get(key)
        if isinstance(word, str) and word.strip().lower() in _WORDS:
            return Severity(_WORDS[word.strip().lower()], None, None, field)
    return None
