"""The project's hypothesis settings: the same examples on every run (CI stays deterministic), no
per-example deadline (a loaded CI machine is slow, not wrong); generating them is never the slow
part. Tests that want more or fewer examples override `max_examples` on top of `FUZZ`."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

FUZZ = settings(
    deadline=None,
    max_examples=200,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
