"""The console's table (bench/phases_console.py) and the issue's target: every page's server time
under 150 ms at p95 on SQLite and PostgreSQL."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.phases_console import TARGET_P95_S
from bench.report import COLUMNS, SEAWALL, Result


def _cell(page: object) -> str:
    if not isinstance(page, dict):
        return "—"
    if page.get("status") == 404:
        return "not built"
    return f"{page['p95_s'] * 1000:.0f} / {page['median_s'] * 1000:.0f}"


def checks(console: Result) -> list[dict[str, object]]:
    verdicts: list[dict[str, object]] = []
    for t in SEAWALL:
        result = console.get(t)
        if not isinstance(result, dict):
            continue
        for label, page in result["pages"].items():
            if page.get("status") == 404:
                continue
            value = page["p95_s"]
            verdicts.append(
                {
                    "check": f"console page p95 < {TARGET_P95_S * 1000:.0f} ms: {label.strip()}",
                    "target": t,
                    "value": f"{value * 1000:.0f} ms",
                    "verdict": "PASS" if value < TARGET_P95_S else "FAIL",
                }
            )
    return verdicts


def render(results: Result, console: Console) -> list[dict[str, object]]:
    data = results.get("console")
    if not isinstance(data, dict):
        return []
    present = [t for t in SEAWALL if isinstance(data.get(t), dict)]
    if present:
        first = data[present[0]]
        seeded = first["seeded"]
        table = Table(
            title=f"Console pages, p95 / median ms ({seeded['repositories']:,} repositories,"
            f" {seeded['big_tags']:,} tags in one, {seeded['big_vulns']:,} vulnerabilities in"
            " one report)",
            title_justify="left",
        )
        table.add_column("Page")
        for t in present:
            table.add_column(COLUMNS[t], justify="right")
        for label in first["pages"]:
            table.add_row(escape(label), *(_cell(data[t]["pages"].get(label)) for t in present))
        console.print(table)
    verdicts = checks(data)
    if verdicts:
        out = Table(title="Console targets", title_justify="left")
        for name in ("Check", "Target", "Value", "Verdict"):
            out.add_column(name)
        colour = {"PASS": "green", "FAIL": "red"}
        for v in verdicts:
            mark = f"[{colour[str(v['verdict'])]}]{v['verdict']}[/]"
            out.add_row(escape(str(v["check"])), COLUMNS[str(v["target"])], str(v["value"]), mark)
        console.print(out)
    for target, message in (data.get("errors") or {}).items():
        console.print(f"[red]console {target} failed:[/red] {escape(str(message))}")
    return verdicts
