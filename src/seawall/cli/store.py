"""Running one piece of async work against the configured database, for CLI commands.

Commands that only read use `with_identities`; commands that change something use
`with_identity_service`, so that the change is recorded in the audit log as made by the
operating-system user running the command.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from seawall.config import Settings
from seawall.db.identities import IdentityStore
from seawall.domain.audit import Origin

if TYPE_CHECKING:
    from seawall.db.store import SqlBackend
    from seawall.services.identity import IdentityService

T = TypeVar("T")
ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file.")
]


def with_backend(settings: Settings, work: Callable[[SqlBackend], Awaitable[T]]) -> T:
    """Open the configured database, run `work` on it, close it."""
    from seawall.db.backends import database_backend

    async def run() -> T:
        backend = database_backend(settings)
        await backend.start()
        try:
            return await work(backend)
        finally:
            await backend.close()

    return asyncio.run(run())


def with_identities(settings: Settings, work: Callable[[IdentityStore], Awaitable[T]]) -> T:
    return with_backend(settings, lambda backend: work(IdentityStore(backend)))


def with_identity_service(
    settings: Settings, work: Callable[[IdentityService, Origin], Awaitable[T]]
) -> T:
    """Run `work` with the service that changes identities and the origin of this command."""
    from seawall.db.audit import AuditStore
    from seawall.services.audit import AuditLog
    from seawall.services.identity import IdentityService

    origin = Origin.local(os_user())

    async def change(ids: IdentityStore) -> T:
        # Not started: without its writer task the log writes each event before returning.
        audit = AuditLog(AuditStore(ids.backend))
        return await work(IdentityService(ids, audit), origin)

    return with_identities(settings, change)


def os_user() -> str:
    """The operating-system user running this command (a uid when it has no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"uid:{os.getuid()}"


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"seawall: {message}", err=True)
    return typer.Exit(code)
