"""On SQLite a pass sizes its batches to hold the one writer about `SQLITE_BATCH_SECONDS`;
on PostgreSQL (row locks) it keeps the configured size."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from seawall.services.gc import SQLITE_BATCH_SECONDS, GarbageCollector


def _collector(dialect: str, batch: int = 100) -> GarbageCollector:
    store: Any = SimpleNamespace(backend=SimpleNamespace(dialect=dialect))
    return GarbageCollector(
        store,
        None,
        None,
        None,  # type: ignore[arg-type]
        grace_seconds=3600,
        interval_seconds=600,
        batch=batch,
    )


def test_sqlite_batches_shrink_when_slow_and_grow_back_to_the_setting() -> None:
    gc = _collector("sqlite")
    assert gc._next_size(100, SQLITE_BATCH_SECONDS * 4) == 50
    assert gc._next_size(1, SQLITE_BATCH_SECONDS * 4) == 1
    assert gc._next_size(40, SQLITE_BATCH_SECONDS * 0.75) == 40
    assert gc._next_size(40, SQLITE_BATCH_SECONDS / 10) == 50
    assert gc._next_size(96, SQLITE_BATCH_SECONDS / 10) == 100


def test_postgres_batches_keep_the_configured_size() -> None:
    gc = _collector("postgresql")
    assert gc._next_size(100, 10.0) == 100


def test_sqlite_pauses_longer_while_others_write() -> None:
    gc = _collector("sqlite")
    gc.store.others_wrote = True
    assert gc._pause_factor() == 9.0
    gc.store.others_wrote = False
    assert gc._pause_factor() == 1.0


def test_postgres_pauses_alike_either_way() -> None:
    gc = _collector("postgresql")
    for others_wrote in (True, False):
        gc.store.others_wrote = others_wrote
        assert gc._pause_factor() == 3.0
