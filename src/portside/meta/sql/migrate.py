"""Bring a database's schema up to date with Alembic (or back, for tests and rollbacks).

Several instances may start at once against one new database, each migrating it first.
The whole migration runs in one transaction: on SQLite it begins IMMEDIATE, so the other
instances wait on the database lock; on PostgreSQL (whose DDL is transactional too) it
first takes an advisory lock that the others wait on. Either way the next instance reads
the version the first one committed and finds nothing left to do, and a migration that
fails leaves the schema as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from portside.meta.sql.engine import lock_key

__all__ = ["upgrade", "downgrade", "has_schema"]

_MIGRATIONS = Path(__file__).with_name("migrations")


def _alembic_config(connection: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def _serialise(conn: AsyncConnection) -> None:
    if conn.dialect.name == "postgresql":
        # Released at commit. Migrations may outlast the statement timeout of ordinary
        # work (an index on a large table), and so may the wait for another instance's.
        await conn.execute(text("SET LOCAL statement_timeout = 0"))
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key("schema", "migrate")})


def _sqlite_foreign_keys(sync_conn: Connection, on: bool) -> None:
    # On the driver's connection, outside any transaction: SQLite ignores the pragma inside one.
    cursor = sync_conn.connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    finally:
        cursor.close()


def _sqlite_check_foreign_keys(sync_conn: Connection) -> None:
    broken = sync_conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        raise RuntimeError(f"migration left rows whose foreign keys point nowhere: {broken[:10]}")


async def _migrate(engine: AsyncEngine, step: Callable[[Connection], None]) -> None:
    async with engine.connect() as conn:
        # SQLite changes a column by copying the table and dropping the old one; with
        # foreign keys on, dropping a table that others reference deletes (cascading) or
        # refuses. They are off while the migration runs and checked before it commits.
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            await conn.run_sync(_sqlite_foreign_keys, False)
        try:
            async with conn.begin():
                await _serialise(conn)
                await conn.run_sync(step)
                if sqlite:
                    await conn.run_sync(_sqlite_check_foreign_keys)
        finally:
            if sqlite:
                await conn.run_sync(_sqlite_foreign_keys, True)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _migrate(engine, lambda sync_conn: command.upgrade(_alembic_config(sync_conn), revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _migrate(engine, lambda sync_conn: command.downgrade(_alembic_config(sync_conn), revision))


async def has_schema(engine: AsyncEngine) -> bool:
    """Whether the database holds a Portside schema (one Alembic has versioned), of any version."""
    async with engine.connect() as conn:
        return await conn.run_sync(lambda sync_conn: inspect(sync_conn).has_table("alembic_version"))
