"""`seawall promote`, `seawall promotion request|approve|reject|list|show` and `seawall stage
show|check`: moving a digest from one stage to the next through its quality gates.

A command runs as the operator on the server, who holds every right. `--as USER` acts as a
registry user instead (their rights are checked, and the record names them, run by this
operating-system user): approvals always name the user who approves, since an approval counts
only from someone other than the image's pusher and the promotion's requester.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.output import console
from seawall.cli.store import fail, os_user, with_lifecycle
from seawall.config import Settings

if TYPE_CHECKING:
    from seawall.domain.audit import Origin
    from seawall.domain.rights import Actor
    from seawall.wiring import Services

ImageArgument = Annotated[
    str,
    typer.Argument(
        metavar="IMAGE", help="REPOSITORY:TAG or REPOSITORY@DIGEST in the source stage."
    ),
]
ToOption = Annotated[str, typer.Option("--to", metavar="NAMESPACE", help="The next stage.")]
TagOption = Annotated[
    list[str] | None,
    typer.Option("--tag", metavar="TAG", help="A tag to create in the target (repeatable)."),
]
AsOption = Annotated[
    str | None,
    typer.Option("--as", metavar="USER", help="Act as this registry user (their rights apply)."),
]
IdArgument = Annotated[int, typer.Argument(metavar="ID", help="The promotion's id.")]


async def _acting(
    services: Services, origin: Origin, user: str | None
) -> tuple[Origin, Actor | None]:
    """(the origin to record, the actor whose rights apply: None for the operator)."""
    from seawall.domain.audit import ActorKind, Origin
    from seawall.errors import ErrorCode, RegistryError

    if user is None:
        return origin, None
    actor = await services.access.actor(user)
    if actor is None or actor.kind != "user":
        raise RegistryError(ErrorCode.NOT_FOUND, f"no user {user!r}")
    acting = Origin(
        actor.name, ActorKind.LOCAL, address="local", user_agent=f"seawall (run by {os_user()})"
    )
    return acting, actor


def _print_gates(gates: list[dict[str, Any]]) -> None:
    from rich.table import Table

    table = Table("gate", "result", "message", "rule")
    for gate in gates:
        table.add_row(
            gate["gate"], "pass" if gate["passed"] else "FAIL", gate["message"], gate["rule"]
        )
    console().print(table)


def _print_promotion(view: dict[str, Any]) -> None:
    typer.echo(f"promotion {view['id']}: {view['state']}")
    typer.echo(f"  {view['source']}@{view['digest']} -> {view['target']}")
    if view["tags"]:
        typer.echo(f"  tags: {', '.join(view['tags'])}")
    typer.echo(f"  requested by {view['requested_by']} at {view['requested_at']}")
    if view.get("expires_at"):
        typer.echo(f"  expires at {view['expires_at']}")
    for vote in view["votes"]:
        said = f": {vote['comment']}" if vote["comment"] else ""
        typer.echo(f"  {vote['vote']}d by {vote['voter']} at {vote['at']}{said}")
    if view.get("receipt"):
        typer.echo(f"  receipt: {view['target']}@{view['receipt']}")
    if view.get("reason"):
        typer.echo(f"  reason: {view['reason']}")
    _print_gates(view["gates"])


def _run_promotion(
    load: Callable[..., Settings],
    config: Any,
    data_dir: Any,
    image: str,
    to: str,
    tags: list[str] | None,
    user: str | None,
    as_json: bool,
    *,
    dry_run: bool = False,
    request: bool = False,
) -> None:
    from seawall.services.promotion import PromotionRefused

    refused: list[PromotionRefused] = []

    async def work(services: Services, origin: Origin) -> dict[str, Any]:
        acting, actor = await _acting(services, origin, user)
        try:
            return await services.promotion.promote(
                image, to, tags or [], acting, actor, dry_run=dry_run, request=request
            )
        except PromotionRefused as exc:
            refused.append(exc)
            return {}

    view = with_lifecycle(load(config, data_dir=data_dir), work)
    if refused:
        if as_json:
            typer.echo(json.dumps({"refused": True, "gates": refused[0].gates}, indent=2))
        else:
            _print_gates(refused[0].gates)
        raise fail(refused[0].message)
    if as_json:
        typer.echo(json.dumps(view, indent=2))
        if dry_run and view["would"] == "refuse":
            raise typer.Exit(1)
        return
    if dry_run:
        typer.echo(
            f"dry run: would {view['would']} {view['source']}@{view['digest']} -> {view['target']}"
        )
        _print_gates(view["gates"])
        if view["would"] == "refuse":
            raise typer.Exit(1)
        return
    _print_promotion(view)


def register(app: typer.Typer, load: Callable[..., Settings]) -> None:
    @app.command("promote", short_help="Promote an image to the next stage through its gates.")
    def promote(
        image: ImageArgument,
        to: ToOption,
        tag: TagOption = None,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        dry_run: Annotated[
            bool, typer.Option("--dry-run", help="Evaluate the gates; change nothing.")
        ] = False,
        user: AsOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Promote IMAGE into the stage NAMESPACE (whose policy says `\\[promotion] from` is the
        image's namespace): every gate is evaluated; when all pass, the digest (with its
        platforms, signatures, SBOMs and attestations) is linked into NAMESPACE/<same path>,
        its tags set, and a signed receipt attached. A refusal lists the failed gates, changes
        nothing and exits 1. With approvals required, use `seawall promotion request`."""
        _run_promotion(load, config, data_dir, image, to, tag, user, as_json, dry_run=dry_run)


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("request")
    def request(
        image: ImageArgument,
        to: ToOption,
        tag: TagOption = None,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        user: AsOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Request a promotion: it completes at once if every gate passes, else it waits
        (pending) for approvals and the other gates, until it expires."""
        _run_promotion(load, config, data_dir, image, to, tag, user, as_json, request=True)

    def _vote(
        promotion_id: int,
        approve: bool,
        user: str | None,
        comment: str | None,
        config: Any,
        data_dir: Any,
        as_json: bool,
    ) -> None:
        if user is None:
            raise fail("approvals name the registry user who gives them: pass --as USER", 2)

        async def work(services: Services, origin: Origin) -> dict[str, Any]:
            acting, actor = await _acting(services, origin, user)
            assert actor is not None
            return await services.promotion.vote(promotion_id, approve, acting, actor, comment)

        view = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view, indent=2))
        else:
            _print_promotion(view)

    @app.command("approve")
    def approve(
        promotion_id: IdArgument,
        user: AsOption = None,
        comment: Annotated[str | None, typer.Option(help="Why (optional).")] = None,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Approve a pending promotion as USER (who has the approve right on the target and
        neither pushed the image nor requested it); it completes if its gates now pass."""
        _vote(promotion_id, True, user, comment, config, data_dir, as_json)

    @app.command("reject")
    def reject(
        promotion_id: IdArgument,
        reason: Annotated[str, typer.Option(help="Why it is rejected.")],
        user: AsOption = None,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Reject a pending promotion as USER; it ends."""
        _vote(promotion_id, False, user, reason, config, data_dir, as_json)

    @app.command("list")
    def list_promotions(
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        namespace: Annotated[
            str | None, typer.Option(help="Promotions from or into this namespace.")
        ] = None,
        digest: Annotated[
            str | None, typer.Option(help="The history of one digest through the stages.")
        ] = None,
        state: Annotated[
            str | None, typer.Option(help="pending, completed, rejected or expired.")
        ] = None,
        as_json: JsonOption = False,
    ) -> None:
        """Promotions, newest first: who, when, from where to where, each gate's verdict."""

        async def work(services: Services, _origin: Origin) -> list[dict[str, Any]]:
            return await services.promotion.listing(namespace, digest, state)

        views = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(views, indent=2))
            return
        from rich.table import Table

        table = Table("id", "state", "source", "target", "digest", "by", "at", "gates")
        for v in views:
            gates = " ".join(f"{g['gate']}:{'ok' if g['passed'] else 'FAIL'}" for g in v["gates"])
            table.add_row(
                str(v["id"]),
                v["state"],
                v["source"],
                v["target"],
                v["digest"][:19],
                v["requested_by"],
                v["decided_at"] or v["requested_at"],
                gates,
            )
        table.columns[4].no_wrap = True
        console().print(table)

    @app.command("show")
    def show(
        promotion_id: IdArgument,
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """One promotion with its votes and every gate's verdict and evidence."""

        async def work(services: Services, _origin: Origin) -> dict[str, Any]:
            return await services.promotion.show(promotion_id)

        view = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view, indent=2))
        else:
            _print_promotion(view)

    return app


def make_stage(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("show")
    def show(
        namespace: Annotated[str, typer.Argument(metavar="NAMESPACE")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """The chain of stages ending at NAMESPACE, each step's gates, and the digests
        flagged there (in the stage, but failing its gates now)."""

        async def work(services: Services, _origin: Origin) -> dict[str, Any]:
            return await services.stages.show(namespace)

        view = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(view, indent=2))
            return
        typer.echo(" -> ".join(step["namespace"] for step in view["chain"]))
        for step in view["chain"]:
            if step["from"] is None:
                typer.echo(f"{step['namespace']}: first stage (pushed to directly)")
                continue
            typer.echo(f"{step['from']} -> {step['namespace']} (push = {step['push']})")
            for key, value in step["gates"].items():
                shown = json.dumps(value) if not isinstance(value, str) else value
                typer.echo(f"  {key} = {shown}")
        for flag in view["flagged"]:
            typer.echo(f"flagged: {flag['repository']}@{flag['digest']} ({flag['cause']})")

    @app.command("check")
    def check(
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Judge again every promoted digest still in a stage against its stage's content
        gates now (what a vulnerability import or a key revocation does by itself); flag
        those that fail. Exit 1 when one was newly flagged."""

        async def work(services: Services, _origin: Origin) -> list[dict[str, Any]]:
            return await services.stages.regate("stage check")

        flagged = with_lifecycle(load(config, data_dir=data_dir), work)
        if as_json:
            typer.echo(json.dumps(flagged, indent=2))
        else:
            for flag in flagged:
                failing = ", ".join(g["gate"] for g in flag["gates"])
                typer.echo(f"flagged: {flag['repository']}@{flag['digest']} ({failing})")
            if not flagged:
                typer.echo("no digest newly flagged")
        if flagged:
            raise typer.Exit(1)

    return app
