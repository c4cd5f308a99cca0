"""The database backend a configuration names."""

from __future__ import annotations

from pathlib import Path

from seawall.config import Settings
from seawall.db.store import SqlBackend


def database_backend(settings: Settings) -> SqlBackend:
    """The backend the database URL names; its connections open in `start()`."""
    url = settings.effective_database_url
    if settings.is_postgres:
        from seawall.db.postgres import PostgresBackend

        return PostgresBackend(url, settings.pg_pool_size)
    from seawall.db.sqlite import SqliteBackend

    return SqliteBackend(Path(url.removeprefix("sqlite:///")))
