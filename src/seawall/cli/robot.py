"""`seawall robot`: robot accounts for automation, scoped and expiring, with a secret shown
once and stored hashed."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, with_identity_service
from seawall.config import Settings
from seawall.domain import robots
from seawall.domain.rights import Action


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="NAMESPACE+NAME, e.g. team-a+ci")],
        scope: Annotated[
            list[str], typer.Option("--scope", help="PATTERN=ACTIONS, e.g. 'team-a/ci-*=pull,push'")
        ],
        days: Annotated[
            int, typer.Option(help=f"Days until the robot expires (at most {robots.MAX_DAYS}).")
        ] = robots.DEFAULT_DAYS,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Create a robot; its secret is printed once and stored only as a hash."""
        namespace, sep, short = name.partition("+")
        if not sep or not namespace or not short or "+" in short:
            raise fail("a robot is named NAMESPACE+NAME", 2)
        scopes = []
        for item in scope:
            pattern, _, actions = item.partition("=")
            try:
                wanted = frozenset(Action(a.strip()) for a in actions.split(",") if a.strip())
            except ValueError as exc:
                raise fail(f"invalid scope: {exc}", 2) from None
            scopes.append((pattern, wanted))
        robot = with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.create_robot(
                origin, namespace, short, scopes, days, "cli"
            ),
        )
        if robot is None:
            raise fail(f"robot {name!r} already exists")
        if as_json:
            document = {
                "name": robot.name,
                "secret": robot.secret,
                "scopes": robot.scopes,
                "expires_at": robot.expires_at,
            }
            typer.echo(json.dumps(document))
            return
        typer.echo(f"created robot {name}, expiring in {days} days; its secret (shown once):")
        typer.echo(robot.secret)

    @app.command("disable")
    def disable(name: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
        """Disable the robot NAME: its next request is refused, tokens included."""
        if not with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.disable_robot(origin, name),
        ):
            raise fail(f"no robot {name!r}")
        typer.echo(f"disabled {name}")

    return app
