"""On SQLite a pass sizes its batches to hold the one writer about `SQLITE_BATCH_SECONDS`,
and `SQLITE_BUSY_BATCH_SECONDS` with a longer pause while the registry is busy (others wrote
within `BUSY_MEMORY_SECONDS`); on PostgreSQL (row locks) it keeps the configured size and
pause."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from seawall.services.gc import (
    BUSY_MEMORY_SECONDS,
    SQLITE_BATCH_SECONDS,
    SQLITE_BUSY_BATCH_SECONDS,
    GarbageCollector,
)
from tests.support.clock import FakeClock


def _collector(dialect: str, clock: FakeClock | None = None, batch: int = 100) -> GarbageCollector:
    store: Any = SimpleNamespace(backend=SimpleNamespace(dialect=dialect))
    return GarbageCollector(
        store,
        None,
        None,
        None,  # type: ignore[arg-type]
        grace_seconds=3600,
        interval_seconds=600,
        batch=batch,
        clock=clock or FakeClock(),
    )


def test_sqlite_batches_shrink_when_slow_and_grow_back_to_the_setting() -> None:
    gc = _collector("sqlite")  # nobody else has written
    assert gc._next_size(100, SQLITE_BATCH_SECONDS * 4) == 50
    assert gc._next_size(1, SQLITE_BATCH_SECONDS * 4) == 1
    assert gc._next_size(40, SQLITE_BATCH_SECONDS * 0.75) == 40
    assert gc._next_size(40, SQLITE_BATCH_SECONDS / 10) == 50
    assert gc._next_size(96, SQLITE_BATCH_SECONDS / 10) == 100


def test_sqlite_batches_hold_the_writer_shorter_while_others_write() -> None:
    gc = _collector("sqlite")
    assert SQLITE_BUSY_BATCH_SECONDS < SQLITE_BATCH_SECONDS / 2
    held = SQLITE_BUSY_BATCH_SECONDS * 1.2  # too long only while others write
    gc._note_others(True)
    assert gc._next_size(40, held) == 20
    assert gc._next_size(40, SQLITE_BUSY_BATCH_SECONDS * 0.75) == 40
    assert gc._next_size(40, SQLITE_BUSY_BATCH_SECONDS / 10) == 50
    gc.clock.advance(BUSY_MEMORY_SECONDS + 0.01)  # type: ignore[attr-defined]
    assert gc._next_size(40, held) == 50


def test_postgres_batches_keep_the_configured_size() -> None:
    gc = _collector("postgresql")
    assert gc._next_size(100, 10.0) == 100
    gc._note_others(True)
    assert gc._next_size(100, 10.0) == 100


def test_sqlite_pauses_longer_while_others_write_and_for_a_while_after() -> None:
    clock = FakeClock()
    gc = _collector("sqlite", clock)
    assert gc._pause_factor() == 1.0  # a quiet registry: as long as the batch took
    gc._note_others(True)
    assert gc._pause_factor() == 9.0
    # A batch that finds nobody wrote since the one before does not make it quiet: at ~100
    # commits a second, two gaps of ~10 ms in five have none.
    clock.advance(BUSY_MEMORY_SECONDS / 2)
    gc._note_others(False)
    assert gc._pause_factor() == 9.0
    gc._note_others(True)  # seen again: busy for another BUSY_MEMORY_SECONDS from now
    clock.advance(BUSY_MEMORY_SECONDS - 0.01)
    assert gc._pause_factor() == 9.0
    clock.advance(0.02)
    gc._note_others(False)
    assert gc._pause_factor() == 1.0


def test_postgres_pauses_alike_either_way() -> None:
    gc = _collector("postgresql")
    assert gc._pause_factor() == 3.0
    gc._note_others(True)
    assert gc._pause_factor() == 3.0
