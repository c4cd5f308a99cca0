"""`seawall namespace`: namespaces, their visibility, members and repository-pattern grants."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, with_identities, with_identity_service
from seawall.config import Settings
from seawall.domain.rights import Role, parse_principal

PRINCIPAL_HELP = "a user (NAME or user:NAME) or a team (team:NAME)"


def _principal(text: str) -> str:
    try:
        return parse_principal(text)
    except ValueError as exc:
        raise fail(str(exc), 2) from None


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("add")
    def add(
        name: str,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        public: Annotated[bool, typer.Option(help="Anyone may pull (default: private).")] = False,
    ) -> None:
        """Create a namespace (private unless --public)."""
        from seawall.errors import RegistryError
        from seawall.services.identity import namespace_name

        try:
            namespace_name(name)  # before opening the database
        except RegistryError as exc:
            raise fail(exc.message, 2) from None
        if not with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.create_namespace(origin, name, public),
        ):
            raise fail(f"namespace {name!r} already exists")
        typer.echo(f"created {'public' if public else 'private'} namespace {name}")

    @app.command("visibility")
    def visibility(
        name: str,
        level: Annotated[str, typer.Argument(help="public or private")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
    ) -> None:
        """Make the namespace NAME public (anonymous pull) or private."""
        if level not in ("public", "private"):
            raise fail("visibility is public or private", 2)
        if not with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.set_public(origin, name, level == "public"),
        ):
            raise fail(f"no namespace {name!r}")
        typer.echo(f"{name} is {level}")

    @app.command("sbom-referrer")
    def sbom_referrer(
        name: str,
        state: Annotated[str, typer.Argument(help="on or off")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
    ) -> None:
        """Attach each scanned image's SBOM to it as an OCI referrer (on), or only keep it with
        the report (off, the default)."""
        if state not in ("on", "off"):
            raise fail("the SBOM referrer setting is on or off", 2)
        if not with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.set_sbom_referrer(origin, name, state == "on"),
        ):
            raise fail(f"no namespace {name!r}")
        typer.echo(f"{name}: SBOM referrers {state}")

    @app.command("member")
    def member(
        name: str,
        principal: Annotated[str, typer.Argument(help=PRINCIPAL_HELP)],
        role: Annotated[str, typer.Argument(help="reader, developer, maintainer or admin")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
    ) -> None:
        """Give PRINCIPAL the role ROLE in the namespace NAME."""
        try:
            wanted = Role(role)
        except ValueError:
            raise fail(f"unknown role {role!r}", 2) from None
        who = _principal(principal)
        if not with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.set_member(origin, name, who, wanted),
        ):
            raise fail(f"no namespace {name!r}")
        typer.echo(f"{who} is {role} of {name}")

    @app.command("remove-member")
    def remove_member(
        name: str,
        principal: Annotated[str, typer.Argument(help=PRINCIPAL_HELP)],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
    ) -> None:
        """Take PRINCIPAL's role in the namespace NAME away."""
        who = _principal(principal)
        if not with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.remove_member(origin, name, who),
        ):
            raise fail(f"{who!r} is not a member of {name!r}")
        typer.echo(f"{who} is no longer a member of {name}")

    @app.command("grant")
    def grant(
        name: str,
        pattern: Annotated[str, typer.Argument(help="e.g. team-a/ci-* ('*' stays within a level)")],
        principal: Annotated[str, typer.Argument(help=PRINCIPAL_HELP)],
        actions: Annotated[str, typer.Argument(help="comma-separated: pull, push, delete")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
    ) -> None:
        """Grant ACTIONS on the repositories of NAME matching PATTERN to PRINCIPAL."""
        from seawall.domain.rights import Action

        who = _principal(principal)
        wanted = [a.strip() for a in actions.split(",") if a.strip()]
        if not with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.grant(origin, name, pattern, who, wanted),
        ):
            raise fail(f"no namespace {name!r}")
        ordered = [a.value for a in Action if a.value in wanted]
        typer.echo(f"{who} may {','.join(ordered)} {pattern}")

    @app.command("revoke")
    def revoke(
        name: str,
        pattern: str,
        principal: Annotated[str, typer.Argument(help=PRINCIPAL_HELP)],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
    ) -> None:
        """Remove the grant of PATTERN to PRINCIPAL in the namespace NAME."""
        who = _principal(principal)
        if not with_identity_service(
            load(config, data_dir=data_dir),
            lambda service, origin: service.revoke(origin, name, pattern, who),
        ):
            raise fail(f"no grant of {pattern!r} to {who!r} in {name!r}")
        typer.echo(f"revoked {pattern} from {who}")

    @app.command("show")
    def show(
        name: str,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Print the namespace's visibility, members and grants."""
        record = with_identities(load(config, data_dir=data_dir), lambda ids: ids.namespace(name))
        if record is None:
            raise fail(f"no namespace {name!r}")
        if as_json:
            from seawall.services.identity import namespace_view

            typer.echo(json.dumps(namespace_view(record)))
            return
        typer.echo(f"{record.name}\t{'public' if record.public else 'private'}")
        typer.echo(f"sbom-referrer\t{'on' if record.sbom_referrer else 'off'}")
        for who, rank in sorted(record.members.items()):
            typer.echo(f"member\t{who}\t{Role.of_rank(rank).value}")
        for pattern, who, granted in record.grants:
            typer.echo(f"grant\t{pattern}\t{who}\t{','.join(granted)}")

    return app
