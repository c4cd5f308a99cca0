"""Garbage collection's table (bench/phases_gc.py) and its targets, after the main table."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.phases_gc import MODES
from bench.report import COLUMNS, SEAWALL, Check, Result, Row, evaluate, verdict_table

RATIO_MAX = 1.2  # the issue: p99 during a pass within 1.2x of idle
PASS_MAX_S = 10.0  # the issue: one pass under 10 s
KINDS = (
    ("get", "manifest GET"),
    ("blob_push", "blob push (POST)"),
    ("manifest_put", "manifest PUT"),
)
LOOPS = {"asyncio": "asyncio loop, as `seawall gc`", "uvloop": "uvloop, as `seawall serve`"}
WHERE = {
    "cli": "`seawall gc`, another process",
    "server": "in the server (POST /api/v1/gc)",
    "none": "no pass (the noise floor)",
}
CHECKED = ("cli", "server")  # "none" is what a ratio reads when nothing runs: shown, not judged


def _n(label: str, path: str, fmt: str = "{:,.0f}") -> Row:
    return Row(label, path, True, fmt, ratio=False)


def _ms(label: str, path: str) -> Row:
    return Row(label, path, False, "{:,.1f}", ratio=False)


def _x(label: str, path: str) -> Row:
    return Row(label, path, False, "{:.2f}", ratio=False)


def rows(o: Result) -> list[Row]:
    blobs, garbage = f"{o.get('gc_blobs', 0):,}", f"{o.get('gc_garbage', 0):,}"
    out = [
        _n(f"Registry: blobs (unreferenced: {garbage})", "pass.asyncio.seeded.blobs"),
        _n("  repositories", "pass.asyncio.seeded.repositories"),
        _n("  reviews queued (unreferenced + kept)", "pass.asyncio.seeded.reviews"),
    ]
    for loop, label in LOOPS.items():
        out += [
            Row(
                f"One pass, s ({blobs} blobs, {garbage} unreferenced; {label})",
                f"pass.{loop}.seconds",
                False,
                "{:.2f}",
                ratio=False,
            ),
            _n("  reviews/s", f"pass.{loop}.reviews_per_s"),
            _n("  blobs removed (with their files)", f"pass.{loop}.blobs_removed"),
            _n("  reviews ending in kept", f"pass.{loop}.kept"),
            _x("  CPU s of the pass's process", f"pass.{loop}.cpu_s"),
            _x("  PostgreSQL CPU s (approx.)", f"pass.{loop}.postgres_cpu_s"),
        ]
    for mode in MODES:
        where = WHERE[mode]
        out += [
            Row(
                f"Passes under load (their time in all), {where}: s"
                if mode != "none"
                else "Load alone, windows where passes would be (the noise floor): s",
                f"latency.{mode}.pass.seconds",
                False,
                "{:.1f}",
                ratio=False,
            ),
            _n("  passes", f"latency.{mode}.pass.passes"),
            _x("  the longest pass, s", f"latency.{mode}.pass.longest_s"),
            _n("  unreferenced blobs removed", f"latency.{mode}.pass.blobs_removed"),
            _n("  reviews/s", f"latency.{mode}.pass.reviews_per_s"),
            _x("  server CPU s per s, idle", f"latency.{mode}.server_cpu_per_s.idle"),
            _x("  server CPU s per s, passes", f"latency.{mode}.server_cpu_per_s.during"),
        ]
        for kind, label in KINDS:
            out += [
                _ms(f"  {label} p50 ms, idle", f"latency.{mode}.idle.{kind}.p50_ms"),
                _ms(f"  {label} p50 ms, during the passes", f"latency.{mode}.during.{kind}.p50_ms"),
                _ms(f"  {label} p99 ms, idle", f"latency.{mode}.idle.{kind}.p99_ms"),
                _ms(f"  {label} p99 ms, during the passes", f"latency.{mode}.during.{kind}.p99_ms"),
                _x(f"  {label} p99 during ÷ idle", f"latency.{mode}.p99_ratio.{kind}"),
                _n(f"  {label} requests, passes", f"latency.{mode}.during.{kind}.requests"),
            ]
    return out


def checks(o: Result) -> list[Check]:
    by_path = {r.path: r for r in rows(o)}
    any_target = dict.fromkeys(SEAWALL, 1.0)  # unused: these checks are absolute
    out = [
        Check(
            f"one pass over {o.get('gc_blobs', 0):,} blobs ({o.get('gc_garbage', 0):,}"
            f" unreferenced) < 10 s ({label})",
            by_path[f"pass.{loop}.seconds"],
            any_target,
            absolute_max=PASS_MAX_S,
        )
        for loop, label in LOOPS.items()
    ]
    for mode in CHECKED:
        for kind, label in KINDS:
            path = f"latency.{mode}.p99_ratio.{kind}"
            text = f"{label} p99 during a pass ≤ 1.2 x idle ({WHERE[mode]})"
            # absolute_max is strict (<); the target allows 1.2 itself.
            out.append(Check(text, by_path[path], any_target, absolute_max=RATIO_MAX + 1e-9))
    return out


def render(results: Result, console: Console) -> list[dict[str, object]]:
    """Print the garbage-collection table and its checks; returns the checks for the JSON."""
    gc = results.get("gc")
    opts = results["options"]
    if not isinstance(gc, dict) or not gc or not isinstance(opts, dict):
        return []
    present = [t for t in SEAWALL if t in gc]
    table = Table(title="Garbage collection", title_justify="left")
    table.add_column("Measure")
    for t in present:
        table.add_column(COLUMNS[t], justify="right")
    for row in rows(opts):
        cells = [row.cell(gc[t]) for t in present]
        if any(c != "—" for c in cells):
            table.add_row(escape(row.label), *(escape(c) for c in cells))
    console.print(table)
    console.print(
        "[dim]Pass: one GarbageCollector.run (grace 1 h, batch 100) in the harness over a"
        " seeded registry of its own, on each event loop; reviews/s counts every review"
        " decided (an unreferenced blob twice: its link, then the blob). Latency: paced"
        " manifest GETs (4 conn, every 20 ms) and pushes (2 conn, every 100 ms: POST ?digest="
        " of a small layer, then its manifest PUT), timed from when each was sent, one load"
        " throughout: windows without a pass and passes (each over a slice of the garbage) in"
        " turn; idle pools the windows without, during the passes' own spans.[/dim]"
    )
    ran = {part for t in present if isinstance(gc[t], dict) for part in gc[t]}
    verdicts = evaluate([c for c in checks(opts) if c.row.path.split(".")[0] in ran], gc)
    verdict_table("Garbage collection targets", verdicts, console)
    for t in present:
        errors = gc[t].get("errors") if isinstance(gc[t], dict) else None
        for part, message in (errors or {}).items():
            console.print(f"[red]{COLUMNS[t]} {part} failed:[/red] {escape(str(message))}")
    return verdicts
