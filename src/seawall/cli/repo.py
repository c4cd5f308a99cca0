"""`seawall repo set|show`: who owns a repository and what it is for."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.wiring import Services

RepositoryArgument = Annotated[str, typer.Argument(metavar="REPOSITORY")]


def _print(view: dict[str, Any]) -> None:
    typer.echo(f"repository: {view['repository']}")
    typer.echo(f"owner: {view['owner'] or '(none)'}")
    typer.echo(f"purpose: {view['purpose'] or '(none)'}")
    if view["source"]:
        typer.echo(f"source: {view['source']}")
    if view["described_by"]:
        how = "from the pushed images' annotations" if view["from_annotations"] else "by hand"
        who = "" if view["from_annotations"] else f" by {view['described_by']}"
        typer.echo(f"described {how}{who} at {view['described_at']}")


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("set")
    def set_(
        repository: RepositoryArgument,
        owner: Annotated[
            str | None,
            typer.Option(metavar="PRINCIPAL", help="team:NAME or user:NAME (or a bare user)."),
        ] = None,
        purpose: Annotated[
            str | None, typer.Option(help="What the images are for (printable, up to 500).")
        ] = None,
        clear_owner: Annotated[
            bool, typer.Option("--clear-owner", help="Remove the owner.")
        ] = False,
        clear_purpose: Annotated[
            bool, typer.Option("--clear-purpose", help="Remove the purpose.")
        ] = False,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Set (or clear) a repository's owner and purpose. Set by hand, they no longer follow
        the annotations of pushed images (dev.seawall.owner, dev.seawall.purpose, ...) until
        both are cleared."""

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            return await services.ownership.describe(
                repository,
                owner,
                purpose,
                origin,
                clear_owner=clear_owner,
                clear_purpose=clear_purpose,
            )

        view = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view, indent=2))
        else:
            _print(view)

    @app.command("show")
    def show(
        repository: RepositoryArgument,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """A repository's owner, purpose and source, and where they came from."""

        async def work(services: Services, _origin: Origin) -> dict[str, Any]:
            return await services.ownership.show(repository)

        view = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view, indent=2))
        else:
            _print(view)

    return app
