"""Running one piece of async work against the configured database, for CLI commands."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from seawall.config import Settings
from seawall.db.identities import IdentityStore

T = TypeVar("T")
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file.")
]


def with_identities(settings: Settings, work: Callable[[IdentityStore], Awaitable[T]]) -> T:
    from seawall.db.backends import database_backend

    async def run() -> T:
        backend = database_backend(settings)
        await backend.start()
        try:
            return await work(IdentityStore(backend))
        finally:
            await backend.close()

    return asyncio.run(run())


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"seawall: {message}", err=True)
    return typer.Exit(code)
