"""`seawall vulndb`: import OSV vulnerability data offline, show what is imported."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, os_user, with_services
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.services.vulndb import Imported, ImportResult
    from seawall.wiring import Services


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def _print_ecosystems(result: ImportResult) -> None:
    """The counts per ecosystem, as a table."""
    from rich.table import Table

    from seawall.cli.output import console

    table = Table("ecosystem")
    for column in ("added", "updated", "unchanged", "skipped"):
        table.add_column(column, justify="right")
    for name, counts in sorted(result.ecosystems.items()):
        table.add_row(
            escape(name),
            str(counts.added),
            str(counts.updated),
            str(counts.unchanged),
            str(counts.skipped),
        )
    console().print(table)


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("import")
    def import_(
        path: Annotated[
            Path,
            typer.Argument(
                help="An OSV .json file, a directory of them, an OSV all.zip, or a directory"
                " of such zips (OSV's <ECOSYSTEM>/all.zip layout, or <ECOSYSTEM>.zip files)."
            ),
        ],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Import OSV records: new ones are added, changed ones replaced. Exit 1 when PATH
        holds no readable record."""
        from seawall.domain.audit import Origin

        origin = Origin.local(os_user())

        async def work(services: Services) -> Imported:
            return await services.vulndb.import_path(path, origin)

        imported = with_services(load(config, data_dir=data_dir), work)
        result = imported.result
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "added": result.added,
                        "updated": result.updated,
                        "unchanged": result.unchanged,
                        "skipped": result.skipped,
                        "problems": result.problems,
                        "version": result.version,
                        "records": result.records,
                        "rematched": imported.rematched,
                        "ecosystems": {
                            name: counts.view()
                            for name, counts in sorted(result.ecosystems.items())
                        },
                    }
                )
            )
        else:
            for problem in result.problems:
                typer.echo(f"skipped {problem}", err=True)
            if result.skipped > len(result.problems):
                typer.echo(f"... and {result.skipped - len(result.problems)} more", err=True)
            if result.ecosystems:
                _print_ecosystems(result)
            typer.echo(
                f"added {result.added}, updated {result.updated}, unchanged {result.unchanged},"
                f" skipped {result.skipped}"
            )
            if result.version is not None:
                changed = "new" if result.changed else "unchanged"
                typer.echo(f"data version {result.version} ({changed}), {result.records} records")
            if result.changed:
                typer.echo(f"re-matched {imported.rematched} reports in {imported.seconds:.1f} s")
        if result.read == 0:
            raise fail(f"no readable OSV records in {path}")

    @app.command("status")
    def status(
        config: ConfigOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False
    ) -> None:
        """Show the imported data's version, when it was last imported and how many records."""
        state = with_services(
            load(config, data_dir=data_dir), lambda services: services.vulndb.status()
        )
        if as_json:
            typer.echo(
                json.dumps(
                    None
                    if state is None
                    else {
                        "version": state.version,
                        "imported_at": _when(state.imported_at),
                        "records": state.records,
                    }
                )
            )
        elif state is None:
            typer.echo("no vulnerability data imported yet (seawall vulndb import PATH)")
        else:
            typer.echo(f"version:     {state.version}")
            typer.echo(f"imported at: {_when(state.imported_at)}")
            typer.echo(f"records:     {state.records}")

    return app
