"""Rich tables for `seawall scan show` and `seawall scan list`."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
LEVELS = ("critical", "high", "medium", "low", "unknown")


def _counts(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "-"
    counts = summary["vulnerabilities"]
    return " ".join(f"{level[0].upper()}:{counts.get(level, 0)}" for level in LEVELS)


def print_listing(rows: list[dict[str, Any]]) -> None:
    table = Table("repository", "tag", "digest", "state", "distro", "vulns", "secrets", "malware")
    for row in rows:
        summary = row["summary"]
        table.add_row(
            row["repository"],
            row["tag"] or "",
            row["digest"][:19],
            row["status"] if row["status"] != "pending" else row["state"],
            row["distro"] or "",
            _counts(summary),
            str(summary["secrets"]) if summary else "-",
            str(summary["malware"]) if summary else "-",
        )
    Console().print(table)


def print_report(view: dict[str, Any]) -> None:
    console = Console()
    for image in view.get("manifests", [view]):
        _print_image(console, image)


def _print_image(console: Console, view: dict[str, Any]) -> None:
    title = f"{view['repository']}@{view['digest']}"
    if view.get("platform"):
        title += f" ({view['platform']})"
    console.print(f"[bold]{title}[/bold]")
    console.print(f"state: {view['state']}, report: {view['status']}")
    if view.get("error"):
        console.print(f"[red]scan failed: {view['error']}[/red]")
    if "summary" not in view:
        return
    summary = view["summary"]
    console.print(
        f"scanned {view['scanned_at']} in {view['seconds']} s, vulnerability data"
        f" {view['vulndb_version'] or 'none imported'}; {view['distro'] or 'no distribution'};"
        f" {summary['packages']} packages; vulnerabilities {_counts(summary)};"
        f" {summary['secrets']} secrets; {summary['malware']} malware"
    )
    if view.get("sbom"):
        console.print(f"SBOM: {view['repository']}@{view['sbom']}")
    if view.get("vulnerabilities"):
        table = Table("severity", "id", "package", "installed", "fixed in", "summary")
        for vuln in view["vulnerabilities"]:
            level = vuln["severity"]
            table.add_row(
                f"[{SEVERITY_STYLE.get(level, '')}]{level}[/]"
                if level in SEVERITY_STYLE
                else level,
                vuln["advisory_id"],
                vuln["package"],
                vuln["version"],
                vuln.get("fixed_version") or "",
                (vuln.get("summary") or "")[:80],
            )
        console.print(table)
    for kind in ("secrets", "malware"):
        if view.get(kind):
            table = Table("path", "layer", "rule", "detail", title=kind)
            for finding in view[kind]:
                table.add_row(
                    finding["path"],
                    str(finding["layer_index"]),
                    finding.get("rule_id") or finding.get("signature") or "",
                    " ".join(
                        str(part)
                        for part in (
                            finding.get("redacted") or finding.get("detail"),
                            finding.get("note"),
                        )
                        if part
                    ),
                )
            console.print(table)
