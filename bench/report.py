"""The results table, the issue's targets checked against it, and the JSON file."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

Result = dict[str, object]
SEAWALL = {"seawall-sqlite": "Seawall SQLite", "seawall-postgres": "Seawall PG"}
COLUMNS = {**SEAWALL, "distribution": "Distribution", "nginx": "nginx"}
MB = 1e6  # the "200 MB"; decimal


def lookup(result: object, path: str) -> float | None:
    for key in path.split("."):
        if not isinstance(result, dict) or key not in result:
            return None
        result = result[key]
    if isinstance(result, bool) or not isinstance(result, int | float):
        return None
    return float(result)


@dataclass(frozen=True)
class Row:
    label: str
    path: str
    higher_is_better: bool
    fmt: str = "{:,.0f}"
    scale: float = 1.0
    ratio: bool = True  # show how Seawall compares with Distribution
    requests_path: str | None = None  # annotate the cell with a request count

    def value(self, result: object) -> float | None:
        v = lookup(result, self.path)
        return None if v is None else v * self.scale

    def cell(self, result: object) -> str:
        v = self.value(result)
        if v is None:
            return "—"
        text = self.fmt.format(v)
        if self.requests_path and (n := lookup(result, self.requests_path)) is not None:
            text += f" [{n:.0f}]"
        return text

    def better(self, mine: object, ref: object) -> float | None:
        """How many times better ``mine`` is than ``ref``: > 1 is better, whichever way."""
        a, b = self.value(mine), self.value(ref)
        if a is None or b is None or a <= 0 or b <= 0:
            return None
        return a / b if self.higher_is_better else b / a


def _ms(label: str, path: str, requests: bool = False) -> Row:
    counted = path.rsplit(".", 1)[0] + ".requests" if requests else None
    return Row(label, path, False, "{:,.1f}", 1000.0, requests_path=counted)


def _lat(label: str, path: str) -> Row:
    return Row(label, path, False, "{:.2f}")


def _mb(label: str, path: str) -> Row:
    return Row(label, path, False, "{:,.0f}", 1 / MB)


def rows(o: Result) -> list[Row]:
    tags, repos, conns = f"{o['tags']:,}", f"{o['repos']:,}", o["connections"]
    token_clients = o.get("token_clients", 16)
    return [
        Row(
            f"Upload monolithic MiB/s ({o['blob_count']} x {o['blob_mib']} MiB,"
            f" {o['upload_concurrency']} at once)",
            "upload_monolithic.mib_s",
            True,
        ),
        Row(f"Upload chunked MiB/s ({o['chunk_mib']} MiB PATCHes)", "upload_chunked.mib_s", True),
        Row(f"Blob GET MiB/s ({o['get_concurrency']} at once)", "blob_get.mib_s", True),
        Row("Blob GET ÷ nginx (paired rounds)", "blob_get.vs_nginx", True, "{:.2f}", ratio=False),
        Row(
            f"Blob GET MiB/s (wrk, {o['get_concurrency']} conn, one blob)",
            "blob_get.wrk_mib_s",
            True,
        ),
        Row("Blob GET ÷ nginx (wrk)", "blob_get.wrk_vs_nginx", True, "{:.2f}", ratio=False),
        Row(f"Manifest GET by tag req/s (wrk, {conns} conn) *", "manifest.get.rps", True),
        _lat("  GET p50 ms (wrk)", "manifest.get.p50_ms"),
        _lat("  GET p99 ms (wrk)", "manifest.get.p99_ms"),
        Row(f"Manifest GET by tag req/s (hload, {conns} conn) *", "manifest.get_hload.rps", True),
        _lat("  GET p50 ms (hload)", "manifest.get_hload.p50_ms"),
        _lat("  GET p99 ms (hload)", "manifest.get_hload.p99_ms"),
        Row(f"Manifest HEAD by tag req/s (hload, {conns} conn) *", "manifest.head.rps", True),
        _lat("  HEAD p50 ms", "manifest.head.p50_ms"),
        _lat("  HEAD p99 ms", "manifest.head.p99_ms"),
        Row(
            f"Manifest GET req/s, anonymous, public ns (wrk, {conns} conn)",
            "manifest.anonymous.get.rps",
            True,
            ratio=False,
        ),
        _lat("  anonymous GET p99 ms (wrk)", "manifest.anonymous.get.p99_ms"),
        Row(
            "  GET bearer ÷ anonymous (wrk)",
            "manifest.bearer_vs_anonymous.get",
            True,
            "{:.2f}",
            ratio=False,
        ),
        Row(
            f"Manifest GET req/s, anonymous, public ns (hload, {conns} conn)",
            "manifest.anonymous.get_hload.rps",
            True,
            ratio=False,
        ),
        _lat("  anonymous GET p99 ms (hload)", "manifest.anonymous.get_hload.p99_ms"),
        Row(
            "  GET bearer ÷ anonymous (hload)",
            "manifest.bearer_vs_anonymous.get_hload",
            True,
            "{:.2f}",
            ratio=False,
        ),
        Row(
            f"Token issue tokens/s (GET /token, Basic, {token_clients} clients)",
            "token.tokens_per_s",
            True,
            ratio=False,
        ),
        _lat("  /token p50 ms", "token.p50_ms"),
        _lat("  /token p99 ms", "token.p99_ms"),
        *gate_rows(conns),
        Row(
            f"Create {tags} tags, tags/s ({o['meta_concurrency']} at once)",
            "tags.create_per_s",
            True,
        ),
        _ms(f"List {tags} tags, no n, ms [requests]", "tags.list.seconds", True),
        _ms(f"List {tags} tags, n=100, ms [requests]", "tags.list_paginated.seconds", True),
        Row("Create repositories, repos/s", "catalog.create_per_s", True),
        _ms(f"_catalog, {repos} repos, n={o['repos']}, ms [req]", "catalog.list.seconds", True),
        _ms(f"_catalog, {repos} repos, n=100, ms [req]", "catalog.list_paginated.seconds", True),
        Row("Push one 2 GiB blob MiB/s", "big_blob.push_mib_s", True),
        Row("Pull one 2 GiB blob MiB/s", "big_blob.pull_mib_s", True),
        _mb("Peak RSS MB, 2 GiB push+pull (tree sum)", "big_blob.peak_rss"),
        _mb("  PSS MB, tree sum (shared pages once)", "big_blob.peak_pss"),
        _mb("  RSS MB, largest process", "big_blob.peak_rss_largest_process"),
        _mb("Idle RSS MB after start (tree sum)", "idle_rss"),
        _mb("Idle PSS MB after start (tree sum)", "idle_pss"),
        _mb("Peak RSS MB, whole run (tree sum)", "peak_rss"),
        _mb("Peak PSS MB, whole run (tree sum)", "peak_pss"),
        Row("CPU seconds, measured phases", "cpu_seconds", False, "{:,.1f}", ratio=False),
        Row("CPU seconds, incl. start-up", "cpu_seconds_total", False, "{:,.1f}", ratio=False),
        Row(
            "CPU seconds, PostgreSQL backends (approx.)",
            "postgres_cpu_seconds",
            False,
            "{:,.1f}",
            ratio=False,
        ),
    ]


def gate_rows(conns: object) -> list[Row]:
    """Manifest GET without and with a pull policy (bench/phases_gate.py), wrk then hload."""
    out: list[Row] = []
    for tool, key in (("wrk", "get"), ("hload", "get_hload")):
        out += [
            Row(
                f"Manifest GET req/s, no pull policy ({tool}, {conns} conn)",
                f"gate.off.{key}.rps",
                True,
                ratio=False,
            ),
            Row(
                f"  pull policy on, scanned image ({tool}) †",
                f"gate.on.{key}.rps",
                True,
                ratio=False,
            ),
            Row(f"  on ÷ off ({tool})", f"gate.on_vs_off.{key}", True, "{:.3f}", ratio=False),
            Row(
                f"  pull policy on, scan failed: Warning ({tool}) †",
                f"gate.warn.{key}.rps",
                True,
                ratio=False,
            ),
            Row(f"  warn ÷ off ({tool})", f"gate.warn_vs_off.{key}", True, "{:.3f}", ratio=False),
            _lat(f"  GET p99 ms, off ({tool})", f"gate.off.{key}.p99_ms"),
            _lat(f"  GET p99 ms, on, scanned ({tool})", f"gate.on.{key}.p99_ms"),
            _lat(f"  GET p99 ms, on, Warning ({tool})", f"gate.warn.{key}.p99_ms"),
        ]
    for side, label in (("off", "off"), ("on", "on, scanned"), ("warn", "on, Warning")):
        out.append(
            Row(
                f"  server CPU µs per GET, {label}",
                f"gate.cpu_us_per_get.{side}",
                False,
                ratio=False,
            )
        )
    return out


@dataclass(frozen=True)
class Check:
    text: str
    row: Row
    minimum: dict[str, float]  # target -> least "times better than Distribution"
    absolute_max: float | None = None  # or: the value itself must stay below this
    absolute_min: float | None = None  # or: the value itself must reach this

    def evaluate(self, target: str, results: dict[str, Result]) -> tuple[str, bool] | None:
        mine = results.get(target)
        if self.absolute_max is not None:
            v = self.row.value(mine)
            return None if v is None else (self.row.fmt.format(v), v < self.absolute_max)
        if self.absolute_min is not None:
            v = self.row.value(mine)
            return None if v is None else (self.row.fmt.format(v), v >= self.absolute_min)
        if self.row.path in ("blob_get.vs_nginx", "blob_get.wrk_vs_nginx"):
            v = self.row.value(mine)
            return None if v is None else (f"{v:.2f}", v >= self.minimum[target])
        r = self.row.better(mine, results.get("distribution"))
        return None if r is None else (f"{r:.2f}x", r >= self.minimum[target])


def checks(o: Result) -> list[Check]:
    by_path = {r.path: r for r in rows(o)}
    both = dict.fromkeys(SEAWALL, 1.0)
    speedup = {"seawall-sqlite": 5.0, "seawall-postgres": 3.0}
    return [
        Check(
            "blob GET ≥ 0.95 x nginx (curl)",
            by_path["blob_get.vs_nginx"],
            dict.fromkeys(SEAWALL, 0.95),
        ),
        Check(
            "blob GET ≥ 0.95 x nginx (wrk)",
            by_path["blob_get.wrk_vs_nginx"],
            dict.fromkeys(SEAWALL, 0.95),
        ),
        Check(
            "monolithic upload ≥ 1.5 x Distribution",
            by_path["upload_monolithic.mib_s"],
            dict.fromkeys(SEAWALL, 1.5),
        ),
        Check(
            "manifest GET req/s (wrk) ≥ 5x (SQLite) / 3x (PG) Distribution",
            by_path["manifest.get.rps"],
            speedup,
        ),
        Check("manifest GET p99 (wrk) ≤ Distribution's", by_path["manifest.get.p99_ms"], both),
        Check(
            "manifest GET req/s (hload) ≥ 5x (SQLite) / 3x (PG) Distribution",
            by_path["manifest.get_hload.rps"],
            speedup,
        ),
        Check(
            "manifest GET p99 (hload) ≤ Distribution's",
            by_path["manifest.get_hload.p99_ms"],
            both,
        ),
        Check(
            "manifest HEAD req/s (hload) ≥ 5x (SQLite) / 3x (PG) Distribution",
            by_path["manifest.head.rps"],
            speedup,
        ),
        Check("manifest HEAD p99 (hload) ≤ Distribution's", by_path["manifest.head.p99_ms"], both),
        Check(
            "manifest GET with bearer ≥ 0.8 x anonymous (wrk)",
            by_path["manifest.bearer_vs_anonymous.get"],
            both,
            absolute_min=0.8,
        ),
        Check(
            "manifest GET with bearer ≥ 0.8 x anonymous (hload)",
            by_path["manifest.bearer_vs_anonymous.get_hload"],
            both,
            absolute_min=0.8,
        ),
        Check(
            "token issue ≥ 500 tokens/s (GET /token)",
            by_path["token.tokens_per_s"],
            both,
            absolute_min=500.0,
        ),
        *(
            Check(
                f"manifest GET with a pull policy ≥ 0.9 x without ({what}, {tool})",
                by_path[f"gate.{side}_vs_off.{key}"],
                both,
                absolute_min=0.9,
            )
            for side, what in (("on", "scanned"), ("warn", "Warning"))
            for tool, key in (("wrk", "get"), ("hload", "get_hload"))
        ),
        Check("tag listing (no n) no slower than Distribution", by_path["tags.list.seconds"], both),
        Check(
            "tag listing (n=100) no slower than Distribution",
            by_path["tags.list_paginated.seconds"],
            both,
        ),
        Check(
            "_catalog (n=N, one request) no slower than Distribution",
            by_path["catalog.list.seconds"],
            both,
        ),
        Check(
            "_catalog (n=100) no slower than Distribution",
            by_path["catalog.list_paginated.seconds"],
            both,
        ),
        Check(
            "peak RSS < 200 MB, 2 GiB push+pull: RSS summed over the process tree",
            by_path["big_blob.peak_rss"],
            both,
            absolute_max=200.0,
        ),
        Check(
            "peak RSS < 200 MB, 2 GiB push+pull: PSS summed (shared pages once)",
            by_path["big_blob.peak_pss"],
            both,
            absolute_max=200.0,
        ),
    ]


def evaluate(checks: list[Check], targets: dict[str, Result]) -> list[dict[str, object]]:
    """Each check on each Seawall target there is a result for."""
    verdicts: list[dict[str, object]] = []
    for check in checks:
        for t in SEAWALL:
            if t not in targets:
                continue
            outcome = check.evaluate(t, targets)
            verdict = "n/a" if outcome is None else ("PASS" if outcome[1] else "FAIL")
            shown = "" if outcome is None else outcome[0]
            verdicts.append({"check": check.text, "target": t, "value": shown, "verdict": verdict})
    return verdicts


def verdict_table(title: str, verdicts: list[dict[str, object]], console: Console) -> None:
    if not verdicts:
        return
    out = Table(title=title, title_justify="left")
    for name in ("Check", "Target", "Value", "Verdict"):
        out.add_column(name)
    colour = {"PASS": "green", "FAIL": "red", "n/a": "yellow", "info": "dim"}
    for v in verdicts:
        mark = f"[{colour[str(v['verdict'])]}]{v['verdict']}[/]"
        out.add_row(str(v["check"]), COLUMNS[str(v["target"])], str(v["value"]), mark)
    console.print(out)


def make_console() -> Console:
    return Console() if sys.stdout.isatty() else Console(width=160)


def render(results: Result, console: Console) -> list[dict[str, object]]:
    """Print the comparison table and its target checks (nothing when the run left the
    comparison out); returns the checks for the JSON file."""
    opts = results["options"]
    targets = results["targets"]
    assert isinstance(opts, dict) and isinstance(targets, dict)
    present = [t for t in COLUMNS if t in targets]
    if not present:
        return []
    table = Table(title="Seawall benchmark", title_justify="left")
    table.add_column("Measure")
    for t in present:
        table.add_column(COLUMNS[t], justify="right")
    ratio_cols = [t for t in SEAWALL if t in targets] if "distribution" in targets else []
    for t in ratio_cols:
        table.add_column(f"{COLUMNS[t].split()[1]} vs Dist", justify="right", style="bold")
    for row in rows(opts):
        cells = [row.label] + [row.cell(targets[t]) for t in present]
        for t in ratio_cols:
            r = row.better(targets[t], targets["distribution"]) if row.ratio else None
            cells.append("" if r is None else f"{r:.2f}x")
        table.add_row(*(escape(c) for c in cells))
    console.print(table)
    console.print(
        "[dim]vs Dist: how many times better than Distribution (higher throughput, or lower"
        " latency / time / RSS); > 1 is better. \\[n]: requests one listing took. MB = 10^6 B."
        " RSS and CPU cover each server's whole process tree.[/dim]"
    )
    if any(t in targets for t in SEAWALL):
        console.print(
            "[dim]* Seawall requires credentials: its manifest rows marked * (and their ratios"
            " to Distribution, which has no auth) are taken with a bearer token from /token on a"
            " private namespace, as a registry in real use is private; the anonymous rows pull"
            " the same image from a public namespace without credentials, paired with them."
            " Seawall's uploads, blob GETs, tags and 2 GiB blob carry a bearer token too (one"
            " per phase); _catalog and /token the admin's Basic credentials, which every server"
            " process has checked (argon2) just before.[/dim]"
        )
    for t in present:
        if lookup(targets[t], "tags.list_paginated.requests") == 1:
            console.print(
                f"[dim]{COLUMNS[t]} ignored n=100 on tags/list: one request returned every tag,"
                " so its n=100 figure is a single unpaginated request.[/dim]"
            )
    for t in SEAWALL:
        gate = targets.get(t, {}).get("gate") if isinstance(targets.get(t), dict) else None
        if isinstance(gate, dict) and isinstance(gate.get("warning"), dict):
            seen = gate["warning"]
            how = gate.get("policy_set", {}).get("via", "?")
            console.print(
                f"[dim]† {COLUMNS[t]} pull gate: policy set via {how}; verdicts stored before"
                f" the runs: scanned image {'allow' if seen.get('on') is None else 'warn'},"
                f" the other {'allow' if seen.get('warn') is None else 'warn'}; its Warning"
                f" header: {escape(str(seen.get('warn')))}[/dim]"
            )
    verdicts = evaluate(checks(opts), targets)
    verdict_table("Targets from the issue", verdicts, console)
    for t in present:
        errors = targets[t].get("errors") if isinstance(targets[t], dict) else None
        for phase, message in (errors or {}).items():
            console.print(f"[red]{COLUMNS[t]} {phase} failed:[/red] {escape(str(message))}")
    return verdicts


def footer(results: Result, console: Console) -> None:
    """The machine's other load during the run, and how long it took."""
    machine = results.get("machine")
    if isinstance(machine, dict) and "other_cpu_seconds" in machine:
        share = float(machine["other_share"])
        style = "yellow" if share > 0.05 else "dim"
        console.print(
            f"[{style}]Other processes used {machine['other_cpu_seconds']:.0f} CPU-s during the"
            f" run ({share:.0%} of the machine; PostgreSQL's work for Seawall PG included);"
            f" load average before: {machine['loadavg_before']:.2f}.[/{style}]"
        )
    console.print(f"Total elapsed: {results['elapsed_s']:.1f} s")


def write_json(results: Result, verdicts: list[dict[str, object]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results | {"checks": verdicts}, indent=2, default=str) + "\n")
