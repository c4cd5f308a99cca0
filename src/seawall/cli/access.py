"""`seawall access explain`: the decision the registry makes, and the rule behind it."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from seawall.cli.options import ConfigOption, DataDirOption, JsonOption
from seawall.cli.store import fail, with_services
from seawall.config import Settings
from seawall.domain.access import Decision
from seawall.domain.names import validate_repository
from seawall.domain.rights import Action, Actor, parse_account
from seawall.errors import RegistryError

if TYPE_CHECKING:
    from seawall.wiring import Services


def make(load: Callable[..., Settings]) -> typer.Typer:
    app = typer.Typer(no_args_is_help=True)

    @app.command("explain")
    def explain(
        who: Annotated[
            str,
            typer.Argument(
                help="a user (NAME or user:NAME), a robot (NS+NAME or robot:NS+NAME) or 'anonymous'"
            ),
        ],
        repository: str,
        action: Annotated[str, typer.Argument(help="pull, push, delete or manage")],
        config: ConfigOption = None,
        data_dir: DataDirOption = None,
        as_json: JsonOption = False,
    ) -> None:
        """Say whether WHO may do ACTION on REPOSITORY, and which rule decides."""
        try:
            wanted = Action(action)
            if wanted is Action.CATALOG:
                raise ValueError
        except ValueError:
            raise fail(f"action is pull, push, delete or manage, not {action!r}", 2) from None
        try:
            account = parse_account(who)
        except ValueError as exc:
            raise fail(str(exc), 2) from None
        try:
            validate_repository(repository)
        except RegistryError as exc:
            raise fail(exc.message, 2) from None

        async def decide(services: Services) -> Decision | None:
            access = services.access  # explaining never creates a namespace
            actor = Actor.anonymous() if account is None else await access.actor(account)
            if actor is None:
                return None
            return await access.decide(actor, repository, wanted)

        decision = with_services(load(config, data_dir=data_dir), decide)
        if decision is None:
            raise fail(f"no user or robot {account!r}")
        if as_json:
            from seawall.services.access import explanation_view

            view = explanation_view(account or "anonymous", repository, wanted, decision)
            typer.echo(json.dumps(view))
        else:
            verdict = "allowed" if decision.allowed else "denied"
            typer.echo(f"{verdict} ({decision.rule}): {decision.reason}")
        if not decision.allowed:
            raise typer.Exit(1)

    return app
