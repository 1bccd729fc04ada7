"""The database engine and what every SQL store shares.

SQLite allows one writer at a time; write transactions start with BEGIN IMMEDIATE so
two writers queue on the database lock (busy_timeout) instead of failing half-way.

PostgreSQL runs writers side by side, at READ COMMITTED (set on the engine, so a server
whose default is another level changes nothing): every statement sees what committed
before it started, and nothing stops two transactions from each checking a condition the
other is about to break. The stores therefore never rely on check-then-act across
statements without one of these, each chosen where it is used and said so there:

- `INSERT … ON CONFLICT` for rows that may appear concurrently (repositories, blobs,
  links, tags), so a race ends in the same row rather than an error;
- `_lock_repository`: a transaction-scoped advisory lock per repository for the writes
  that check the manifest graph before changing it (push a manifest, delete one, unlink a
  blob): the per-repository equivalent of SQLite's one writer;
- row locks (`FOR KEY SHARE`) where a row must not vanish before the transaction that
  relies on it commits (a repository under the links being added to it);
- unique constraints as the final word on names, translated to `Conflict`;
- a consistent order (sorted keys) for batches that update many rows, and
  `retry_transient` for whatever deadlock or serialization failure is left: PostgreSQL
  aborts one of the transactions, and the store method runs again from the start.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import DBAPIError, DisconnectionError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from portside.meta.sql.direct import AlchemyTx, SqliteStatements, SqliteTx, Tx
from portside.meta.sql.sqlite_inline import BUSY_PATIENCE_SECONDS, CONNECTION_PRAGMAS, InlineSqlite

__all__ = ["SqlBase", "create_engine", "now", "utc", "lock_key", "retry_transient", "is_unique_violation"]

P = ParamSpec("P")
R = TypeVar("R")

log = logging.getLogger("portside.db")


def now() -> datetime:
    return datetime.now(UTC)


def utc(when: datetime) -> datetime:
    """`when` as an aware UTC datetime. SQLite hands back naive datetimes (stored as UTC);
    a naive one from a caller is taken as UTC too, never as the machine's local time."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def lock_key(kind: str, name: str) -> int:
    """The 64-bit key of PostgreSQL advisory lock `name` of `kind`. Advisory locks share
    one key space per database; the kind keeps different uses apart. Two names that hash
    alike only wait for each other."""
    digest = hashlib.blake2b(f"portside:{kind}:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_READ_ONLY = "portside_read_only"

_REPOSITORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")

# PostgreSQL session settings of every connection.
_POSTGRES_SETTINGS = {
    "application_name": "portside",
    # A statement that runs this long is a bug or a stuck lock; failing it frees the
    # connection and its locks for everyone else. Long maintenance (migrations, purges)
    # lifts or batches under it; see migrate.py and `purge_audit`.
    "statement_timeout": "60000",
    # A transaction left open by a task that died holds its locks until the connection
    # goes away; this makes the server end it.
    "idle_in_transaction_session_timeout": "300000",
    # The JIT compiler costs more than it saves on short OLTP queries.
    "jit": "off",
}


# The inline driver of each engine that has one, for the stores' transaction bodies.
_INLINE_DRIVERS: weakref.WeakKeyDictionary[Engine, InlineSqlite] = weakref.WeakKeyDictionary()


def create_engine(url: str, pool_size: int = 10, max_overflow: int = 10, *, inline: bool = True) -> AsyncEngine:
    """An engine for `url`: `pool_size` connections kept, `max_overflow` more in a burst
    (Settings.database_pool_size / database_max_overflow).

    A SQLite engine runs its statements on the event loop's thread (`sqlite_inline`);
    `inline=False` gives one whose statements run on worker threads, for long scans that
    must not hold up the requests sharing the loop. PostgreSQL ignores it."""
    if url.startswith("sqlite"):
        if inline:
            driver = InlineSqlite(make_url(url).database or "")
            engine = create_async_engine(
                url, pool_size=pool_size, max_overflow=max_overflow, async_creator=driver.connect
            )
            _INLINE_DRIVERS[engine.sync_engine] = driver
            event.listen(engine.sync_engine, "engine_disposed", lambda _engine: driver.close())
        else:
            engine = create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's begin event, not the driver, decide when transactions start.
            if dbapi_connection.isolation_level is not None:
                dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            for pragma in CONNECTION_PRAGMAS:
                cursor.execute(pragma)
            if not inline:
                # The inline driver waits for locks itself, without blocking its thread.
                cursor.execute(f"PRAGMA busy_timeout={int(BUSY_PATIENCE_SECONDS * 1000)}")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE")

        return engine
    engine = create_async_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        isolation_level="READ COMMITTED",
        connect_args={"server_settings": _POSTGRES_SETTINGS},
    )
    _ping_when_idle(engine)
    return engine


# A pooled connection that the server, a proxy or a failover closed while it sat idle is
# replaced at checkout, not discovered by the request that gets it. SQLAlchemy's
# pool_pre_ping would check before every use, which with asyncpg costs three round trips
# (BEGIN, ping, ROLLBACK): more than the one a typical read here needs. A connection
# returned moments ago is alive, so only one idle longer than this is pinged; and a
# connection that fails in use anyway makes SQLAlchemy replace every connection of the
# pool opened before the failure.
_PING_AFTER_IDLE_SECONDS = 5.0
_CHECKED_IN_AT = "portside_checked_in_at"


def _ping_when_idle(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_CHECKED_IN_AT] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        checked_in = record.info.get(_CHECKED_IN_AT)
        if checked_in is None or time.monotonic() - checked_in < _PING_AFTER_IDLE_SECONDS:
            return  # new, or just used
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            # The pool drops this connection and checks out another (a new one if need be).
            raise DisconnectionError(f"idle connection failed its ping: {exc}") from exc


# SQLSTATEs after which PostgreSQL has rolled the transaction back and running it again
# may succeed: serialization_failure, deadlock_detected.
_TRANSIENT = frozenset({"40001", "40P01"})
_ATTEMPTS = 5


def _sqlstate(exc: DBAPIError) -> str | None:
    return getattr(exc.orig, "sqlstate", None)


def is_unique_violation(exc: IntegrityError) -> bool:
    """Whether `exc` broke a unique or primary key constraint (not a foreign key, say)."""
    if (state := _sqlstate(exc)) is not None:
        return state == "23505"
    # sqlite3: SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
    return getattr(exc.orig, "sqlite_errorcode", None) in (2067, 1555)


def retry_transient(method: Callable[P, Awaitable[R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """Run a store method again when PostgreSQL aborted its transaction as a deadlock
    victim or a serialization failure. The method must do all its work in transactions
    it opens itself, so the aborted attempt left nothing behind."""

    @functools.wraps(method)
    async def retrying(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return await method(*args, **kwargs)
            except DBAPIError as exc:
                if attempt == _ATTEMPTS or _sqlstate(exc) not in _TRANSIENT:
                    raise
                log.info("%s: %s; running it again", method.__qualname__, exc.orig)
                # Jittered, growing pauses so the transactions that collided do not collide again.
                await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
        raise AssertionError("unreachable")

    return retrying


class SqlBase:
    """What every SQL store shares: the engine, read and write transactions, upserts.

    `after_commit` runs after each write transaction commits, before the write returns:
    other instances learn of the change from it (a shared generation in Redis) in time
    for the writer's response. A write that changes nothing they cache opts out
    (`_write(notify=False)`); a failed transaction never runs it.
    """

    def __init__(self, engine: AsyncEngine, *, after_commit: Callable[[], Awaitable[None]] | None = None):
        self.engine = engine
        self.after_commit = after_commit
        self._reader = engine.execution_options(**{_READ_ONLY: True})
        dialect = engine.dialect.name
        # Both dialects' INSERT know ON CONFLICT; the generic one does not.
        self._insert: Callable[..., Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
        self._inline = _INLINE_DRIVERS.get(engine.sync_engine)
        self._compiled = SqliteStatements(engine.dialect) if self._inline is not None else None

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._reader.connect() as conn:
            if self._postgresql:
                # No transaction: at READ COMMITTED each statement takes its own snapshot
                # inside one as well, so a read loses nothing, and saves BEGIN and ROLLBACK
                # (two of the three round trips of a one-query read).
                conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            yield conn

    @asynccontextmanager
    async def _write(self, *, notify: bool = True) -> AsyncIterator[AsyncConnection]:
        async with self.engine.begin() as conn:
            yield conn
        if notify and self.after_commit is not None:
            await self.after_commit()

    async def _write_tx(self, body: Callable[..., R], *args: Any, notify: bool = True) -> R:
        """`body(tx, *args)` in a write transaction (see direct.py), then `after_commit`
        unless `notify` is False (as for `_write`)."""
        if self._inline is not None:
            compiled = self._compiled
            assert compiled is not None
            result = await self._inline.write(lambda raw: body(SqliteTx(raw, compiled), *args))
        else:
            async with self.engine.begin() as conn:
                result = await conn.run_sync(lambda sync: body(AlchemyTx(sync), *args))
        if notify and self.after_commit is not None:
            await self.after_commit()
        return result

    async def _read_tx(self, body: Callable[..., R], *args: Any) -> R:
        """`body(tx, *args)` in a read transaction (see direct.py)."""
        if self._inline is not None:
            compiled = self._compiled
            assert compiled is not None
            return await self._inline.read(lambda raw: body(SqliteTx(raw, compiled), *args))
        async with self._read() as conn:
            return await conn.run_sync(lambda sync: body(AlchemyTx(sync), *args))

    @property
    def _postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    async def _lock_repository(self, conn: AsyncConnection, repo: str) -> None:
        """Hold `repo`'s lock until `conn`'s transaction ends, so the writes that check the
        manifest graph and then change it (put_manifest, delete_manifest, unlink_blob) run
        one at a time per repository, as every write does on SQLite. Taken first thing in
        the transaction, so its statements see every such write that came before; taken
        alone, so it cannot be part of a deadlock. Writers to other repositories, and
        every reader, go on in parallel."""
        if self._postgresql:
            await conn.execute(_REPOSITORY_LOCK, {"key": lock_key("repository", repo)})

    @staticmethod
    def _lock_repository_in(tx: Tx, repo: str) -> None:
        """`_lock_repository` inside a transaction body."""
        if tx.dialect == "postgresql":
            tx.run(_REPOSITORY_LOCK, {"key": lock_key("repository", repo)})

    def _bytewise(self, column: Any) -> Any:
        """`column` compared and ordered by bytes, as SQLite always does; PostgreSQL's
        default follows the database's locale (where "a-b" may sort after "aB")."""
        return column.collate("C") if self._postgresql else column

    async def check(self) -> None:
        async with self._read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()
