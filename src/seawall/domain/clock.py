"""Time as a parameter.

Expiries, leases, login-failure windows and retention all ask "what time is it?". Asking an
injected `Clock` instead of the `time` module lets one wiring pass the same clock everywhere and
lets tests advance a fake one instead of sleeping. Two readings, as `time` has them: `now()` is
wall-clock seconds since the epoch (stored in the database, compared across processes);
`monotonic()` only measures intervals within this process and never jumps backwards.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Where services, stores and domain objects read the time."""

    def now(self) -> float:
        """Seconds since the epoch (UTC), as `time.time()`."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards, for intervals; as `time.monotonic()`."""
        ...


class SystemClock:
    """The real clock: the process's own `time.time()` and `time.monotonic()`."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM_CLOCK: Clock = SystemClock()


def utc_iso(seconds: float) -> str:
    """A time as the API and the CLI show it: ISO 8601 in UTC, to the second,
    `2026-12-06T19:23:00Z`."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")
