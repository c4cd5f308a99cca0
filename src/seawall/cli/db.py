"""`seawall db`: create or upgrade the schema, show its revision."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from seawall.config import Settings

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file.")
]


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command()
    def upgrade(
        config: ConfigOption = None,
        revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    ) -> None:
        """Apply migrations up to REVISION (default: the latest)."""
        from seawall.db.migrate import upgrade as run_upgrade

        settings = load(config)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        run_upgrade(settings.effective_database_url, revision)
        typer.echo(f"schema at {revision}")

    @app.command()
    def current(config: ConfigOption = None) -> None:
        """Show the schema revision of the configured database."""
        from seawall.db.migrate import current as show_current

        show_current(load(config).effective_database_url)

    return app
