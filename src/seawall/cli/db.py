"""`seawall db`: upgrade the schema, or create a new database; show the schema revision.

`upgrade` works on an existing registry's database and makes a new one only when asked
(`--create`): run in the wrong directory, it would otherwise create an empty database next to
nothing, and every later command there would find a registry with no users.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import POINT_AT_REGISTRY, database_failure, fail, run_on_database
from seawall.config import Settings


def _revision(settings: Settings) -> str | None:
    """The configured database's revision (None: no database); unusable ends the command."""
    from seawall.db.schema import database_revision

    return run_on_database(settings, lambda: database_revision(settings))


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command()
    def upgrade(
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
        create: Annotated[
            bool,
            typer.Option("--create", help="Make a new database when there is none (else: refuse)."),
        ] = False,
    ) -> None:
        """Apply migrations up to REVISION (default: the latest) to the registry's database."""
        from alembic.util.exc import CommandError

        from seawall.db.migrate import upgrade as run_upgrade
        from seawall.db.schema import NoDatabase, location

        settings = load(config, data_dir=data_dir)
        where = location(settings)
        before = _revision(settings)
        if before is None and not create:
            raise fail(
                f"{NoDatabase(settings)}; add --create to make a new one there, or"
                f" {POINT_AT_REGISTRY}"
            )
        try:
            run_upgrade(settings.effective_database_url, revision)
        except CommandError as exc:
            raise fail(f"cannot upgrade to revision {revision!r}: {exc}", 2) from None
        after = _revision(settings)
        if before is None:
            typer.echo(f"created a new Seawall database at {where}")
        changed = f" (was {before})" if before not in (None, after) else ""
        typer.echo(f"schema at {after}{changed}")

    @app.command()
    def current(
        config: ConfigOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False
    ) -> None:
        """Show the schema revision of the configured database."""
        from seawall.db.schema import SCHEMA_REVISION, NoDatabase, location

        settings = load(config, data_dir=data_dir)
        found = _revision(settings)
        if found is None:
            raise database_failure(settings, NoDatabase(settings))
        if as_json:
            document = {"database": location(settings), "revision": found, "head": SCHEMA_REVISION}
            typer.echo(json.dumps(document))
        elif found == SCHEMA_REVISION:
            typer.echo(f"{location(settings)}: schema at {found} (head)")
        else:
            typer.echo(
                f"{location(settings)}: schema at {found}; this Seawall's is {SCHEMA_REVISION}"
                " (`seawall db upgrade`)"
            )

    return app
