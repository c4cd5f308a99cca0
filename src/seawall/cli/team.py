"""`seawall team`: teams of users, which can be members of namespaces."""

from __future__ import annotations

from collections.abc import Callable

import typer

from seawall.cli.store import ConfigOption, fail, with_identities, with_identity_service
from seawall.config import Settings


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("add")
    def add(name: str, config: ConfigOption = None) -> None:
        """Create a team."""
        if not with_identity_service(
            load(config), lambda service, origin: service.create_team(origin, name)
        ):
            raise fail(f"team {name!r} already exists")
        typer.echo(f"created team {name}")

    @app.command("member")
    def member(team: str, user: str, config: ConfigOption = None) -> None:
        """Add the user USER to the team TEAM."""
        if not with_identity_service(
            load(config), lambda service, origin: service.add_team_member(origin, team, user)
        ):
            raise fail(f"no team {team!r} or no user {user!r}")
        typer.echo(f"{user} is in team {team}")

    @app.command("remove-member")
    def remove_member(team: str, user: str, config: ConfigOption = None) -> None:
        """Take the user USER out of the team TEAM."""
        if not with_identity_service(
            load(config), lambda service, origin: service.remove_team_member(origin, team, user)
        ):
            raise fail(f"{user!r} is not in team {team!r}")
        typer.echo(f"{user} left team {team}")

    @app.command("members")
    def members(team: str, config: ConfigOption = None) -> None:
        """List the members of the team TEAM."""
        for name in with_identities(load(config), lambda ids: ids.team_members(team)):
            typer.echo(name)

    return app
