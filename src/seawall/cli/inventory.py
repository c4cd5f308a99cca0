"""`seawall inventory`: every image with its owner, purpose, pulls, size, scan and findings; with
`--save`, the whole registry's report written under the data directory (as the schedule writes
it); with `--since`, what changed since a saved report."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption
from seawall.cli.output import byte_size, console
from seawall.cli.store import fail, with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.wiring import Services


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def register(app: typer.Typer, load: Callable[..., Settings]) -> None:
    @app.command("inventory", short_help="Every image: owner, purpose, pulls, size, findings.")
    def inventory(
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        namespace: Annotated[str | None, typer.Option(help="Only this namespace.")] = None,
        output: Annotated[
            Format, typer.Option("--format", help="table, json or csv.")
        ] = Format.TABLE,
        findings_only: Annotated[
            bool, typer.Option("--findings-only", help="Only the rows with a finding.")
        ] = False,
        stale_days: Annotated[
            int | None,
            typer.Option(
                min=1,
                max=3650,
                help="Stale after this many days without a pull"
                " (default: each namespace's inventory.stale_days, 90).",
            ),
        ] = None,
        save: Annotated[
            bool,
            typer.Option(
                "--save",
                help="Write the whole registry's report (JSON and CSV) under DATA_DIR/reports/,"
                " record it (audited) and say where.",
            ),
        ] = False,
        since: Annotated[
            str | None,
            typer.Option(
                metavar="LAST|ID|TIME",
                help="What changed since a saved report: LAST, a report id, or the newest"
                " saved at or before an ISO 8601 time.",
            ),
        ] = None,
    ) -> None:
        """One row per tagged image and per untagged manifest: repository, tags, digest,
        platforms, owner, purpose, stage, channels, deprecation, pushed at/by, last pulled,
        pulls in 7 and 30 days, own and shared bytes, scan status and counts, secrets, malware,
        signed, and the findings (no-owner, no-purpose, stale, unscanned, scan-failed,
        vulnerable, secret, malware, deprecated-but-pulled, untagged, unsigned)."""
        settings = load(config, data_dir=data_dir)
        if save:
            if namespace or findings_only or stale_days is not None or since is not None:
                raise fail(
                    "--save writes the whole registry's report, as the schedule does: it takes"
                    " no --namespace, --findings-only, --stale-days or --since",
                    2,
                )
            _save(settings, output)
            return
        if since is not None:
            if findings_only or stale_days is not None:
                raise fail(
                    "--since compares findings as the saved report has them (each namespace's"
                    " own stale_days): it takes no --findings-only or --stale-days",
                    2,
                )
            _since(settings, since, namespace, output)
            return

        async def work(services: Services, _origin: Origin) -> list[dict[str, Any]]:
            return await services.inventory.rows(namespace, stale_days=stale_days)

        rows = with_lifecycle(settings, work)
        if findings_only:
            rows = [r for r in rows if r["findings"]]
        if output is Format.JSON:
            # One row per line: `indent` would take the json module's pure-Python encoder,
            # several seconds at 50,000 rows; each line is the C encoder's, and greppable.
            typer.echo("[\n" + ",\n".join(map(json.dumps, rows)) + ("\n]" if rows else "]"))
            return
        if output is Format.CSV:
            from seawall.services.inventory import to_csv

            typer.echo(to_csv(rows), nl=False)
            return
        from rich.table import Table

        table = Table(
            "repository", "tags", "digest", "owner", "last pulled", "size", "scan", "findings"
        )
        for r in rows:
            table.add_row(
                r["repository"],
                " ".join(r["tags"]) or "(untagged)",
                r["digest"][:19],
                r["owner"] or "",
                r["last_pulled"] or "never",
                byte_size(r["own_bytes"]),
                r["scan"],
                " ".join(r["findings"]),
            )
        table.columns[2].no_wrap = True
        console().print(table)


def _save(settings: Settings, output: Format) -> None:
    async def work(services: Services, origin: Origin) -> dict[str, Any]:
        return await services.inventory_reports.save(origin)

    saved = with_lifecycle(settings, work)
    if output is Format.JSON:
        typer.echo(json.dumps(saved, indent=2))
        return
    typer.echo(
        f"inventory report {saved['id']} saved: {saved['path']} and {saved['csv']} in the data"
        f" directory ({saved['rows']:,} rows, {saved['findings']:,} with findings;"
        f" sha256 {saved['sha256']})"
    )


def _since(settings: Settings, text: str, namespace: str | None, output: Format) -> None:
    from seawall.domain.inventory_changes import Since

    try:
        since = Since.parse(text)
    except ValueError as exc:
        raise fail(str(exc), 2) from None

    async def work(services: Services, _origin: Origin) -> dict[str, Any]:
        return await services.inventory_reports.since(since, namespace)

    found = with_lifecycle(settings, work)
    if output is Format.JSON:
        typer.echo(json.dumps(found, indent=2))
        return
    if output is Format.CSV:
        raise fail("--since shows a table or JSON (--format table|json)", 2)
    report, totals = found["since"], found["totals"]
    typer.echo(
        f"since inventory report {report['id']} ({report['generated_at']}, {report['path']}):"
        f" {totals['added']} images added, {totals['removed']} removed,"
        f" {totals['new_findings']} findings new, {totals['resolved_findings']} resolved"
    )
    from rich.table import Table

    if found["added"] or found["removed"]:
        images = Table("change", "repository", "tags", "digest", "findings", title="Images")
        for change, key in (("added", "added"), ("removed", "removed")):
            for r in found[key]:
                images.add_row(
                    change,
                    r["repository"],
                    " ".join(r["tags"]) or "(untagged)",
                    r["digest"],
                    " ".join(r["findings"]),
                )
        images.columns[3].no_wrap = True
        console().print(images)
    if found["new_findings"] or found["resolved_findings"]:
        findings = Table("change", "finding", "repository", "tags", "digest", title="Findings")
        for change, key in (("new", "new_findings"), ("resolved", "resolved_findings")):
            for f in found[key]:
                findings.add_row(
                    change,
                    f["finding"],
                    f["repository"],
                    " ".join(f["tags"]) or "(untagged)",
                    f["digest"],
                )
        findings.columns[4].no_wrap = True
        console().print(findings)
