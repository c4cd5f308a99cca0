"""`seawall user`: add, list, change the password of, disable and enable user accounts, and
make or unmake site admins."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, nothing, with_identities, with_identity_service
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.services.identity import IdentityService

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise fail("no terminal to ask for the password on: give it with --password-stdin", 2)
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _change(
    settings: Settings, name: str, change: Callable[[IdentityService, Origin], Awaitable[bool]]
) -> None:
    """Make a change to the user `name`; no such user, or a refusal, ends the command."""
    if not with_identity_service(settings, change):
        raise fail(f"no user {name!r}")


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("add")
    def add(
        name: str,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        site_admin: Annotated[bool, typer.Option(help="Make the user a site admin.")] = False,
        password_stdin: PasswordStdin = False,
    ) -> None:
        """Create a user with a password."""
        from seawall.errors import RegistryError
        from seawall.services.identity import user_name

        try:
            user_name(name)  # before asking for a password
        except RegistryError as exc:
            raise fail(exc.message, 2) from None

        async def create(service: IdentityService, origin: Origin) -> bool:
            # Asked for once the database is known to be there.
            password = _read_password(password_stdin)
            return await service.create_user(origin, name, password, site_admin)

        if not with_identity_service(load(config, data_dir=data_dir), create):
            raise fail(f"user {name!r} already exists")
        typer.echo(f"created user {name}")

    @app.command("list")
    def list_users(
        config: ConfigOption = None, data_dir: DataDirOption = None, as_json: JsonOption = False
    ) -> None:
        """List users, with their site-admin and disabled flags."""
        users = with_identities(load(config, data_dir=data_dir), lambda ids: ids.users())
        if as_json:
            rows = [
                {"name": u.name, "site_admin": u.site_admin, "disabled": u.disabled} for u in users
            ]
            typer.echo(json.dumps(rows))
            return
        if not users:
            nothing("no users")
        for user in users:
            flags = [
                f for f, on in (("site-admin", user.site_admin), ("disabled", user.disabled)) if on
            ]
            typer.echo(f"{user.name}\t{','.join(flags)}")

    @app.command("passwd")
    def passwd(
        name: str,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        password_stdin: PasswordStdin = False,
    ) -> None:
        """Set a user's password."""

        async def change(service: IdentityService, origin: Origin) -> bool:
            if await service.identities.user(name) is None:
                return False
            return await service.set_password(origin, name, _read_password(password_stdin))

        _change(load(config, data_dir=data_dir), name, change)
        typer.echo(f"password of {name} changed")

    @app.command("disable")
    def disable(name: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
        """Disable a user (memberships are kept; `enable` restores it). The last enabled site
        admin cannot be disabled."""
        settings = load(config, data_dir=data_dir)
        _change(settings, name, lambda service, o: service.set_disabled(o, name, True))
        typer.echo(f"disabled {name}")

    @app.command("enable")
    def enable(name: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
        """Enable a disabled user."""
        settings = load(config, data_dir=data_dir)
        _change(settings, name, lambda service, o: service.set_disabled(o, name, False))
        typer.echo(f"enabled {name}")

    @app.command("site-admin")
    def site_admin(
        name: str,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        revoke: Annotated[
            bool, typer.Option("--revoke", help="Take the site admin role away instead.")
        ] = False,
    ) -> None:
        """Make the user NAME a site admin (or, with --revoke, no longer one). The last enabled
        site admin keeps the role."""
        settings = load(config, data_dir=data_dir)
        _change(settings, name, lambda service, o: service.set_site_admin(o, name, not revoke))
        typer.echo(f"{name} is {'no longer ' if revoke else ''}a site admin")

    return app
