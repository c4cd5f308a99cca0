"""Whether the configured database is there, reachable, and at this Seawall's schema.

Opening a SQLite file that does not exist creates an empty one, and a query against a database
without the tables fails deep inside whatever asked. So commands that work on an existing
registry open its database with `open_database`, which first makes sure it holds the schema
revision this code was written for (`SCHEMA_REVISION`) and otherwise raises an error that says
what it found: `NoDatabase`, `SchemaMismatch`, or the backend's `DatabaseUnavailable`. Making a
new database is left to `seawall serve` and `seawall db upgrade --create`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from seawall.config import Settings
from seawall.db.backends import database_backend, sqlite_path
from seawall.db.store import SqlBackend

# The newest migration in db/migrations/versions (a test holds it to Alembic's head).
SCHEMA_REVISION = "0013"


class NoDatabase(Exception):
    """Nothing to open: no SQLite file, or a database without Seawall's tables."""

    def __init__(self, settings: Settings) -> None:
        where = location(settings)
        super().__init__(
            f"no Seawall tables in the {where}"
            if settings.is_postgres
            else f"no Seawall database at {where}"
        )
        self.location = where


class SchemaMismatch(Exception):
    """The database holds Seawall's tables at another revision than this code's."""

    def __init__(self, location: str, found: str) -> None:
        super().__init__(
            f"the database at {location} is at schema revision {found}; this Seawall uses"
            f" {SCHEMA_REVISION}"
        )
        self.location = location
        self.found = found


def location(settings: Settings) -> str:
    """Where the configured database is, for messages: a file, or a PostgreSQL server and
    database (never a password)."""
    path = sqlite_path(settings)
    if path is not None:
        return str(path.resolve())
    url = urlsplit(settings.effective_database_url)
    host = url.hostname or "localhost"
    return (
        f"PostgreSQL database {url.path.lstrip('/') or '(default)'!r} on {host}:{url.port or 5432}"
    )


async def revision(backend: SqlBackend) -> str | None:
    """The Alembic revision a started backend's database is at; None without Seawall's tables."""
    if backend.dialect == "postgresql":
        table = await backend.fetchone("SELECT 1 WHERE to_regclass('alembic_version') IS NOT NULL")
    else:
        table = await backend.fetchone(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        )
    if table is None:
        return None
    row = await backend.fetchone("SELECT version_num FROM alembic_version")
    return None if row is None else str(row[0])


async def database_revision(settings: Settings) -> str | None:
    """The revision of the configured database; None when there is no database (no SQLite
    file, or no Seawall tables). Creates nothing. Raises `DatabaseUnavailable`."""
    path = sqlite_path(settings)
    if path is not None and not path.is_file():
        return None
    backend = database_backend(settings)
    try:
        await backend.start()
        return await revision(backend)
    finally:
        await backend.close()


async def open_database(settings: Settings) -> SqlBackend:
    """The configured database's backend, started, once it is known to hold this Seawall's
    schema; the caller closes it. Raises `NoDatabase`, `SchemaMismatch` or
    `DatabaseUnavailable`, and creates nothing."""
    path = sqlite_path(settings)
    if path is not None and not path.is_file():
        raise NoDatabase(settings)
    backend = database_backend(settings)
    try:
        await backend.start()
        found = await revision(backend)
        if found is None:
            raise NoDatabase(settings)
        if found != SCHEMA_REVISION:
            raise SchemaMismatch(location(settings), found)
    except BaseException:
        await backend.close()
        raise
    return backend
