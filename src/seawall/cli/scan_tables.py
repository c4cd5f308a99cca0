"""Rich tables for `seawall scan show` and `seawall scan list` (see `seawall.cli.output`: no
digest is ever wrapped across lines)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from seawall.cli.output import console

SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
LEVELS = ("critical", "high", "medium", "low", "unknown")


def _counts(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "-"
    counts = summary["vulnerabilities"]
    return " ".join(f"{level[0].upper()}:{counts.get(level, 0)}" for level in LEVELS)


def _unfixed(view: dict[str, Any]) -> str:
    """ ", 3 without a fix" when the view counts them (a full report)."""
    unfixed = view.get("unfixed")
    return f" ({unfixed} without a fix)" if unfixed else ""


def _fix(vuln: dict[str, Any]) -> str:
    """The fixed version, or that the data names none (older JSON views lack `fix_available`)."""
    fixed = vuln.get("fixed_version")
    return escape(str(fixed)) if fixed else "[dim]no fix available[/dim]"


def print_listing(rows: list[dict[str, Any]]) -> None:
    table = Table("repository", "tag")
    table.add_column("digest", no_wrap=True)
    for column in ("state", "distro", "vulns", "secrets", "malware"):
        table.add_column(column)
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
    console().print(table)


def print_report(view: dict[str, Any]) -> None:
    out = console()
    for image in view.get("manifests", [view]):
        _print_image(out, image)


def _print_image(out: Console, view: dict[str, Any]) -> None:
    title = f"{view['repository']}@{view['digest']}"
    if view.get("platform"):
        title += f" ({view['platform']})"
    out.print(f"[bold]{escape(title)}[/bold]", soft_wrap=True)
    out.print(f"state: {view['state']}, report: {view['status']}")
    if view.get("error"):
        out.print(f"[red]scan failed: {escape(view['error'])}[/red]", soft_wrap=True)
    if "summary" not in view:
        return
    summary = view["summary"]
    out.print(
        f"scanned {view['scanned_at']} in {view['seconds']} s, vulnerability data"
        f" {view['vulndb_version'] or 'none imported'}; {view['distro'] or 'no distribution'};"
        f" {summary['packages']} packages; vulnerabilities {_counts(summary)}{_unfixed(view)};"
        f" {summary['secrets']} secrets; {summary['malware']} malware",
        soft_wrap=True,
    )
    if view.get("sbom"):
        out.print(f"SBOM: {view['repository']}@{view['sbom']}", soft_wrap=True)
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
                _fix(vuln),
                (vuln.get("summary") or "")[:80],
            )
        out.print(table)
    for kind in ("secrets", "malware"):
        if view.get(kind):
            table = Table("path", "layer", "rule", "detail", title=kind)
            for finding in view[kind]:
                # A file name is data, not markup: "app/[/].env" is a name a layer may hold.
                table.add_row(
                    escape(finding["path"]),
                    str(finding["layer_index"]),
                    escape(finding.get("rule_id") or finding.get("signature") or ""),
                    escape(
                        " ".join(
                            str(part)
                            for part in (
                                finding.get("redacted") or finding.get("detail"),
                                finding.get("note"),
                            )
                            if part
                        )
                    ),
                )
            out.print(table)
