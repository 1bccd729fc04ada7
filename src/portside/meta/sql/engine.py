"""The database engine and what every SQL store shares.

SQLite allows one writer at a time; write transactions start with BEGIN IMMEDIATE so
two writers queue on the database lock (busy_timeout) instead of failing half-way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

__all__ = ["SqlBase", "create_engine", "now"]


def now() -> datetime:
    return datetime.now(UTC)


_READ_ONLY = "portside_read_only"


def create_engine(url: str, pool_size: int = 8) -> AsyncEngine:
    if url.startswith("sqlite"):
        engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event, not the driver, decide when transactions start.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL is durable across process crashes; blob files are fsync'ed first.
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True)


class SqlBase:
    """What every SQL store shares: the engine, read and write transactions, upserts."""

    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        self._reader = engine.execution_options(**{_READ_ONLY: True})
        dialect = engine.dialect.name
        # Both dialects' INSERT know ON CONFLICT; the generic one does not.
        self._insert: Callable[..., Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn

    async def check(self) -> None:
        async with self._read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
