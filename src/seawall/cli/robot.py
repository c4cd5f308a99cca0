"""`seawall robot`: robot accounts for automation, scoped and expiring, with a secret shown
once and stored hashed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Annotated

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, with_identity_service
from seawall.config import Settings
from seawall.domain.rights import Action, RobotScope


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("add")
    def add(
        name: Annotated[str, typer.Argument(help="NAMESPACE+NAME, e.g. team-a+ci")],
        scope: Annotated[
            list[str], typer.Option("--scope", help="PATTERN=ACTIONS, e.g. 'team-a/ci-*=pull,push'")
        ],
        days: Annotated[int, typer.Option(help="Days until the robot expires.")] = 90,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Create a robot; its secret is printed once and stored only as a hash."""
        from seawall.domain.credentials import hash_secret, new_robot_secret

        namespace, sep, short = name.partition("+")
        if not sep or not namespace or not short or "+" in short:
            raise fail("a robot is named NAMESPACE+NAME", 2)
        scopes = []
        try:
            for item in scope:
                pattern, _, actions = item.partition("=")
                wanted = frozenset(Action(a.strip()) for a in actions.split(",") if a.strip())
                RobotScope(pattern, wanted)
                if not (pattern == namespace or pattern.startswith(namespace + "/")):
                    raise ValueError(f"{pattern!r} is outside namespace {namespace!r}")
                ordered = [a.value for a in Action if a in wanted]
                scopes.append({"pattern": pattern, "actions": ordered})
        except ValueError as exc:
            raise fail(f"invalid scope: {exc}", 2) from None
        if not scopes:
            raise fail("a robot needs at least one --scope", 2)
        if days < 1:
            raise fail("--days must be at least 1", 2)
        secret = new_robot_secret()
        expires = time.time() + days * 86400
        created = with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.create_robot(
                origin, name, hash_secret(secret), scopes, expires, "cli"
            ),
        )
        if not created:
            raise fail(f"robot {name!r} already exists")
        if as_json:
            document = {"name": name, "secret": secret, "scopes": scopes, "expires_at": expires}
            typer.echo(json.dumps(document))
            return
        typer.echo(f"created robot {name}, expiring in {days} days; its secret (shown once):")
        typer.echo(secret)

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
