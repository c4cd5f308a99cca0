"""The clock seam: the system clock reads real time; the fake one moves only when told."""

from __future__ import annotations

import time

import pytest

from seawall.domain.clock import SYSTEM_CLOCK, Clock, SystemClock
from tests.support.clock import EPOCH, FakeClock


def test_the_system_clock_reads_the_real_clocks() -> None:
    before_wall, before_mono = time.time(), time.monotonic()
    wall, mono = SYSTEM_CLOCK.now(), SYSTEM_CLOCK.monotonic()
    assert before_wall <= wall <= time.time()
    assert before_mono <= mono <= time.monotonic()
    assert isinstance(SYSTEM_CLOCK, SystemClock)


def test_a_fake_clock_is_frozen_until_advanced() -> None:
    clock: Clock = FakeClock()
    assert clock.now() == clock.now() == EPOCH
    start = clock.monotonic()
    assert isinstance(clock, FakeClock)
    clock.advance(90.5)
    assert clock.now() == EPOCH + 90.5
    assert clock.monotonic() == start + 90.5


def test_a_fake_clock_never_runs_backwards() -> None:
    clock = FakeClock(100.0)
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-1)
    assert clock.now() == 100.0


def test_setting_the_wall_clock_moves_monotonic_forward_only() -> None:
    clock = FakeClock(100.0)
    start = clock.monotonic()
    clock.set(160.0)
    assert (clock.now(), clock.monotonic()) == (160.0, start + 60)
    clock.set(50.0)  # an operator turns the wall clock back
    assert (clock.now(), clock.monotonic()) == (50.0, start + 60)
