"""`seawall exception add|list|remove`: the pull gate's exceptions in a namespace. Each lets one
vulnerability, one secret rule or a missing scan through, in the repositories its pattern
matches, owned by whoever added it, until it expires."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, nothing, with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.wiring import Services

NamespaceArgument = Annotated[
    str, typer.Argument(metavar="NS", help="The namespace the exceptions are in.")
]


def _kind(vulnerability: str | None, secret_rule: str | None, unscanned: bool) -> tuple[str, str]:
    """(kind, target) from the three options, of which exactly one is given."""
    given = [
        (kind, target)
        for kind, target in (
            ("vulnerability", vulnerability),
            ("secret", secret_rule),
            ("unscanned", "" if unscanned else None),
        )
        if target is not None
    ]
    if len(given) != 1:
        raise fail("name exactly one of --vulnerability ID, --secret-rule RULE or --unscanned", 2)
    return given[0]


def _what(view: dict[str, Any]) -> str:
    """`vulnerability CVE-2024-1 in team-a/*`, as a person reads an exception."""
    where = view["repository"] + (f"@{view['digest']}" if view["digest"] else "")
    target = f" {view['target']}" if view["target"] else ""
    return f"{view['kind']}{target} in {where}"


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("add")
    def add(
        namespace: NamespaceArgument,
        repository: Annotated[
            str,
            typer.Option(help="The repositories it covers: a pattern within NS (team-a/*)."),
        ],
        reason: Annotated[str, typer.Option(help="Why the pull gate should let this through.")],
        expires: Annotated[
            str,
            typer.Option(
                help="YYYY-MM-DD (the end of that day, UTC) or an ISO time; at most"
                " exception_max_days away."
            ),
        ],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        vulnerability: Annotated[
            str | None,
            typer.Option(
                "--vulnerability", metavar="ID", help="Let this advisory (or alias) through."
            ),
        ] = None,
        secret_rule: Annotated[
            str | None,
            typer.Option("--secret-rule", metavar="RULE", help="Let this secret rule through."),
        ] = None,
        unscanned: Annotated[
            bool, typer.Option("--unscanned", help="Let images without a complete scan through.")
        ] = False,
        digest: Annotated[str | None, typer.Option(help="Only the image with this digest.")] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Add an exception to the pull gate (exactly one of --vulnerability, --secret-rule,
        --unscanned), owned by you, until --expires."""
        kind, target = _kind(vulnerability, secret_rule, unscanned)

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            return await services.policies.add_exception(
                namespace, kind, target or None, repository, digest, reason, expires, origin
            )

        view = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view))
            return
        typer.echo(
            f"added exception {view['id']} in {namespace}: {_what(view)} until"
            f" {view['expires_at']} ({view['days_left']} days left), owned by {view['owner']}"
        )

    @app.command("list")
    def list_exceptions(
        namespace: NamespaceArgument,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """List the namespace's exceptions, active, expired and removed, oldest first."""

        async def work(services: Services, _origin: Origin) -> list[dict[str, Any]]:
            return await services.policies.exceptions(namespace)

        views = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            for view in views:
                typer.echo(json.dumps(view))
            return
        if not views:
            nothing(f"no exceptions in {namespace}")
            return
        _print_listing(views)

    @app.command("remove")
    def remove(
        namespace: NamespaceArgument,
        exception_id: Annotated[
            int, typer.Argument(metavar="ID", help="The exception's id (exception list).")
        ],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
    ) -> None:
        """Remove an exception in force (it stays listed, as removed)."""

        async def work(services: Services, origin: Origin) -> None:
            await services.policies.remove_exception(namespace, exception_id, origin)

        with_lifecycle(load(config, data_dir=data_dir), work)
        typer.echo(f"removed exception {exception_id} from {namespace}")

    return app


def _print_listing(views: list[dict[str, Any]]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from seawall.cli.output import console

    table = Table("id", "kind", "target")
    table.add_column("repository", no_wrap=True)
    for column in ("owner", "expires", "days left", "state", "reason"):
        table.add_column(column)
    for view in views:
        where = view["repository"] + (f"@{view['digest']}" if view["digest"] else "")
        state = view["state"]
        if state == "removed" and view["removed_by"]:
            state += f" by {view['removed_by']}"
        table.add_row(
            str(view["id"]),
            view["kind"],
            escape(view["target"] or ""),
            escape(where),
            escape(view["owner"]),
            view["expires_at"],
            str(view["days_left"]) if view["state"] == "active" else "-",
            escape(state),
            escape(view["reason"]),
        )
    console().print(table)
