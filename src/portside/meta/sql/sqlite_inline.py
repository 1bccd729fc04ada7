"""SQLite for SQLAlchemy's asyncio engine, run on the event loop's own thread.

SQLAlchemy's `aiosqlite` dialect expects a driver whose every call is a coroutine. The
aiosqlite package provides that by running each call on a thread of its own and handing
the result back: a statement costs four such round trips (cursor, execute, fetch, close),
and on a busy machine each waits for the event loop and the GIL. Measured on the registry's
write paths, those hand-offs, not SQLite, were most of a small push's time.

This driver makes the same calls directly. That is sound for SQLite in WAL mode, where a
statement either runs in microseconds against the page cache or waits for a lock:

- readers never wait: WAL gives each read transaction its snapshot;
- a writer waits only to start (`BEGIN IMMEDIATE` takes the database's one write lock,
  see engine.py), and that wait is the one thing done differently: SQLite is told not to
  wait (busy_timeout 0), and a statement refused with SQLITE_BUSY is tried again after an
  asynchronous pause, so the event loop serves other requests meanwhile;
- writers of one process queue on an asyncio lock before asking SQLite, so only one of
  them at a time polls for the database lock that another process may hold.

What is left is the CPU time of the statements themselves, which is the same on any
thread. Long scans (garbage collection, scrubs, audit purges) use an engine with the
threaded driver instead (`create_engine(..., inline=False)`), so they never hold up a
request.

Besides the connections SQLAlchemy's pool opens, each event loop gets one connection of
its own for transaction bodies that skip SQLAlchemy's execution layer (`write`, `read`;
see direct.py). One is enough: a body runs from BEGIN to COMMIT without giving the event
loop up, so no other request's statements can come in between.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from typing import Any, TypeVar

__all__ = ["InlineSqlite", "BUSY_PATIENCE_SECONDS", "CONNECTION_PRAGMAS"]

R = TypeVar("R")

# How long a statement keeps trying for the database lock before failing with SQLite's
# own "database is locked" error (the threaded engine's busy_timeout is the same).
BUSY_PATIENCE_SECONDS = 60.0
_FIRST_PAUSE, _LONGEST_PAUSE = 0.0005, 0.02

# Result codes after which running the statement again can succeed. SQLITE_BUSY_SNAPSHOT
# (517) is left out: a read transaction that must become a writer has to start over.
_RETRYABLE = frozenset({5, 261})  # SQLITE_BUSY, SQLITE_BUSY_RECOVERY

_WRITE_BEGIN = "BEGIN IMMEDIATE"

# Every connection's settings, the pool's (engine.py) and the loop's own alike.
CONNECTION_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    # WAL + NORMAL is durable across process crashes; blob files are fsync'ed first.
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)


def _busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in _RETRYABLE


class _LoopState:
    """What one event loop's users of the database share: the queue of writers (an asyncio
    lock belongs to the loop it first waits in) and the loop's own connection."""

    def __init__(self) -> None:
        self.writers = asyncio.Lock()
        self.connection: sqlite3.Connection | None = None


class InlineSqlite:
    """Opens connections to one database file; its connections share the process's queue
    of writers. Pass `connect` to `create_async_engine(async_creator=...)`."""

    def __init__(self, path: str):
        self._path = path
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()

    def _state(self) -> _LoopState:
        return self._loops.setdefault(asyncio.get_running_loop(), _LoopState())

    async def _open(self) -> sqlite3.Connection:
        raw: sqlite3.Connection = await _patiently(
            lambda: sqlite3.connect(self._path, timeout=0, isolation_level=None, check_same_thread=False)
        )
        return raw

    async def connect(self) -> _Connection:
        return _Connection(await self._open(), self._state().writers)

    async def _own_connection(self, state: _LoopState) -> sqlite3.Connection:
        if state.connection is None:
            raw = await self._open()
            try:
                for pragma in CONNECTION_PRAGMAS:
                    await _patiently(lambda pragma=pragma: raw.execute(pragma))  # type: ignore[misc]
            except BaseException:
                raw.close()
                raise
            if state.connection is None:
                state.connection = raw
            else:  # another task opened one meanwhile
                raw.close()
        return state.connection

    async def write(self, body: Callable[[sqlite3.Connection], R]) -> R:
        """`body(connection)` in a write transaction on the loop's own connection, committed."""
        state = self._state()
        async with state.writers:
            raw = await self._own_connection(state)
            await _patiently(lambda: raw.execute(_WRITE_BEGIN))
            try:
                result = body(raw)
                raw.commit()
            except BaseException:
                if raw.in_transaction:
                    raw.rollback()
                raise
            return result

    async def read(self, body: Callable[[sqlite3.Connection], R]) -> R:
        """`body(connection)` in a read transaction (one snapshot) on the loop's own connection."""
        raw = await self._own_connection(self._state())

        def attempt() -> R:
            raw.execute("BEGIN")
            try:
                return body(raw)
            finally:
                raw.commit()

        # A reader waits for nothing in WAL mode; SQLITE_BUSY_RECOVERY after a crash is the
        # rare exception, and a read is safe to run again.
        result: R = await _patiently(attempt)
        return result

    def close(self) -> None:
        """Close the loops' own connections (a later `write` or `read` opens a new one)."""
        for state in list(self._loops.values()):
            raw, state.connection = state.connection, None
            if raw is not None:
                raw.close()


async def _patiently(call: Callable[[], Any]) -> Any:
    """`call()`, tried again after growing pauses while SQLite answers SQLITE_BUSY."""
    pause, deadline = _FIRST_PAUSE, time.monotonic() + BUSY_PATIENCE_SECONDS
    while True:
        try:
            return call()
        except sqlite3.OperationalError as exc:
            if not _busy(exc) or time.monotonic() >= deadline:
                raise
        await asyncio.sleep(pause)
        pause = min(pause * 2, _LONGEST_PAUSE)


class _Connection:
    """What SQLAlchemy's aiosqlite adapter calls on an aiosqlite connection."""

    def __init__(self, raw: sqlite3.Connection, writers: asyncio.Lock):
        self._raw: sqlite3.Connection | None = raw
        self._writers = writers
        self._writing = False
        # The adapter sets isolation_level through aiosqlite's own request queue.
        self._tx = _RunAtOnce()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._raw is None:
            raise ValueError("no active connection")
        return self._raw

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._raw

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction

    def cursor(self) -> _CursorOpening:
        return _CursorOpening(self)

    async def commit(self) -> None:
        try:
            self._conn.commit()
        finally:
            self._done_writing()

    async def rollback(self) -> None:
        try:
            self._conn.rollback()
        finally:
            self._done_writing()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        raw, self._raw = self._raw, None
        try:
            if raw is not None:
                raw.close()
        finally:
            self._done_writing()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def _execute(self, cursor: sqlite3.Cursor, operation: str, parameters: Any) -> None:
        if operation == _WRITE_BEGIN and not self._writing:
            await self._writers.acquire()
            self._writing = True
            try:
                await _patiently(lambda: cursor.execute(operation, parameters))
            except BaseException:
                self._done_writing()
                raise
            return
        await _patiently(lambda: cursor.execute(operation, parameters))
        if self._writing and not self._conn.in_transaction:
            # COMMIT or ROLLBACK sent as a statement ended the write transaction.
            self._done_writing()

    def _done_writing(self) -> None:
        if self._writing:
            self._writing = False
            self._writers.release()


class _RunAtOnce:
    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:
            future.set_exception(exc)


class _CursorOpening:
    """`await connection.cursor()` and `async with connection.cursor()`, as in aiosqlite."""

    def __init__(self, connection: _Connection):
        self._connection = connection

    def __await__(self) -> Any:
        return self.__aenter__().__await__()

    async def __aenter__(self) -> _Cursor:
        return _Cursor(self._connection, self._connection._conn.cursor())

    async def __aexit__(self, *exc: object) -> None:
        return None


class _Cursor:
    def __init__(self, connection: _Connection, raw: sqlite3.Cursor):
        self._connection = connection
        self._raw = raw

    @property
    def description(self) -> Any:
        return self._raw.description

    @property
    def rowcount(self) -> int:
        return self._raw.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._raw.lastrowid

    @property
    def arraysize(self) -> int:
        return self._raw.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._raw.arraysize = value

    async def execute(self, operation: str, parameters: Any = ()) -> _Cursor:
        await self._connection._execute(self._raw, operation, parameters)
        return self

    async def executemany(self, operation: str, parameters: Iterable[Any]) -> _Cursor:
        rows = list(parameters)
        await _patiently(lambda: self._raw.executemany(operation, rows))
        return self

    async def fetchone(self) -> Any:
        return self._raw.fetchone()

    async def fetchmany(self, size: int | None = None) -> Sequence[Any]:
        return self._raw.fetchmany(self._raw.arraysize if size is None else size)

    async def fetchall(self) -> Sequence[Any]:
        return self._raw.fetchall()

    async def close(self) -> None:
        self._raw.close()

    async def __aenter__(self) -> _Cursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def __aiter__(self) -> AsyncIterator[Any]:
        for row in self._raw:
            yield row
