"""The scanner's tables (bench/phases_scan.py) and the issue's two targets for it."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.report import COLUMNS, SEAWALL, Result, lookup

MIB = 1024**2
MIN_MIB_S = 150.0
MAX_REMATCH_S = 10.0
COPIES = (("plain", "plain tar"), ("gzip", "gzip"), ("zstd", "zstd"))


def _fmt(value: float | None, fmt: str) -> str:
    return "—" if value is None else fmt.format(value)


def _scanner_rows(scanner: Result) -> list[tuple[str, str, str]]:
    """(label, key under each copy, format)."""
    rounds = lookup(scanner, "plain.rounds") or 0
    return [
        (f"Analyze MiB/s, wall (best of {rounds:.0f})", "mib_s", "{:,.1f}"),
        ("  MiB/s, wall, median", "median_mib_s", "{:,.1f}"),
        ("  MiB per CPU-second (one thread)", "best_cpu_mib_s", "{:,.1f}"),
        ("  analyze s (wall)", "analyze_s", "{:.2f}"),
        ("  analyze CPU s", "analyze_cpu_s", "{:.2f}"),
        ("Assemble s", "assemble_s", "{:.3f}"),
        ("Match s (cold index)", "match_s", "{:.3f}"),
        ("Seconds per image (analyze + assemble + match)", "total_s", "{:.2f}"),
        ("  CPU s per image", "total_cpu_s", "{:.2f}"),
        ("  median s per image", "median_total_s", "{:.2f}"),
        ("Layer MiB stored (compressed)", "compressed_bytes", "{:,.1f}"),
        ("Packages / vulnerabilities found", "packages", "{:,.0f}"),
    ]


def _scanner_table(scanner: Result, console: Console) -> None:
    layer = scanner.get("layer")
    if not isinstance(layer, dict):
        return
    title = (
        f"Image scanner, one thread: a {layer['bytes'] / MIB:,.0f} MiB layer of this machine's"
        f" files ({layer['files']:,} files, {layer['entries']:,} entries)"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("Measure")
    copies = [(key, label) for key, label in COPIES if isinstance(scanner.get(key), dict)]
    for _, label in copies:
        table.add_column(label, justify="right")
    table.add_column("small image (2 gzip layers)", justify="right")
    for label, key, fmt in _scanner_rows(scanner):
        cells = []
        for copy in [k for k, _ in copies] + ["small"]:
            value = lookup(scanner, f"{copy}.{key}")
            if key == "compressed_bytes" and value is not None:
                value /= MIB
            text = _fmt(value, fmt)
            if key == "packages":
                text += f" / {_fmt(lookup(scanner, f'{copy}.vulnerabilities'), fmt)}"
            cells.append(text)
        table.add_row(escape(label), *cells)
    console.print(table)
    small = lookup(scanner, "small.bytes")
    console.print(
        f"[dim]Layer: {', '.join(map(str, layer['sources']))} (and etc/os-release -> ../usr/lib),"
        f" capped; gzip copy: {layer['gzip']} ({layer['gzip_bytes'] / MIB:,.0f} MiB), zstd copy:"
        f" {layer['zstd']} ({layer['zstd_bytes'] / MIB:,.0f} MiB). MiB = uncompressed tar bytes."
        f" Small image: {_fmt(None if small is None else small / MIB, '{:.1f}')} MiB of tar."
        f" Each round matches against a fresh index of"
        f" {lookup(scanner, 'index.advisories') or 0:,.0f} OSV records.[/dim]"
    )
    profile = scanner.get("profile")
    if isinstance(profile, dict):
        prof = Table(
            title=f"Where the time goes: analyze_layer, plain tar, cProfile"
            f" ({profile['total_s']:.1f} s profiled)",
            title_justify="left",
        )
        for name in ("Function", "Calls", "Own s", "Cumulative s"):
            prof.add_column(name, justify="left" if name == "Function" else "right")
        for entry in profile["cumulative"][:10]:
            prof.add_row(
                escape(str(entry["function"])),
                f"{entry['calls']:,}",
                f"{entry['tottime_s']:.2f}",
                f"{entry['cumtime_s']:.2f}",
            )
        console.print(prof)


def _rematch_table(rematch: dict[str, Result], console: Console) -> list[str]:
    present = [t for t in SEAWALL if t in rematch]
    if not present:
        return []
    first = rematch[present[0]]
    table = Table(
        title=f"Re-matching {first['reports']:,} stored inventories after an import",
        title_justify="left",
    )
    table.add_column("Measure")
    for t in present:
        table.add_column(COLUMNS[t], justify="right")
    rows = (
        ("OSV records imported", "records", "{:,.0f}"),
        ("  import s", "import_s", "{:.1f}"),
        ("Packages per inventory", "packages_per_inventory", "{:,.0f}"),
        ("Index load s (VulnStore.load_index)", "index_load_s", "{:.2f}"),
        ("Re-match s (rematch_all)", "rematch_s", "{:.2f}"),
        ("  harness CPU s, re-match", "rematch_cpu_s", "{:.2f}"),
        ("Total s (load + re-match)", "total_s", "{:.2f}"),
        ("Inventories/s", "inventories_per_s", "{:,.0f}"),
        ("Vulnerabilities found", "vulnerabilities", "{:,.0f}"),
        ("  per inventory", "vulnerabilities_per_inventory", "{:,.1f}"),
        ("  inventories with any", "inventories_with_vulnerabilities", "{:,.0f}"),
    )
    for label, key, fmt in rows:
        table.add_row(escape(label), *(_fmt(lookup(rematch[t], key), fmt) for t in present))
    console.print(table)
    return present


def checks(scan: Result) -> list[dict[str, object]]:
    verdicts: list[dict[str, object]] = []

    def add(text: str, target: str, value: float | None, ok: bool, fmt: str) -> None:
        verdict = "n/a" if value is None else ("PASS" if ok else "FAIL")
        shown = "" if value is None else fmt.format(value)
        verdicts.append({"check": text, "target": target, "value": shown, "verdict": verdict})

    for key, label in COPIES[:2]:
        value = lookup(scan, f"scanner.{key}.best_cpu_mib_s")
        add(
            f"scanner ≥ {MIN_MIB_S:.0f} MiB/s on one core, {label} (MiB per CPU-second)",
            "scanner",
            value,
            value is not None and value >= MIN_MIB_S,
            "{:,.1f}",
        )
    errors = scan.get("errors")
    for t in SEAWALL:
        value = lookup(scan, f"rematch.{t}.total_s")
        if value is not None or (isinstance(errors, dict) and f"rematch {t}" in errors):
            count = lookup(scan, f"rematch.{t}.reports") or 1000
            add(
                f"re-match {count:,.0f} inventories < {MAX_REMATCH_S:.0f} s"
                " (index load + re-match)",
                t,
                value,
                value is not None and value < MAX_REMATCH_S,
                "{:.2f} s",
            )
    return verdicts


def render(results: Result, console: Console) -> list[dict[str, object]]:
    """Print the scanner's tables and its checks; returns the checks for the JSON file."""
    scan = results.get("scan")
    if not isinstance(scan, dict):
        return []
    scanner = scan.get("scanner")
    if isinstance(scanner, dict):
        _scanner_table(scanner, console)
    rematch = scan.get("rematch")
    if isinstance(rematch, dict):
        _rematch_table(rematch, console)
    verdicts = checks(scan)
    names = {"scanner": "Scanner", **COLUMNS}
    out = Table(title="Scanner targets", title_justify="left")
    for name in ("Check", "Target", "Value", "Verdict"):
        out.add_column(name)
    colour = {"PASS": "green", "FAIL": "red", "n/a": "yellow"}
    for v in verdicts:
        mark = f"[{colour[str(v['verdict'])]}]{v['verdict']}[/]"
        out.add_row(escape(str(v["check"])), names[str(v["target"])], str(v["value"]), mark)
    console.print(out)
    console.print(
        "[dim]Throughput is checked per CPU-second of the single scanning thread (what one core"
        " does; the wall figures above include time the machine's other load took).[/dim]"
    )
    for part, message in (scan.get("errors") or {}).items():
        console.print(f"[red]scan {part} failed:[/red] {escape(str(message))}")
    return verdicts
