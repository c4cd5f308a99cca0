"""Alembic environment: runs migrations on SQLite (sync) or PostgreSQL (asyncpg)."""

from __future__ import annotations

import asyncio

import sqlalchemy as sa
from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from seawall.db.tables import metadata

config = context.config
URL: str = config.attributes["database_url"]


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Several servers may start at once; one migrates, the others wait.
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(7303184)"))
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(URL)
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if URL.startswith("postgresql"):
    asyncio.run(_run_async())
else:
    engine = sa.create_engine(URL)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA journal_mode=WAL")
    # engine.begin() commits: without it pysqlite commits the DDL but rolls back the
    # alembic_version row, and the next start tries to create the tables again.
    with engine.begin() as connection:
        _run(connection)
    engine.dispose()
