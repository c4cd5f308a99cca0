"""The database backend a configuration names."""

from __future__ import annotations

from pathlib import Path

from seawall.config import Settings
from seawall.db.store import SqlBackend


def sqlite_path(settings: Settings) -> Path | None:
    """The SQLite database file the configuration names; None for PostgreSQL."""
    if settings.is_postgres:
        return None
    return Path(settings.effective_database_url.removeprefix("sqlite:///"))


def database_backend(settings: Settings) -> SqlBackend:
    """The backend the database URL names; its connections open in `start()`."""
    path = sqlite_path(settings)
    if path is None:
        from seawall.db.postgres import PostgresBackend

        return PostgresBackend(settings.effective_database_url, settings.pg_pool_size)
    from seawall.db.sqlite import SqliteBackend

    return SqliteBackend(path)
