"""`seawall tag deprecate|undeprecate|channel|list` and `seawall pull-check`: versions side by
side (channels, deprecations that reach every puller, which tags the policy makes immutable),
and whether a pull would be allowed now, and why."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, image_argument, nothing, tag_argument, with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.wiring import Services

TagArgument = Annotated[str, typer.Argument(metavar="REPOSITORY:TAG", help="The tagged version.")]
ImageArgument = Annotated[
    str, typer.Argument(metavar="IMAGE", help="REPOSITORY:TAG or REPOSITORY@DIGEST.")
]
SHORT_DIGEST = 19  # "sha256:" and 12 hex digits, as the other tables show a digest


def deprecation_text(deprecation: dict[str, Any] | None) -> str:
    """`message; sunset 2026-12-31; use v2`, or "" when not deprecated."""
    if not deprecation:
        return ""
    parts = [deprecation["message"]]
    if deprecation.get("sunset"):
        parts.append(f"sunset {deprecation['sunset']}")
    if deprecation.get("replacement"):
        parts.append(f"use {deprecation['replacement']}")
    return "; ".join(parts)


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("deprecate")
    def deprecate(
        image: TagArgument,
        message: Annotated[
            str, typer.Option(help="What pullers are told (printable ASCII, up to 512).")
        ],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        sunset: Annotated[
            str | None,
            typer.Option(metavar="YYYY-MM-DD", help="The day the version goes out of support."),
        ] = None,
        replacement: Annotated[
            str | None, typer.Option(metavar="TAG", help="The tag to use instead.")
        ] = None,
    ) -> None:
        """Deprecate a version: every pull of it then carries a warning (and, past its sunset,
        is refused where the policy says deprecation.after_sunset = "block")."""
        repository, tag = tag_argument(image)

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            return await services.versions.deprecate(
                repository, tag, message, sunset, replacement, origin
            )

        view = with_lifecycle(load(config, data_dir=data_dir), work)
        typer.echo(f"deprecated {repository}:{tag}: {deprecation_text(view)}")

    @app.command("undeprecate")
    def undeprecate(
        image: TagArgument,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
    ) -> None:
        """Take a version's deprecation away."""
        repository, tag = tag_argument(image)

        async def work(services: Services, origin: Origin) -> None:
            await services.versions.undeprecate(repository, tag, origin)

        with_lifecycle(load(config, data_dir=data_dir), work)
        typer.echo(f"{repository}:{tag} is no longer deprecated")

    @app.command("channel")
    def channel(
        image: TagArgument,
        name: Annotated[
            str | None,
            typer.Argument(
                metavar="CHANNEL",
                help="stable, legacy, testing or your own (lowercase).",
                show_default=False,
            ),
        ] = None,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        clear: Annotated[
            bool, typer.Option("--clear", help="Remove the version's channel instead.")
        ] = False,
    ) -> None:
        """Put a version in a channel (CHANNEL), or take it out of its channel (--clear)."""
        if clear == (name is not None):
            raise fail("name a CHANNEL, or --clear to remove it (exactly one)", 2)
        repository, tag = tag_argument(image)

        async def work(services: Services, origin: Origin) -> None:
            await services.versions.channel(repository, tag, name, origin)

        with_lifecycle(load(config, data_dir=data_dir), work)
        if name is None:
            typer.echo(f"{repository}:{tag} is in no channel")
        else:
            typer.echo(f"{repository}:{tag} is in channel {name}")

    @app.command("list")
    def list_tags(
        repository: Annotated[str, typer.Argument(metavar="REPOSITORY")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List a repository's tags: channel, deprecation, immutability (and the rule), digest,
        when and by whom each was pushed, and its last recorded pull."""

        async def work(services: Services, _origin: Origin) -> list[dict[str, Any]]:
            return await services.versions.tags(repository)

        rows = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            for row in rows:
                typer.echo(json.dumps(row))
            return
        if not rows:
            nothing(f"no tags in {repository}")
            return
        _print_tags(rows)

    return app


def _print_tags(rows: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from seawall.cli.output import console

    table = Table("tag", "channel", "deprecated", "immutable")
    table.add_column("digest", no_wrap=True)
    for column in ("pushed at", "pushed by", "last pulled"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["tag"],
            row["channel"] or "",
            escape(deprecation_text(row["deprecation"])),
            f'yes ("{escape(row["immutable_rule"])}")' if row["immutable"] else "",
            row["digest"][:SHORT_DIGEST],
            row["pushed_at"],
            escape(row["pushed_by"] or ""),
            row["last_pulled"] or "never",
        )
    console().print(table)


def register_pull_check(app: typer.Typer, load: Callable[..., Settings]) -> None:
    @app.command("pull-check", short_help="Would a pull be allowed now, and why (exit 1: no).")
    def pull_check(
        image: ImageArgument,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Say whether a pull of IMAGE would be allowed now, and why: the rule, the message and
        the warnings a puller would get. Records no pull. Exit status 0 when it would be
        allowed, 1 when it would be refused (or the image is not there)."""
        repository, reference = image_argument(image)

        async def work(services: Services, _origin: Origin) -> dict[str, Any]:
            return await services.versions.pull_check(repository, reference)

        answer = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(answer, indent=2))
        else:
            _print_answer(answer)
        if not answer["allowed"]:
            raise typer.Exit(1)


def _print_answer(answer: dict[str, Any]) -> None:
    verdict = "allowed" if answer["allowed"] else "refused"
    shown = f"{answer['repository']}@{answer['digest']}"
    if answer["reference"] != answer["digest"]:
        shown = f"{answer['repository']}:{answer['reference']} ({answer['digest']})"
    typer.echo(f"{verdict}: {shown}")
    if answer["rule"]:
        typer.echo(f"rule: {answer['rule']}")
    if answer["message"]:
        typer.echo(f"message: {answer['message']}")
    for warning in answer["warnings"]:
        typer.echo(f"warning: {warning}")
