"""Running one piece of async work against the configured registry, for CLI commands.

Every command works through the same services the server uses (`with_services`:
`seawall.wiring.Services.build` over the database). Commands that change identities use
`with_identity_service`, so that the change is recorded in the audit log as made by the
operating-system user running the command, and a value the rules refuse ends the command with
the service's own message. The database is opened with `seawall.db.schema.open_database`, which
creates nothing: a command pointed at the wrong place says where it looked and how to point it
at the registry (`database_failure`), in one line.
"""

from __future__ import annotations

import asyncio
import getpass
import os
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from seawall.config import Settings
from seawall.domain.audit import Origin

if TYPE_CHECKING:
    from seawall.db.identities import IdentityStore
    from seawall.services.identity import IdentityService
    from seawall.wiring import Services

T = TypeVar("T")
POINT_AT_REGISTRY = (
    "point the command at your registry with --data-dir DIR or --config FILE (or"
    " SEAWALL_DATA_DIR, SEAWALL_DATABASE_URL)"
)


def with_services(
    settings: Settings, work: Callable[[Services], Awaitable[T]], logs_to_stderr: bool = False
) -> T:
    """Open the configured database, build the services over it, run `work`, close them. A
    database that is not there, not reachable or at another schema revision ends the command
    (`database_failure`), and so does a refusal from a service (its message, in one line).
    With `logs_to_stderr`, what the services log goes to standard error: standard output is
    the command's result."""
    from seawall.db.schema import open_database
    from seawall.errors import RegistryError
    from seawall.wiring import Services

    if logs_to_stderr:
        from seawall.logs import configure_logging

        configure_logging(settings, to_stderr=True)

    async def run() -> T:
        services = Services.build(settings, backend=await open_database(settings))
        try:
            await services.audit.start_forwarders()
            return await work(services)
        finally:
            await services.close()

    try:
        return run_on_database(settings, run)
    except RegistryError as exc:
        raise fail(exc.message) from None
    except OSError as exc:
        # The S3 store's failures (a bucket that is not there, refused keys, an endpoint that
        # does not answer) come up from wherever the work touched the bucket; the operator
        # needs the store it tried and the reason, not a traceback.
        from seawall.storage.s3api import S3Error

        if not settings.uses_s3 or not isinstance(exc, S3Error | ConnectionError | TimeoutError):
            raise
        raise fail(f"blob storage {settings.storage_url}: {exc}") from None


def run_on_database(settings: Settings, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """`asyncio.run(main())`, with the database errors of opening it said in one line."""
    from seawall.db.schema import NoDatabase, SchemaMismatch
    from seawall.db.store import DatabaseUnavailable

    try:
        return asyncio.run(main())
    except (NoDatabase, SchemaMismatch, DatabaseUnavailable) as exc:
        raise database_failure(settings, exc) from None


def database_failure(settings: Settings, exc: Exception) -> typer.Exit:
    """The one line that says why the configured database cannot be used, and what to do."""
    from seawall.db.schema import NoDatabase, SchemaMismatch, location

    if isinstance(exc, NoDatabase):
        return fail(
            f"{exc}{_chosen_by(settings)}; {POINT_AT_REGISTRY}; `seawall serve` or `seawall db"
            " upgrade --create` makes a new one"
        )
    if isinstance(exc, SchemaMismatch):
        return fail(
            f"{exc}: `seawall db upgrade` brings an older database up to date (`seawall serve`"
            " does at start); a newer one needs the Seawall version that wrote it"
        )
    return fail(
        f"{location(settings)}: {exc}; check database_url (--config FILE or SEAWALL_DATABASE_URL)"
    )


def _chosen_by(settings: Settings) -> str:
    """How the database location was chosen, when the default chose it."""
    if settings.database_url or "data_dir" in settings.model_fields_set:
        return ""
    return f" (data_dir defaults to ./{settings.data_dir}, in the current directory)"


def with_identities(settings: Settings, work: Callable[[IdentityStore], Awaitable[T]]) -> T:
    """Run `work` on the stored users, teams, robots and namespaces (to read them)."""
    return with_services(settings, lambda services: work(services.identities))


def with_identity_service(
    settings: Settings, work: Callable[[IdentityService, Origin], Awaitable[T]]
) -> T:
    """Run `work` with the service that changes identities and the origin of this command. A
    value its rules refuse ends the command with status 2; a change it refuses to make (the
    last site admin) with status 1."""
    from seawall.errors import ErrorCode, RegistryError

    origin = Origin.local(os_user())

    async def change(services: Services) -> T:
        try:
            return await work(services.identity, origin)
        except RegistryError as exc:
            if exc.code is ErrorCode.INPUT_UNSUPPORTED:
                raise fail(exc.message, 2) from None
            raise fail(f"refused: {exc.message}") from None

    return with_services(settings, change)


def os_user() -> str:
    """The operating-system user running this command (a uid when it has no name)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (some containers)
        return f"uid:{os.getuid()}"


def nothing(message: str) -> None:
    """Say that a listing is empty, on standard error: standard output stays empty, as a
    script reading it expects."""
    typer.echo(message, err=True)


def image_argument(text: str) -> tuple[str, str]:
    """(repository, reference) of an IMAGE argument, `REPOSITORY:TAG` or `REPOSITORY@DIGEST`;
    anything else ends the command with status 2."""
    from seawall.services.scan_reports import split_reference

    try:
        return split_reference(text)
    except ValueError as exc:
        raise fail(str(exc), 2) from None


def tag_argument(text: str) -> tuple[str, str]:
    """(repository, tag) of a `REPOSITORY:TAG` argument; a digest names no tag (status 2)."""
    if "@" in text:
        raise fail(f"{text[:200]!r}: name a tag, as REPOSITORY:TAG", 2)
    return image_argument(text)


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"seawall: {message}", err=True)
    return typer.Exit(code)


def with_lifecycle(settings: Settings, work: Callable[[Services, Origin], Awaitable[T]]) -> T:
    """Run `work` with the services and the origin of this command (the lifecycle commands:
    `policy`, `exception`, `tag`, `pull-check`). A value the services' rules refuse (a bad key,
    tag, date or pattern) ends the command with status 2; any other refusal with status 1."""
    from seawall.errors import ErrorCode, RegistryError

    invalid = {
        ErrorCode.INPUT_UNSUPPORTED,
        ErrorCode.TAG_INVALID,
        ErrorCode.NAME_INVALID,
        ErrorCode.DIGEST_INVALID,
    }
    origin = Origin.local(os_user())

    async def run(services: Services) -> T:
        try:
            return await work(services, origin)
        except RegistryError as exc:
            if exc.code in invalid:
                raise fail(exc.message, 2) from None
            raise

    return with_services(settings, run, logs_to_stderr=True)
