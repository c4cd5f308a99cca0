"""The scanner's tables (bench/phases_scan.py) and the issue's targets for it: ≥ 150 MiB/s per
core on plain and gzip layers (the big layer, the Java image, the mixed image) and re-matching
stored inventories in under 10 s."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.report import COLUMNS, SEAWALL, Result, lookup

MIB = 1024**2
MIN_MIB_S = 150.0
MAX_REMATCH_S = 10.0
COPIES = (("plain", "plain tar"), ("gzip", "gzip"), ("zstd", "zstd"))
IMAGES = (("java", "Java image"), ("mixed", "mixed image"))
# Short column titles: six numeric columns must fit beside the measure's name in 160.
SHORT = {"java": "Java", "mixed": "mixed", "plain": "plain", "gzip": "gzip", "zstd": "zstd"}
CONFIDENCES = ("high", "medium", "low")
# The mixed image's ecosystems, in the order its layers hold them, with what the bench counts
# of each as it builds the layers (bench/scan_mixed.py `planted`).
ECOSYSTEMS = (
    ("Debian", "dpkg status", "dpkg status files"),
    ("PyPI", "Python metadata", "dist-info, egg-info"),
    ("npm", "npm manifests", "node_modules/*/package.json"),
    ("RubyGems", "gemspecs", "specifications/*.gemspec"),
    ("Packagist", "Packagist", "installed.json entries"),
    ("NuGet", "NuGet", "deps.json packages"),
    ("Go", "Go binaries", "Go binaries"),
    ("Maven", None, None),
)


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
        _profile_table(profile, "plain tar", 10, console)


def _profile_table(profile: Result, what: str, rows: int, console: Console) -> None:
    prof = Table(
        title=f"Where the time goes: analyze_layer, {what}, cProfile"
        f" ({profile['total_s']:.1f} s profiled)",
        title_justify="left",
    )
    for name in ("Function", "Calls", "Own s", "Cumulative s"):
        prof.add_column(name, justify="left" if name == "Function" else "right")
    cumulative = profile["cumulative"]
    assert isinstance(cumulative, list)
    for entry in cumulative[:rows]:
        prof.add_row(
            escape(str(entry["function"])),
            f"{entry['calls']:,}",
            f"{entry['tottime_s']:.2f}",
            f"{entry['cumtime_s']:.2f}",
        )
    console.print(prof)


def _images_table(scanner: Result, console: Console) -> None:
    """The Java and mixed images beside each other, measured as the big layer is."""
    present = [(key, label) for key, label in IMAGES if isinstance(scanner.get(key), dict)]
    if not present:
        return
    table = Table(
        title="Image scanner, one thread: a Java image and a mixed (polyglot) image",
        title_justify="left",
    )
    table.add_column("Measure")
    columns = [
        (f"{key}.{copy}", f"{SHORT[key]}, {SHORT[copy]}")
        for key, _ in present
        for copy, _ in COPIES
    ]
    for _, title in columns:
        table.add_column(title, justify="right")
    for label, key, fmt in _scanner_rows(scanner):
        cells = []
        for prefix, _ in columns:
            value = lookup(scanner, f"{prefix}.{key}")
            if key == "compressed_bytes" and value is not None:
                value /= MIB
            text = _fmt(value, fmt)
            if key == "packages":
                text += f" / {_fmt(lookup(scanner, f'{prefix}.vulnerabilities'), fmt)}"
            cells.append(text)
        table.add_row(escape(label), *cells)
    console.print(table)
    _found_table(scanner, present, console)
    profile = lookup_dict(scanner, "java.profile")
    if profile is not None:
        _profile_table(profile, "the Java image's layer", 8, console)


def lookup_dict(result: Result, path: str) -> Result | None:
    value: object = result
    for key in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, dict) else None


def _found_table(scanner: Result, present: list[tuple[str, str]], console: Console) -> None:
    """What the scanner listed in each image (the plain copy's scan; every copy lists the
    same), against what the bench put in."""
    table = Table(title="What the scanner found in them", title_justify="left")
    table.add_column("Found")
    for _, label in present:
        table.add_column(label, justify="right")

    def number(key: str, path: str) -> str:
        return _fmt(lookup(scanner, f"{key}.{path}"), "{:,.0f}")

    rows: list[tuple[str, list[str]]] = [
        ("Layers / MiB of tar", [_layers(scanner, key) for key, _ in present]),
        (
            "Java archives in the layer / with a package",
            [
                f"{number('java', 'layer.jars')}"
                f" / {number(k, 'plain.found.archives_with_packages')}"
                for k, _ in present
            ],
        ),
        (
            "  nested (fat jar, WAR) / with a package",
            [
                f"{number('java', 'layer.nested_jars')}"
                f" / {number(k, 'plain.found.nested_with_packages')}"
                for k, _ in present
            ],
        ),
        (
            "Maven packages: high / medium / low confidence",
            [
                " / ".join(number(k, f"plain.found.maven_confidence.{c}") for c in CONFIDENCES)
                for k, _ in present
            ],
        ),
    ]
    for ecosystem, planted, what in ECOSYSTEMS:
        cells = []
        for key, _ in present:
            text = number(key, f"plain.found.ecosystems.{ecosystem}")
            put = lookup(scanner, f"{key}.planted.{planted}") if planted else None
            cells.append(text if put is None else f"{text} (of {put:,.0f})")
        rows.append((f"{ecosystem} packages" + (f" (of N {what})" if what else ""), cells))
    for label, cells in rows:
        table.add_row(escape(label), *cells)
    console.print(table)
    if lookup_dict(scanner, "java.layer") is not None:

        def java(key: str, scale: float = 1, fmt: str = "{:,.0f}") -> str:
            value = lookup(scanner, f"java.layer.{key}")
            return _fmt(None if value is None else value / scale, fmt)

        console.print(
            f"[dim]Java image, one layer: {java('library_jars')} of the {java('available_jars')}"
            f" jars in /usr/share/java, a Spring Boot-like fat jar"
            f" ({java('fat_jar_bytes', MIB, '{:,.1f}')} MiB, BOOT-INF/lib stored) and a WAR"
            f" ({java('war_bytes', MIB, '{:,.1f}')} MiB) holding {java('nested_jars')} of them."
            " Low confidence: a name from the manifest or file name only, never matched against"
            " advisories.[/dim]"
        )
    mixed = scanner.get("mixed")
    described = mixed.get("layers") if isinstance(mixed, dict) else None
    if isinstance(mixed, dict) and isinstance(described, list):
        parts = ", ".join(f"{layer['name']} {layer['bytes'] / MIB:,.0f}" for layer in described)
        console.print(
            f"[dim]Mixed image layers (MiB of tar): {parts}. The PHP installed.json and .NET"
            f" deps.json are generated; Go binary: {mixed.get('go_binary') or 'none found'}."
            " (of N): what the bench put in that the scanner should list.[/dim]"
        )


def _layers(scanner: Result, key: str) -> str:
    if key == "java":
        size = lookup(scanner, "java.layer.bytes")
        return f"1 / {_fmt(None if size is None else size / MIB, '{:,.0f}')}"
    layers = scanner.get("mixed", {})
    described = layers.get("layers") if isinstance(layers, dict) else None
    if not isinstance(described, list):
        return "—"
    total = sum(float(layer["bytes"]) for layer in described) / MIB
    return f"{len(described)} / {total:,.0f}"


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
    scanner = lookup_dict(scan, "scanner")
    failed = scanner is not None and "images_error" in scanner
    for image, name in IMAGES:
        for key, label in COPIES[:2]:
            value = lookup(scan, f"scanner.{image}.{key}.best_cpu_mib_s")
            text = f"scanner ≥ {MIN_MIB_S:.0f} MiB/s on one core, {name}, {label}"
            if failed and value is None:  # the images could not be built or scanned
                verdicts.append(
                    {"check": text, "target": "scanner", "value": "error", "verdict": "FAIL"}
                )
                continue
            add(text, "scanner", value, value is not None and value >= MIN_MIB_S, "{:,.1f}")
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
        _images_table(scanner, console)
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
    images_error = lookup_dict(scan, "scanner")
    if images_error is not None and "images_error" in images_error:
        message = images_error["images_error"]
        console.print(f"[red]scan Java and mixed images failed:[/red] {escape(str(message))}")
    for part, message in (scan.get("errors") or {}).items():
        console.print(f"[red]scan {part} failed:[/red] {escape(str(message))}")
    return verdicts
