"""Pull counts: which audit rows count as pulls, under which key, and the windows they are
summed over.

A pull counts once, from its `manifest:pulled` audit row (a pull the gate refused leaves a
`pull:blocked` row instead, and is not counted), under its repository, manifest digest, tag
(`BY_DIGEST` when it was pulled by digest) and UTC day. The counts are a roll-up of the audit
log kept beside it (`pull_counts`), so reading "pulls in the last 7 days" is a sum over a few
rows, not a scan of the log, and it survives the log's archiving.

A window is whole UTC days ending today: "the last 7 days" are today and the 6 days before, so
a pull stays in it for between 6 and 7 days.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from seawall.domain.audit import AuditAction, AuditEvent, Outcome
from seawall.domain.digests import is_digest

DAY = 86_400
RECENT_DAYS = 7
MONTH_DAYS = 30
# Rows older than this are pruned, except the newest of each manifest and tag (it holds the
# last pull time); longer than the longest window, so a window never misses a day.
KEEP_DAYS = 35
BY_DIGEST = ""  # the tag of a pull by digest

_PULLED = AuditAction.MANIFEST_PULLED.value
_ALLOWED = Outcome.ALLOWED.value


class PullKey(NamedTuple):
    repository: str
    digest: str
    tag: str  # BY_DIGEST for a pull by digest
    day: int  # UTC days since 1970-01-01


class Tally(NamedTuple):
    pulls: int
    last_at: float  # seconds since the epoch


class PullStats(NamedTuple):
    """The pulls of a manifest or a tag: the last one's time, and how many in each window."""

    last_at: float
    pulls_7d: int
    pulls_30d: int


def day_of(at: float) -> int:
    """The UTC day of a time, as days since 1970-01-01."""
    return int(at // DAY)


def first_day(now: float, days: int) -> int:
    """The first UTC day of the window of `days` days that ends today."""
    return day_of(now) - days + 1


def tally(events: Iterable[AuditEvent]) -> dict[PullKey, Tally]:
    """The pulls among `events`, counted per key. Events are grouped by the date of their stored
    time first, so only the last time of each key is parsed back (the text sorts in time order)."""
    counts: dict[tuple[str, str, str, str], int] = {}
    lasts: dict[tuple[str, str, str, str], str] = {}
    for event in events:
        if event.action != _PULLED or event.outcome != _ALLOWED:
            continue
        repository, digest, reference = event.repository, event.digest, event.reference
        if repository is None or digest is None or reference is None:
            continue
        group = (repository, digest, reference, event.at[:10])
        counts[group] = counts.get(group, 0) + 1
        if event.at > lasts.get(group, ""):
            lasts[group] = event.at
    counted: dict[PullKey, Tally] = {}
    for group, count in counts.items():
        repository, digest, reference, _date = group
        last_at = stored_time(lasts[group])
        tag = BY_DIGEST if is_digest(reference) else reference
        key = PullKey(repository, digest, tag, day_of(last_at))
        before = counted.get(key)
        if before is not None:  # one digest asked for in two spellings
            count, last_at = count + before.pulls, max(last_at, before.last_at)
        counted[key] = Tally(count, last_at)
    return counted


def stored_time(text: str) -> float:
    """An audit row's `at` (`seawall.domain.audit.timestamp`) back as seconds since the epoch."""
    return datetime.fromisoformat(text).timestamp()
