"""`seawall signing-key list|rotate|retire`: the keys Seawall signs bearer tokens (`--purpose
tokens`, the default) and promotion receipts (`--purpose receipts`) with, held in the database
and shared by every node (services/keys.py). Not to be confused with `seawall key`, the public
keys image signatures are verified with."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, nothing, os_user, with_services
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.services.keys import Algorithm, SigningKeys
    from seawall.wiring import Services


class PurposeChoice(StrEnum):
    TOKENS = "tokens"
    RECEIPTS = "receipts"


class AlgorithmChoice(StrEnum):
    ES256 = "ES256"
    RS256 = "RS256"


ALGORITHMS: dict[AlgorithmChoice, Algorithm] = {
    AlgorithmChoice.ES256: "ES256",
    AlgorithmChoice.RS256: "RS256",
}
PurposeOption = Annotated[
    PurposeChoice,
    typer.Option("--purpose", help="Keys that sign bearer tokens, or promotion receipts."),
]


def _keys(services: Services, purpose: PurposeChoice) -> SigningKeys:
    return services.keys if purpose is PurposeChoice.TOKENS else services.receipt_keys


def _when(at: Any) -> str | None:
    from seawall.domain.clock import utc_iso

    return None if at is None else utc_iso(float(at))


def _view(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        **entry,
        "created_at": _when(entry["created_at"]),
        "retired_at": _when(entry["retired_at"]),
    }


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("list")
    def list_keys(
        purpose: PurposeOption = PurposeChoice.TOKENS,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the signing keys, retired ones too: the one that signs, those that verify."""

        async def work(services: Services) -> list[dict[str, Any]]:
            return [_view(entry) for entry in await _keys(services, purpose).listing()]

        views = with_services(load(config, data_dir=data_dir), work)
        if as_json:
            for view in views:
                typer.echo(json.dumps(view))
            return
        if not views:
            nothing(f"no {purpose} signing keys yet (the first `seawall serve` makes one)")
            return
        _print(views)

    @app.command("rotate")
    def rotate(
        purpose: PurposeOption = PurposeChoice.TOKENS,
        algorithm: Annotated[
            AlgorithmChoice,
            typer.Option("--algorithm", help="ES256 (ECDSA P-256) or RS256 (RSA 3072, tokens)."),
        ] = AlgorithmChoice.ES256,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Generate a new key that signs from now on; the old ones keep verifying."""
        from seawall.domain.audit import Origin
        from seawall.services.keys import KeyFileError, KeysUnusable

        if purpose is PurposeChoice.RECEIPTS and algorithm is not AlgorithmChoice.ES256:
            raise fail("receipt keys are ES256 keys", 2)

        async def work(services: Services) -> dict[str, Any]:
            keys = _keys(services, purpose)
            await keys.settle()  # an earlier release's files first, so they keep verifying
            try:
                new = await keys.rotate(ALGORITHMS[algorithm], Origin.local(os_user()))
            except (KeyFileError, KeysUnusable) as exc:
                raise fail(str(exc)) from None
            return await _view_of(keys, new.kid)

        view = with_services(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view))
            return
        typer.echo(
            f"new {purpose} signing key {view['kid']} ({view['algorithm']}): every server signs"
            " with it within 30 seconds; the older keys keep verifying until retired"
        )

    @app.command("retire")
    def retire(
        kid: Annotated[str, typer.Argument(metavar="KID", help="The key's kid, as listed.")],
        purpose: PurposeOption = PurposeChoice.TOKENS,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Retire a key: what it signed is refused from now on (every server within 30
        seconds). The key that signs can be retired only if another key could sign instead."""
        from seawall.db.signing_keys import LastSigningKey
        from seawall.domain.audit import Origin

        async def work(services: Services) -> dict[str, Any]:
            keys = _keys(services, purpose)
            await keys.settle()
            try:
                retired = await keys.retire(kid, Origin.local(os_user()))
            except LastSigningKey as exc:
                raise fail(f"refused: {exc}") from None
            if retired is None:
                raise fail(f"no {purpose} signing key {kid[:64]!r} in force")
            return await _view_of(keys, retired.kid)

        view = with_services(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view))
            return
        typer.echo(f"retired {purpose} signing key {view['kid']} at {view['retired_at']}")

    return app


async def _view_of(keys: SigningKeys, kid: str) -> dict[str, Any]:
    """The key `kid` as `list` shows it."""
    listed = {entry["kid"]: entry for entry in await keys.listing()}
    return _view(listed[kid])


def _print(views: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from seawall.cli.output import console

    table = Table("purpose")
    table.add_column("kid", no_wrap=True)
    for column in ("algorithm", "state", "encrypted", "created", "retired", "source"):
        table.add_column(column)
    for view in views:
        table.add_row(
            view["purpose"],
            view["kid"],
            view["algorithm"],
            view["state"],
            "yes" if view["encrypted"] else "no",
            view["created_at"],
            view["retired_at"] or "",
            view["source"],
        )
    console().print(table)
