"""The Alembic migrations build exactly the schema db/tables.py declares, on both databases."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from seawall.db.tables import metadata
from tests.support.databases import migrated_database
from tests.support.server import DATABASES


def _differences(connection: sa.Connection) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(connection), metadata))


async def _pg_differences(url: str) -> list[Any]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(_differences)
    finally:
        await engine.dispose()


@pytest.mark.parametrize("database", DATABASES)
def test_migrations_match_tables(tmp_path: Path, database: str) -> None:
    with migrated_database(database, tmp_path) as url:
        if database == "postgres":
            assert asyncio.run(_pg_differences(url)) == []
        else:
            engine = sa.create_engine(url)
            try:
                with engine.connect() as connection:
                    assert _differences(connection) == []
            finally:
                engine.dispose()


def test_the_schema_revision_commands_expect_is_the_newest_migration() -> None:
    """`seawall.db.schema.SCHEMA_REVISION` is what every command checks a database against:
    with a new migration, it must move too."""
    from alembic.script import ScriptDirectory

    from seawall.db.migrate import alembic_config
    from seawall.db.schema import SCHEMA_REVISION

    scripts = ScriptDirectory.from_config(alembic_config("sqlite:///unused"))
    assert scripts.get_current_head() == SCHEMA_REVISION
