"""The S3 part's table (bench/phases_s3.py): Seawall and Distribution on the same moto endpoint,
the ratio Seawall ÷ Distribution, moto's CPU beside each figure, and Seawall's 2 GiB RSS check."""

from __future__ import annotations

from dataclasses import dataclass

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.report import Result, lookup, verdict_table

MB = 1e6
TARGETS = {"seawall-sqlite": "Seawall SQLite", "distribution": "Distribution"}


@dataclass(frozen=True)
class S3Row:
    label: str
    path: str
    fmt: str = "{:,.0f}"
    scale: float = 1.0
    ratio: bool = True  # show Seawall ÷ Distribution

    def value(self, result: object) -> float | None:
        v = lookup(result, self.path)
        return None if v is None else v * self.scale

    def cell(self, result: object) -> str:
        v = self.value(result)
        return "—" if v is None else self.fmt.format(v)


def ratio(seawall: float | None, distribution: float | None) -> str:
    """Seawall ÷ Distribution, as the cell shows it ("" when either side is missing or 0)."""
    if seawall is None or distribution is None or distribution <= 0:
        return ""
    return f"{seawall / distribution:.2f}"


def rows(o: Result) -> list[S3Row]:
    count, mib, conc = o["s3_blob_count"], o["s3_blob_mib"], o["s3_upload_concurrency"]
    gets = f"{o['s3_get_concurrency']} curl x {o['s3_get_per_client']} blobs, "
    gets += f"{o['s3_get_rounds']} rounds"
    moto = "  moto CPU s / registry CPU s"
    rows: list[S3Row] = []
    for label, key in (
        (f"Upload monolithic MiB/s ({count} x {mib} MiB, {conc} at once)", "upload_monolithic"),
        (f"Upload chunked MiB/s ({o['chunk_mib']} MiB PATCHes)", "upload_chunked"),
        (f"Blob GET MiB/s, streamed through the registry ({gets})", "get_streamed"),
        ("Blob GET MiB/s, redirected: 307, curl -L to moto", "get_redirected"),
    ):
        rows.append(S3Row(label, f"{key}.mib_s", "{:,.1f}"))
        rows.append(S3Row(moto, f"{key}.cpu", ratio=False))
    rows += [
        S3Row("Peak RSS MB, tree sum, whole part", "peak_rss", scale=1 / MB),
        S3Row("  streamed server (uploads, GET)", "streamed.peak_rss", scale=1 / MB),
        S3Row("  redirecting server (GET)", "redirected.peak_rss", scale=1 / MB),
        S3Row("  PSS MB, tree sum (shared pages once)", "peak_pss", scale=1 / MB),
        S3Row("  RSS MB, largest process", "peak_rss_largest_process", scale=1 / MB),
        S3Row("Idle RSS MB after start (tree sum)", "idle_rss", scale=1 / MB),
        S3Row("Registry CPU seconds, measured phases", "cpu_seconds", "{:,.1f}"),
    ]
    return rows


def _cpu_cell(result: object, key: str) -> str:
    moto, own = (
        lookup(result, f"{key}.moto_cpu_seconds"),
        lookup(result, f"{key}.server_cpu_seconds"),
    )
    if moto is None or own is None:
        return "—"
    return f"{moto:.1f} / {own:.1f}"


def _table(s3: Result, opts: Result, console: Console) -> None:
    present = [t for t in TARGETS if isinstance(s3.get(t), dict)]
    if not present:
        return
    table = Table(title="S3 storage: one moto_server, a bucket per registry", title_justify="left")
    table.add_column("Measure")
    for t in present:
        table.add_column(TARGETS[t], justify="right")
    both = len(present) == 2
    if both:
        table.add_column("Seawall ÷ Dist", justify="right", style="bold")
    for row in rows(opts):
        if row.path.endswith(".cpu"):
            key = row.path.removesuffix(".cpu")
            cells = [_cpu_cell(s3[t], key) for t in present]
            table.add_row(escape(row.label), *cells, *([""] if both else []))
            continue
        cells = [row.cell(s3[t]) for t in present]
        if both:
            mine, theirs = row.value(s3["seawall-sqlite"]), row.value(s3["distribution"])
            cells.append(ratio(mine, theirs) if row.ratio else "")
        table.add_row(escape(row.label), *cells)
    console.print(table)
    console.print(
        "[dim]Seawall ÷ Dist: above 1 Seawall moves more MiB/s, or uses more memory. moto (one"
        " Python process) serves both registries; its CPU seconds beside each figure show what"
        " bounds it. Seawall: `seawall serve --workers N` on SQLite, bearer tokens; streamed"
        " pulls, then a second server with SEAWALL_S3_REDIRECT=true. Distribution: its s3"
        " driver, `redirect: disable: true`, then a second server with redirects on (its"
        " default). MB = 10^6 B.[/dim]"
    )


def _moto_line(s3: Result, opts: Result, console: Console) -> None:
    alone = s3.get("moto_alone")
    if isinstance(alone, dict):
        console.print(
            f"[dim]moto alone, no registry (boto3 from the harness, the monolithic blobs,"
            f" {opts.get('s3_part_mib') or 8} MiB parts, {opts['s3_upload_concurrency']} at"
            f" once): upload {alone['upload_mib_s']:.1f} MiB/s, GET {alone['get_mib_s']:.1f}"
            f" MiB/s; moto {alone['moto_cpu_seconds']:.1f} CPU-s.[/dim]"
        )
    moto = s3.get("moto")
    if not isinstance(moto, dict):
        return
    console.print(
        f"[dim]moto_server: {moto['cpu_seconds_measured']:.1f} CPU-s in the measured phases,"
        f" {moto['cpu_seconds_total']:.1f} in all (start-up and untimed pushes included); peak"
        f" RSS {moto['peak_rss'] / MB:,.0f} MB. Part: {s3['elapsed_s']:.0f} s.[/dim]"
    )


def checks(s3: Result) -> list[dict[str, object]]:
    """The 2 GiB target, read as the memory the server's processes hold at their peak: their
    PSS summed (a page two processes share counts once, as a container's memory limit counts
    it), and no one process above the limit either. Their RSS summed counts every shared page
    (the interpreter, the libraries) once per process: shown, not judged."""
    big = s3.get("big_blob")
    errors = s3.get("errors")
    if not isinstance(big, dict):
        if isinstance(errors, dict) and "big_blob" in errors:
            text = "Seawall S3 peak memory during 2 GiB push+pull < 250 MB"
            return [{"check": text, "target": "seawall-sqlite", "value": "", "verdict": "n/a"}]
        return []
    size = float(big["bytes"])
    limit = float(big["check_max_rss"])
    what = f"{size / 1024**3:g} GiB" if size >= 1024**3 else f"{size / 1024**2:g} MiB"
    pss, largest = float(big["peak_pss"]), float(big["peak_rss_largest_process"])
    rss = float(big["peak_rss"])
    value = (
        f"{pss / MB:,.0f} MB (push {big['push_s']:.0f} s {big['push_mib_s']:.0f} MiB/s, pull"
        f" {big['pull_s']:.0f} s {big['pull_mib_s']:.0f} MiB/s)"
    )
    return [
        {
            "check": f"Seawall S3 peak memory during {what} push+pull < {limit / MB:.0f} MB"
            " (PSS, the processes summed)",
            "target": "seawall-sqlite",
            "value": value,
            "verdict": "PASS" if pss < limit else "FAIL",
        },
        {
            "check": f"  RSS of the largest process < {limit / MB:.0f} MB",
            "target": "seawall-sqlite",
            "value": f"{largest / MB:,.0f} MB",
            "verdict": "PASS" if largest < limit else "FAIL",
        },
        {
            "check": "  RSS summed (each shared page once per process)",
            "target": "seawall-sqlite",
            "value": f"{rss / MB:,.0f} MB",
            "verdict": "info",
        },
    ]


def render(results: Result, console: Console) -> list[dict[str, object]]:
    """Print the S3 table and its check; returns the checks for the JSON file."""
    s3, opts = results.get("s3"), results.get("options")
    if not isinstance(s3, dict) or not isinstance(opts, dict):
        return []
    _table(s3, opts, console)
    _moto_line(s3, opts, console)
    verdicts = checks(s3)
    verdict_table("S3 target", verdicts, console)
    for what, message in (s3.get("errors") or {}).items():
        console.print(f"[red]S3 {escape(str(what))} failed:[/red] {escape(str(message))}")
    return verdicts
