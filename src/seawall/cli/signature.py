"""`seawall signature list`: the signatures an image carries in its repository (cosign, under
the `sha256-<hex>.sig` tag and as OCI referrers; Notation, listed but not verified), and which
registered keys each verifies with."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import image_argument, nothing, with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.wiring import Services

ImageArgument = Annotated[
    str, typer.Argument(metavar="IMAGE", help="REPOSITORY:TAG or REPOSITORY@DIGEST.")
]
SHORT_DIGEST = 19  # "sha256:" and 12 hex digits, as the other tables show a digest


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("list")
    def list_signatures(
        image: ImageArgument,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the image's signatures: kind, where each was found, and the registered keys
        (of its namespace, or site-wide) it verifies with."""
        repository, reference = image_argument(image)

        async def work(services: Services, _origin: Origin) -> dict[str, Any]:
            return await services.signatures.show(repository, reference)

        found = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(found, indent=2))
            return
        if not found["signatures"]:
            nothing(f"no signatures for {repository}@{found['digest']}")
            return
        _print_signatures(found["signatures"])

    return app


def _print_signatures(rows: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from seawall.cli.output import console

    table = Table("kind", "where")
    table.add_column("manifest", no_wrap=True)
    for column in ("verified with", "note"):
        table.add_column(column)
    for row in rows:
        keys = ", ".join(f"{k['name']} ({k['scope']})" for k in row["verified_with"])
        table.add_row(
            row["kind"],
            escape(row["where"]),
            row["manifest"][:SHORT_DIGEST],
            escape(keys or "-"),
            escape(row["note"] or ""),
        )
    console().print(table)
