"""`seawall retention plan|apply`: what a namespace's `[retention]` rules keep and delete, each
tag and manifest with the rule that decided it, and carrying that plan out."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.wiring import Services

NamespaceArgument = Annotated[str, typer.Argument(metavar="NAMESPACE")]
SHORT_DIGEST = 19  # "sha256:" and 12 hex digits, as the other tables show a digest


def size_text(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def _what(item: dict[str, Any]) -> str:
    """A tag by its name, a manifest by its short digest."""
    return item["tag"] if item["kind"] == "tag" else str(item["digest"])[:SHORT_DIGEST]


def _table(items: list[dict[str, Any]], extra: str | None = None) -> None:
    from rich.markup import escape
    from rich.table import Table

    from seawall.cli.output import console

    table = Table("repository", "tag / manifest", "action", "rule", "size", "why")
    table.columns[1].no_wrap = True
    if extra is not None:
        table.add_column(extra)
    for item in items:
        row = [
            item["repository"],
            _what(item),
            item["action"],
            item["rule"],
            size_text(item["size"]),
            escape(item["reason"]),
        ]
        if extra is not None:
            row.append(escape(item.get(extra) or ""))
        table.add_row(*row)
    console().print(table)


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("plan")
    def plan(
        namespace: NamespaceArgument,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Show what the namespace's [retention] rules keep and delete now: every tag and
        manifest with keep or delete, the rule that decided it and why, its size; totals,
        the bytes deleting would free, and the plan's digest for `apply --expect`. Changes
        nothing."""

        async def work(services: Services, _origin: Origin) -> dict[str, Any]:
            return await services.retention.plan(namespace)

        view = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view, indent=2))
            return
        if not view["enabled"]:
            typer.echo(f"{namespace}: {view['message']}")
        if view["items"]:
            _table(view["items"])
        totals = view["totals"]
        typer.echo(
            f"tags: keep {totals['tags']['keep']}, delete {totals['tags']['delete']};"
            f" manifests: keep {totals['manifests']['keep']},"
            f" delete {totals['manifests']['delete']};"
            f" reclaimable: {size_text(totals['reclaimable_bytes'])}"
        )
        typer.echo(f"plan {view['digest']}")
        typer.echo(f"apply it: seawall retention apply {namespace} --expect {view['digest']}")

    @app.command("apply")
    def apply(
        namespace: NamespaceArgument,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        expect: Annotated[
            str | None,
            typer.Option(
                metavar="DIGEST",
                help="The digest `retention plan` showed: refused if the plan changed since.",
            ),
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Carry out the namespace's retention plan as it is now (with --expect: only if it is
        still the plan you looked at). Deleted tags go to the trash (`seawall trash list`,
        `seawall tag restore`); every deletion is audited with its rule."""

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            return await services.retention.apply(namespace, origin, expect)

        result = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(result, indent=2))
            return
        totals = result["totals"]
        typer.echo(
            f"{namespace}: deleted {totals['tags_deleted']} tags and"
            f" {totals['manifests_deleted']} manifests; {totals['following']} go with them"
            f" (garbage collection); {totals['skipped']} skipped;"
            f" reclaimable: {size_text(totals['reclaimable_bytes'])}"
        )
        typer.echo(f"plan {result['plan']}")
        if result["skipped"]:
            _table(result["skipped"], "skipped")

    return app
