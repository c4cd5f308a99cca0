"""`seawall team`: teams of users, which can be members of namespaces."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, nothing, with_identities, with_identity_service
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.db.identities import IdentityStore


def _user(text: str) -> str:
    from seawall.domain.rights import parse_user

    try:
        return parse_user(text)
    except ValueError as exc:
        raise fail(str(exc), 2) from None


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("add")
    def add(name: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
        """Create a team."""
        from seawall.errors import RegistryError
        from seawall.services.identity import team_name

        try:
            team_name(name)  # before opening the database
        except RegistryError as exc:
            raise fail(exc.message, 2) from None
        if not with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.create_team(origin, name),
        ):
            raise fail(f"team {name!r} already exists")
        typer.echo(f"created team {name}")

    @app.command("member")
    def member(
        team: str, user: str, config: ConfigOption = None, data_dir: DataDirOption = None
    ) -> None:
        """Add the user USER (NAME or user:NAME) to the team TEAM."""
        name = _user(user)
        if not with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.add_team_member(origin, team, name),
        ):
            raise fail(f"no team {team!r} or no user {name!r}")
        typer.echo(f"{name} is in team {team}")

    @app.command("remove-member")
    def remove_member(
        team: str, user: str, config: ConfigOption = None, data_dir: DataDirOption = None
    ) -> None:
        """Take the user USER (NAME or user:NAME) out of the team TEAM."""
        name = _user(user)
        if not with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.remove_team_member(origin, team, name),
        ):
            raise fail(f"{name!r} is not in team {team!r}")
        typer.echo(f"{name} left team {team}")

    @app.command("members")
    def members(
        team: str,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the members of the team TEAM."""

        async def read(ids: IdentityStore) -> list[str] | None:
            return await ids.team_members(team) if await ids.team_exists(team) else None

        names = with_identities(load(config, data_dir=data_dir), read)
        if names is None:
            raise fail(f"no team {team!r}")
        if as_json:
            typer.echo(json.dumps(names))
            return
        if not names:
            nothing(f"team {team} has no members")
        for name in names:
            typer.echo(name)

    return app
