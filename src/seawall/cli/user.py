"""`seawall user`: add, list, change the password of, disable and enable user accounts."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from seawall.cli.store import ConfigOption, fail, with_identities, with_identity_service
from seawall.config import Settings

PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input.")
]


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


def _hash(password: str) -> str:
    from seawall.domain.credentials import hash_password

    try:
        return hash_password(password)
    except ValueError as exc:
        typer.echo(f"seawall: {exc}", err=True)
        raise typer.Exit(2) from None


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("add")
    def add(
        name: str,
        config: ConfigOption = None,
        site_admin: Annotated[bool, typer.Option(help="Make the user a site admin.")] = False,
        password_stdin: PasswordStdin = False,
    ) -> None:
        """Create a user with a password."""
        from seawall.domain.names import validate_component

        try:
            validate_component(name, "user name")
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        password_hash = _hash(_read_password(password_stdin))
        created = with_identity_service(
            load(config),
            lambda service, origin: service.create_user(origin, name, password_hash, site_admin),
        )
        if not created:
            raise fail(f"user {name!r} already exists")
        typer.echo(f"created user {name}")

    @app.command("list")
    def list_users(config: ConfigOption = None) -> None:
        """List users, with their site-admin and disabled flags."""
        for user in with_identities(load(config), lambda ids: ids.users()):
            flags = [
                f for f, on in (("site-admin", user.site_admin), ("disabled", user.disabled)) if on
            ]
            typer.echo(f"{user.name}\t{','.join(flags)}")

    @app.command("passwd")
    def passwd(
        name: str, config: ConfigOption = None, password_stdin: PasswordStdin = False
    ) -> None:
        """Set a user's password."""
        password_hash = _hash(_read_password(password_stdin))
        if not with_identity_service(
            load(config), lambda service, origin: service.set_password(origin, name, password_hash)
        ):
            raise fail(f"no user {name!r}")
        typer.echo(f"password of {name} changed")

    @app.command("disable")
    def disable(name: str, config: ConfigOption = None) -> None:
        """Disable a user (memberships are kept; `enable` restores it)."""
        if not with_identity_service(
            load(config), lambda service, origin: service.set_disabled(origin, name, True)
        ):
            raise fail(f"no user {name!r}")
        typer.echo(f"disabled {name}")

    @app.command("enable")
    def enable(name: str, config: ConfigOption = None) -> None:
        """Enable a disabled user."""
        if not with_identity_service(
            load(config), lambda service, origin: service.set_disabled(origin, name, False)
        ):
            raise fail(f"no user {name!r}")
        typer.echo(f"enabled {name}")

    return app
