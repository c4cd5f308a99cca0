"""`seawall key add|list|revoke`: the public keys image signatures are verified with, in a
namespace (`--namespace NS`) or site-wide (`--site`). A policy names a key
(`require_signature = ["release-key"]`); a revoked key stays listed and its name is never
reused."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, nothing, with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.wiring import Services

NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="The key's name, as policies name it.")
]
NamespaceOption = Annotated[
    str | None,
    typer.Option("--namespace", metavar="NS", help="A key of this namespace (or --site)."),
]
SiteOption = Annotated[bool, typer.Option("--site", help="A site-wide key instead.")]
SHORT_FINGERPRINT = 16


def _scope(namespace: str | None, site: bool) -> str | None:
    """The namespace named, or None for `--site`; exactly one of the two."""
    if site == (namespace is not None):
        raise fail("name a namespace with --namespace NS, or --site (exactly one)", 2)
    return namespace


def _where(namespace: str | None) -> str:
    return "site-wide" if namespace is None else f"in {namespace}"


def read_key_file(path: Path) -> bytes:
    """The bytes of a PEM file, read no further than a key may be (the service says what is
    wrong with them); a file that cannot be read ends the command with status 2."""
    from seawall.domain.signatures import MAX_PUBLIC_KEY_BYTES

    try:
        with path.open("rb") as file:
            return file.read(MAX_PUBLIC_KEY_BYTES + 1)
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc.strerror or exc}", 2) from None


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("add")
    def add(
        name: NameArgument,
        public_key: Annotated[
            Path,
            typer.Option(
                "--public-key",
                metavar="FILE.pem",
                help="The public key, PEM (cosign.pub): ECDSA P-256/P-384, RSA, Ed25519.",
            ),
        ],
        namespace: NamespaceOption = None,
        site: SiteOption = False,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Register a public key under NAME, for policies to require signatures made with it."""
        scope = _scope(namespace, site)
        data = read_key_file(public_key)

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            return await services.trust.add(scope, name, data, origin)

        view = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view))
            return
        typer.echo(
            f"added key {name} {_where(scope)}: {view['algorithm']}, fingerprint"
            f" {view['fingerprint']}"
        )

    @app.command("list")
    def list_keys(
        namespace: NamespaceOption = None,
        site: SiteOption = False,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the keys a namespace's policy may name (its own and the site-wide ones), or
        the site-wide ones (--site), revoked ones too."""
        scope = _scope(namespace, site)

        async def work(services: Services, _origin: Origin) -> list[dict[str, Any]]:
            return await services.trust.list(scope)

        views = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            for view in views:
                typer.echo(json.dumps(view))
            return
        if not views:
            nothing(f"no keys {_where(scope)}")
            return
        _print_keys(views)

    @app.command("revoke")
    def revoke(
        name: NameArgument,
        reason: Annotated[str, typer.Option(help="Why the key is no longer trusted.")],
        namespace: NamespaceOption = None,
        site: SiteOption = False,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Revoke a key: no signature counts for it from now on. It stays listed, and its name
        is never used again."""
        scope = _scope(namespace, site)

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            return await services.trust.revoke(scope, name, reason, origin)

        view = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view))
            return
        typer.echo(f"revoked key {name} {_where(scope)} at {view['revoked_at']}")

    return app


def _print_keys(views: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from seawall.cli.output import console

    table = Table("name", "scope", "algorithm")
    table.add_column("fingerprint", no_wrap=True)
    for column in ("added by", "added at", "state"):
        table.add_column(column)
    for view in views:
        state = "in force"
        if view["revoked"]:
            state = f"revoked {view['revoked_at']} by {view['revoked_by']}: {view['revoke_reason']}"
        table.add_row(
            view["name"],
            escape(view["scope"]),
            view["algorithm"],
            view["fingerprint"][:SHORT_FINGERPRINT],
            escape(view["added_by"]),
            view["added_at"],
            escape(state),
        )
    console().print(table)
