"""The inventory's table (bench/phases_inventory.py) and the issue's target for it: the full JSON
inventory of 10,000 repositories x 5 tags in under 2 s, on SQLite and PostgreSQL."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.report import COLUMNS, SEAWALL, Result, lookup

MB = 1e6
MAX_SECONDS = 2.0
QUERIES = ("linked", "tags", "blob_references", "blob_sizes", "children", "summaries", "pulls")


def _fmt(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def _table(inventory: Result, present: list[str], console: Console) -> None:
    first = inventory[present[0]]
    assert isinstance(first, dict)
    seeded = first["seeded"]
    title = (
        f"Inventory: {seeded['repositories']:,} repositories, {seeded['images']:,} images"
        f" ({seeded['tags']:,} tags, {seeded['blobs']:,} blobs, {seeded['references']:,}"
        " references)"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("Measure")
    for t in present:
        table.add_column(COLUMNS[t], justify="right")
    rounds = lookup(first, "api.rounds") or 0
    rows: list[tuple[str, str, str, float]] = [
        (f"GET /api/v1/inventory s, median of {rounds:.0f}", "api.median_s", "{:.2f}", 1),
        ("  min / max s", "api.min_s", "{:.2f}", 1),
        ("  answer MB", "api.bytes", "{:,.1f}", 1 / MB),
        ("  server CPU s, all requests", "api.server_cpu_s", "{:.1f}", 1),
        ("  server peak RSS MB", "api.server_peak_rss", "{:,.0f}", 1 / MB),
        ("In process: rows + JSON s, median", "service.median_s", "{:.2f}", 1),
        ("  rows s (reads and rows)", "service.rows_median_s", "{:.2f}", 1),
        ("  JSON s (to_json)", "service.json_median_s", "{:.2f}", 1),
        ("  CPU s of this process", "service.cpu_median_s", "{:.2f}", 1),
        *((f"  read {q} s", f"service.queries.{q}", "{:.3f}", 1.0) for q in QUERIES),
        ("Saved report (JSON + CSV, fsynced) s", "save.seconds", "{:.2f}", 1),
        ("  JSON MB", "save.json_bytes", "{:,.1f}", 1 / MB),
        ("Seeding s (bulk insert)", "seed_s", "{:.1f}", 1),
    ]
    for label, path, fmt, scale in rows:
        cells = []
        for t in present:
            value = lookup(inventory[t], path)
            if path == "api.min_s" and value is not None:
                top = lookup(inventory[t], "api.max_s")
                cells.append(f"{value:.2f} / {_fmt(top, '{:.2f}')}")
                continue
            cells.append(_fmt(None if value is None else value * scale, fmt))
        table.add_row(escape(label), *cells)
    console.print(table)


def checks(inventory: Result) -> list[dict[str, object]]:
    verdicts: list[dict[str, object]] = []
    errors = inventory.get("errors")
    for t in SEAWALL:
        value = lookup(inventory, f"{t}.api.median_s")
        if value is None and not (isinstance(errors, dict) and t in errors):
            continue
        repos = lookup(inventory, f"{t}.seeded.repositories") or 10_000
        verdict = "n/a" if value is None else ("PASS" if value < MAX_SECONDS else "FAIL")
        verdicts.append(
            {
                "check": f"full JSON inventory of {repos:,.0f} repositories < {MAX_SECONDS:.0f} s"
                " (GET /api/v1/inventory, median)",
                "target": t,
                "value": "" if value is None else f"{value:.2f} s",
                "verdict": verdict,
            }
        )
    return verdicts


def render(results: Result, console: Console) -> list[dict[str, object]]:
    """Print the inventory's table and its check; returns the checks for the JSON file."""
    inventory = results.get("inventory")
    if not isinstance(inventory, dict):
        return []
    present = [t for t in SEAWALL if isinstance(inventory.get(t), dict)]
    if present:
        _table(inventory, present, console)
    verdicts = checks(inventory)
    if verdicts:
        out = Table(title="Inventory target", title_justify="left")
        for name in ("Check", "Target", "Value", "Verdict"):
            out.add_column(name)
        colour = {"PASS": "green", "FAIL": "red", "n/a": "yellow"}
        for v in verdicts:
            mark = f"[{colour[str(v['verdict'])]}]{v['verdict']}[/]"
            out.add_row(escape(str(v["check"])), COLUMNS[str(v["target"])], str(v["value"]), mark)
        console.print(out)
    for target, message in (inventory.get("errors") or {}).items():
        console.print(f"[red]inventory {target} failed:[/red] {escape(str(message))}")
    return verdicts
