"""The audit log's table (bench/phases_audit.py) and its targets, after the main table."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.report import COLUMNS, SEAWALL, Check, Result, Row, evaluate, verdict_table


def _n(label: str, path: str, fmt: str = "{:,.0f}") -> Row:
    return Row(label, path, True, fmt, ratio=False)


def _ms(label: str, path: str) -> Row:
    return Row(label, path, False, "{:,.1f}", ratio=False)


def rows(o: Result) -> list[Row]:
    conns = o["connections"]
    out = []
    for tool, key in (("wrk", "get"), ("hload", "get_hload")):
        out += [
            _n(f"Manifest GET req/s, pull events on ({tool}, {conns} conn)", f"pulls.on.{key}.rps"),
            _n(f"Manifest GET req/s, pull events off ({tool})", f"pulls.off.{key}.rps"),
            _n(f"  on ÷ off ({tool})", f"pulls.on_vs_off.{key}", "{:.3f}"),
            _ms(f"  GET p99 ms, on ({tool})", f"pulls.on.{key}.p99_ms"),
            _ms(f"  GET p99 ms, off ({tool})", f"pulls.off.{key}.p99_ms"),
        ]
    out += [
        _n("manifest:pulled rows written (on)", "pulls.pulled.rows"),
        _n("  GETs answered (on)", "pulls.pulled.requests"),
        _n("  rows ÷ GETs answered", "pulls.pulled.share", "{:.4f}"),
        _ms("  writer drained after a run within, s", "pulls.pulled.drain_s_max"),
        _n("Server CPU µs per GET, on", "pulls.cpu_us_per_get.on"),
        _n("Server CPU µs per GET, off", "pulls.cpu_us_per_get.off"),
        _n("PostgreSQL CPU µs per GET, on (approx.)", "pulls.postgres_cpu_us_per_get.on"),
        _n("PostgreSQL CPU µs per GET, off (approx.)", "pulls.postgres_cpu_us_per_get.off"),
        _n(
            f"Audit rows appended ({o['audit_repos']:,} repos, {o['audit_batch']:,} per append)",
            "list.fill.rows",
        ),
        _n("  append rows/s (chain + insert)", "list.fill.append_rows_per_s"),
        _ms(
            "Newest 100 of a repository, AuditStore.query, median ms",
            "list.queries.repository.median_ms",
        ),
        _ms("  p95 ms", "list.queries.repository.p95_ms"),
        _ms("  GET /api/v1/audit?repository=R, median ms", "list.api.median_ms"),
        _ms("  p95 ms", "list.api.p95_ms"),
        _ms("  seawall audit list --repository R --json, median ms", "list.cli.median_ms"),
        _ms("  p95 ms", "list.cli.p95_ms"),
        _ms("  of which Python start + imports, median ms", "list.cli.startup.median_ms"),
    ]
    for kind, label in (
        ("namespace", "a namespace"),
        ("actor", "an actor"),
        ("action", "an action (tag:created, 1.5 %)"),
        ("repository_action", "a repository and action (tag:moved)"),
        ("repository_last_day", "a repository, last 24 h"),
        ("everything", "no filter"),
    ):
        out += [
            _ms(f"Newest 100 of {label}, store, median ms", f"list.queries.{kind}.median_ms"),
            _ms("  p95 ms", f"list.queries.{kind}.p95_ms"),
        ]
    return out


def checks(o: Result) -> list[Check]:
    by_path = {r.path: r for r in rows(o)}
    any_target = dict.fromkeys(SEAWALL, 1.0)  # unused: these checks are absolute

    def at_least(text: str, path: str, value: float) -> Check:
        return Check(text, by_path[path], any_target, absolute_min=value)

    def below(text: str, path: str, value: float) -> Check:
        return Check(text, by_path[path], any_target, absolute_max=value)

    return [
        at_least("manifest GET, pull events on ≥ 0.9 x off (wrk)", "pulls.on_vs_off.get", 0.9),
        at_least(
            "manifest GET, pull events on ≥ 0.9 x off (hload)", "pulls.on_vs_off.get_hload", 0.9
        ),
        at_least("every GET answered has its manifest:pulled row", "pulls.pulled.share", 1.0),
        below(
            "audit list by repository p95 < 100 ms: AuditStore.query",
            "list.queries.repository.p95_ms",
            100.0,
        ),
        below("audit list by repository p95 < 100 ms: GET /api/v1/audit", "list.api.p95_ms", 100.0),
        below(
            "audit list by repository p95 < 100 ms: seawall audit list (whole command,"
            " Python start included)",
            "list.cli.p95_ms",
            100.0,
        ),
    ]


def render(results: Result, console: Console) -> list[dict[str, object]]:
    """Print the audit table and its checks; returns the checks for the JSON file."""
    audit = results.get("audit")
    opts = results["options"]
    if not isinstance(audit, dict) or not audit or not isinstance(opts, dict):
        return []
    present = [t for t in SEAWALL if t in audit]
    table = Table(title="Audit log", title_justify="left")
    table.add_column("Measure")
    for t in present:
        table.add_column(COLUMNS[t], justify="right")
    for row in rows(opts):
        cells = [row.cell(audit[t]) for t in present]
        if any(c != "—" for c in cells):
            table.add_row(escape(row.label), *(escape(c) for c in cells))
    console.print(table)
    console.print(
        "[dim]Pull events on/off: two servers alike but for SEAWALL_AUDIT_PULL_EVENTS, the same"
        " bearer GETs as the main table's manifest rows, in alternating rounds (medians);"
        " rows ÷ GETs may exceed 1 by the requests in flight when a load run stopped."
        " Audit list: the newest 100 rows, each query on another repository; the command's"
        " time includes starting Python.[/dim]"
    )
    for t in present:
        for name in ("api", "cli"):
            part = audit[t].get("list", {}).get(name) if isinstance(audit[t], dict) else None
            if isinstance(part, dict) and part.get("available") is False:
                console.print(f"[yellow]{COLUMNS[t]}: no {name} for the audit log yet.[/yellow]")
    ran = {part for t in present if isinstance(audit[t], dict) for part in audit[t]}
    verdicts = evaluate([c for c in checks(opts) if c.row.path.split(".")[0] in ran], audit)
    verdict_table("Audit log targets", verdicts, console)
    for t in present:
        errors = audit[t].get("errors") if isinstance(audit[t], dict) else None
        for part, message in (errors or {}).items():
            console.print(f"[red]{COLUMNS[t]} {part} failed:[/red] {escape(str(message))}")
    return verdicts
