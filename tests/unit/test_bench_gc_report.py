"""The garbage-collection part's report (bench/report_gc.py): the noise-floor mode is shown
beside the passes and never judged; the options take it, and only the modes there are."""

from __future__ import annotations

import io
import time

import pytest
from bench.options import parse_args
from bench.report_gc import checks, render, rows
from rich.console import Console


def _latency(ratio: float) -> dict[str, object]:
    stats = {"p50_ms": 1.0, "p99_ms": 5.0 * ratio, "requests": 100}
    kinds = ("get", "blob_push", "manifest_put")
    return {
        "pass": {"seconds": 40.0},
        "idle": {k: {"p50_ms": 1.0, "p99_ms": 5.0, "requests": 100} for k in kinds},
        "during": {k: stats for k in kinds},
        "p99_ratio": dict.fromkeys(kinds, ratio),
        "server_cpu_per_s": {"idle": 0.4, "during": 0.4},
    }


def test_the_noise_floor_is_shown_and_not_judged() -> None:
    options = {"gc_blobs": 100_000, "gc_garbage": 1_000}
    paths = {row.path for row in rows(options)}
    assert "latency.none.p99_ratio.blob_push" in paths
    judged = {check.row.path for check in checks(options)}
    assert "latency.server.p99_ratio.blob_push" in judged
    assert not any(path.startswith("latency.none.") for path in judged)

    results = {
        "options": options,
        "gc": {"seawall-sqlite": {"latency": {"server": _latency(1.1), "none": _latency(1.5)}}},
    }
    out = io.StringIO()
    verdicts = render(results, Console(file=out, width=250))
    assert "the noise floor" in out.getvalue()
    server = [v for v in verdicts if "in the server" in str(v["check"])]
    assert [v["verdict"] for v in server] == ["PASS"] * 3
    assert not any("noise" in str(v["check"]) for v in verdicts)


def test_the_modes_given_are_the_modes_run() -> None:
    assert parse_args(["--only", "gc-latency"]).gc_modes == ["cli", "server"]
    assert parse_args(["--only", "gc-latency", "--gc-modes", "server,none"]).gc_modes == [
        "server",
        "none",
    ]
    with pytest.raises(SystemExit):
        parse_args(["--only", "gc-latency", "--gc-modes", "idle"])


def test_the_passes_under_load_take_the_queue_in_slices() -> None:
    """Each grace ends just after its slice of the seeded queue; the last takes the rest."""
    from bench.gc_db import Seeded
    from bench.phases_gc import GRACE, _graces

    now = time.time()
    first, last = now - 7200 - 100, now - 7200  # a review every 10 ms for 100 s
    seeded = Seeded(0, 0, 0, 0, 0, 0, [], 0, 0, 0, 0, [], [], queued=(first, last))
    graces = [grace() for grace in _graces(seeded, 4)]
    assert graces[-1] == GRACE
    cutoffs = [time.time() - int(g.removesuffix("s")) for g in graces[:-1]]
    for cutoff, end in zip(cutoffs, (first + 25, first + 50, first + 75), strict=True):
        assert end <= cutoff <= end + 1.5  # whole seconds: just after the slice ends
    assert [grace() for grace in _graces(seeded, 1)] == [GRACE]
