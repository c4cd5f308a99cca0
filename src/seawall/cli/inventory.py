"""`seawall inventory`: every image with its owner, purpose, pulls, size, scan and findings."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption
from seawall.cli.output import console
from seawall.cli.store import with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.wiring import Services


class Format(StrEnum):
    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def _size(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


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
    ) -> None:
        """One row per tagged image and per untagged manifest: repository, tags, digest,
        platforms, owner, purpose, stage, channels, deprecation, pushed at/by, last pulled,
        pulls in 7 and 30 days, own and shared bytes, scan status and counts, secrets, malware,
        signed, and the findings (no-owner, no-purpose, stale, unscanned, scan-failed,
        vulnerable, secret, malware, deprecated-but-pulled, untagged, unsigned)."""

        async def work(services: Services, _origin: Origin) -> list[dict[str, Any]]:
            return await services.inventory.rows(namespace, stale_days=stale_days)

        rows = with_lifecycle(load(config, data_dir=data_dir), work)
        if findings_only:
            rows = [r for r in rows if r["findings"]]
        if output is Format.JSON:
            typer.echo(json.dumps(rows, indent=2))
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
                _size(r["own_bytes"]),
                r["scan"],
                " ".join(r["findings"]),
            )
        table.columns[2].no_wrap = True
        console().print(table)
