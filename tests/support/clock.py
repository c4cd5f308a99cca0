"""`FakeClock`: a `Clock` that moves only when a test moves it, so expiries, leases and windows
are tested by advancing time instead of sleeping."""

from __future__ import annotations

EPOCH = 1_750_000_000.0  # 2025-06-15T15:06:40Z: any fixed instant will do
MONOTONIC_START = 1_000.0  # arbitrary, as a real monotonic clock's origin is; not 0 on purpose


class FakeClock:
    """Wall clock and monotonic clock, both frozen until `advance` or `set`."""

    def __init__(self, start: float = EPOCH) -> None:
        self._now = start
        self._monotonic = MONOTONIC_START

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass on both clocks."""
        if seconds < 0:
            raise ValueError("time does not go backwards; use set() to move the wall clock")
        self._now += seconds
        self._monotonic += seconds

    def set(self, t: float) -> None:
        """Put the wall clock at `t`, as an operator or NTP would. The monotonic clock moves
        forward by the same amount, and never backwards, as a real one never does."""
        self._monotonic += max(0.0, t - self._now)
        self._now = t
