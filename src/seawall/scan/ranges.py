"""OSV range evaluation for one package, fast enough to re-match thousands of inventories.

Every version named by the package's advisories is placed once on a sorted axis (one for the
ecosystem's ordering, one for `SEMVER` ranges). A version then needs one binary search to get
its position on the axis, and the OSV rules run on integer positions: a version equal to the
i-th axis point is at 2i+1, one strictly between points i-1 and i is at 2i. Every version at the
same position is affected by the same advisories, so the outcome is computed once per position.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from typing import Any

from seawall.scan.osv import Affected, Range
from seawall.scan.versions import VersionKey, key_function, semver_key

# Event kinds in the order they apply at one version: "introduced X, fixed X" affects nothing.
INTRODUCED, LAST_AFFECTED, FIXED, LIMIT = 0, 1, 2, 3
_KINDS = {"introduced": INTRODUCED, "last_affected": LAST_AFFECTED, "fixed": FIXED, "limit": LIMIT}
BEFORE_ALL = -1  # the position of `introduced: "0"`, below every version

# An outcome: (entry index, lowest fix above the version or None), per affected entry.
Outcome = tuple[tuple[int, str | None], ...]


class Axis:
    """The distinct versions of one ordering, sorted."""

    __slots__ = ("points",)

    def __init__(self, keys: list[VersionKey]) -> None:
        points: list[VersionKey] = []
        for key in sorted(keys):
            if not points or points[-1] < key:  # equal keys (PEP 440 "1.0", "1.0.0") merge
                points.append(key)
        self.points = points

    def position(self, key: VersionKey) -> int:
        index = bisect_left(self.points, key)
        if index < len(self.points) and not key < self.points[index]:
            return 2 * index + 1
        return 2 * index


class _Compiled:
    """One range: events as (position, kind, version text) sorted, limits as positions."""

    __slots__ = ("events", "limits", "semver")

    def __init__(self, events: list[tuple[int, int, str]], limits: list[int], semver: bool) -> None:
        self.events = sorted(events)
        self.limits = limits  # empty when unlimited
        self.semver = semver

    def evaluate(self, at: int) -> tuple[bool, int, str | None]:
        """(affected, position of the lowest fix above `at`, its text) by the OSV rules."""
        if self.limits and not any(at < limit for limit in self.limits):
            return False, 0, None
        affected = False
        for position, kind, text in self.events:
            if position > at:
                if kind == FIXED:  # sorted: the first fix above is the lowest one
                    return affected, position, text if affected else None
                continue
            if kind == INTRODUCED:
                affected = True
            elif kind == FIXED or (kind == LAST_AFFECTED and position != at):
                affected = False
        return affected, 0, None


class PackageRanges:
    """Every affected entry for one (ecosystem key, package name), compiled together."""

    def __init__(self, ecosystem: str, entries: Sequence[Affected]) -> None:
        self.ecosystem = ecosystem
        self.key = key_function(ecosystem)
        parsed = [[self._parse(item) for item in entry.ranges] for entry in entries]
        self.axis = Axis([k for e in parsed for r in e if r and not r[0] for k in _keys(r)])
        self.semver_axis = Axis([k for e in parsed for r in e if r and r[0] for k in _keys(r)])
        self.ranges = [[self._place(r) for r in e if r is not None] for e in parsed]
        self.has_semver = any(r.semver for e in self.ranges for r in e)
        self.texts: dict[str, list[int]] = {}
        self.keys: dict[Any, list[int]] = {}
        for index, entry in enumerate(entries):
            for text in entry.versions:
                self.texts.setdefault(text, []).append(index)
                key = self.key(text)
                if key is not None and _hashable(key):
                    self.keys.setdefault(key, []).append(index)
        self._outcomes: dict[tuple[int | None, int | None], Outcome] = {}

    def _parse(self, item: Range) -> tuple[bool, list[tuple[int, VersionKey, str]]] | None:
        """(semver, [(kind, key, text)]); None when a version cannot be ordered."""
        semver = item.type == "SEMVER"
        events: list[tuple[int, VersionKey, str]] = []
        for event in item.events:
            kind = _KINDS[event.kind]
            if (kind == INTRODUCED and event.version == "0") or (
                kind == LIMIT and event.version == "*"
            ):
                events.append((kind, None, event.version))
                continue
            key = semver_key(event.version) if semver else self.key(event.version)
            if key is None:
                return None
            events.append((kind, key, event.version))
        return semver, events

    def _place(self, parsed: tuple[bool, list[tuple[int, VersionKey, str]]]) -> _Compiled:
        semver, events = parsed
        axis = self.semver_axis if semver else self.axis
        placed: list[tuple[int, int, str]] = []
        limits: list[int] = []
        unlimited = False
        for kind, key, text in events:
            if key is None:
                if kind == LIMIT:
                    unlimited = True  # "*"
                else:
                    placed.append((BEFORE_ALL, kind, text))
            elif kind == LIMIT:
                limits.append(axis.position(key))
            else:
                placed.append((axis.position(key), kind, text))
        return _Compiled(placed, [] if unlimited else limits, semver)

    def affected(self, version: str) -> Outcome:
        """The entries that affect `version`, each with the lowest fix above it."""
        key = self.key(version)
        at = None if key is None else self.axis.position(key)
        semver_at = None
        if self.has_semver:
            semver = semver_key(version)
            semver_at = None if semver is None else self.semver_axis.position(semver)
        outcome = self._outcomes.get((at, semver_at))
        if outcome is None:
            outcome = self._by_position(at, semver_at)
            self._outcomes[(at, semver_at)] = outcome
        listed = self.texts.get(version) or (self.keys.get(key) if _hashable(key) else None)
        if not listed:
            return outcome
        hit = {index for index, _ in outcome}
        extra = tuple((index, None) for index in listed if index not in hit)
        return tuple(sorted(outcome + extra, key=lambda pair: pair[0]))

    def _by_position(self, at: int | None, semver_at: int | None) -> Outcome:
        found: list[tuple[int, str | None]] = []
        for index, ranges in enumerate(self.ranges):
            best: tuple[bool, int, str] | None = None
            hit = False
            for compiled in ranges:
                where = semver_at if compiled.semver else at
                if where is None:
                    continue  # the version cannot be ordered this way
                affected, fix_at, fix = compiled.evaluate(where)
                if affected:
                    hit = True
                    if fix is not None and (best is None or (compiled.semver, fix_at) < best[:2]):
                        best = (compiled.semver, fix_at, fix)
            if hit:
                found.append((index, None if best is None else best[2]))
        return tuple(found)


def _keys(parsed: tuple[bool, list[tuple[int, VersionKey, str]]]) -> list[VersionKey]:
    return [key for _, key, _ in parsed[1] if key is not None]


def _hashable(key: VersionKey) -> bool:
    # univers versions define __eq__ without __hash__: those match the versions list by text.
    return key is not None and type(key).__hash__ is not None
