"""Transaction bodies: plain functions over a `Tx`, run on SQLite's driver or through SQLAlchemy.

A push runs five transactions of about twenty statements in all. Through SQLAlchemy's
asyncio layer each statement costs about 46 µs and each transaction about 140 µs before
SQLite does anything (a greenlet per call, the execution context, events, the pool);
SQLite's own work is about 14 µs a statement. So the push path's transactions are written
once, as synchronous functions of a `Tx`, and run:

- on SQLite, straight on the driver (`SqliteTx` over `InlineSqlite.write` / `read`), with
  each Core statement compiled once by SQLAlchemy and its bind and result processors
  applied here, so the rows are exactly those SQLAlchemy itself would write and read;
- on PostgreSQL (and SQLite engines on threads), through SQLAlchemy with
  `AsyncConnection.run_sync` (`AlchemyTx`): one greenlet for the whole transaction.

A body must not await anything: on SQLite it runs between BEGIN and COMMIT with the
event loop held, which is what makes one connection per event loop enough. Rows come back
as tuples (read them by position), with SQLAlchemy's conversions applied.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.engine import Connection, CursorResult, Dialect
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import Executable

__all__ = ["Tx", "AlchemyTx", "SqliteTx", "SqliteStatements"]

Params = Mapping[str, Any]


class Tx(Protocol):
    """The statements of one transaction. `dialect` is "sqlite" or "postgresql"."""

    dialect: str

    def rows(self, statement: ClauseElement, params: Params | None = None) -> Sequence[Sequence[Any]]: ...

    def first(self, statement: ClauseElement, params: Params | None = None) -> Sequence[Any] | None: ...

    def scalar(self, statement: ClauseElement, params: Params | None = None) -> Any: ...

    def run(self, statement: ClauseElement, params: Params | Sequence[Params] | None = None) -> int:
        """Execute a write (a list of parameter sets: once per set); the rows it matched."""
        ...


class AlchemyTx:
    """A `Tx` on SQLAlchemy's synchronous connection, as `AsyncConnection.run_sync` hands it."""

    def __init__(self, connection: Connection):
        self._connection = connection
        self.dialect = connection.dialect.name

    def rows(self, statement: ClauseElement, params: Params | None = None) -> Sequence[Sequence[Any]]:
        return self._execute(statement, params).all()

    def first(self, statement: ClauseElement, params: Params | None = None) -> Sequence[Any] | None:
        return self._execute(statement, params).first()

    def scalar(self, statement: ClauseElement, params: Params | None = None) -> Any:
        return self._execute(statement, params).scalar()

    def run(self, statement: ClauseElement, params: Params | Sequence[Params] | None = None) -> int:
        return int(self._execute(statement, params).rowcount)

    def _execute(self, statement: ClauseElement, params: Params | Sequence[Params] | None) -> CursorResult[Any]:
        assert isinstance(statement, Executable)
        return self._connection.execute(statement, params)


Processor = Callable[[Any], Any] | None


class _Prepared:
    """One Core statement compiled for SQLite for one set of parameter names."""

    __slots__ = ("compiled", "sql", "names", "binds", "defaults", "late", "results")

    def __init__(self, statement: ClauseElement, keys: Sequence[str], dialect: Dialect):
        # The same compilation SQLAlchemy's execution does: an INSERT names the columns given.
        compiled = statement.compile(dialect=dialect, column_keys=sorted(keys))
        assert isinstance(compiled, SQLCompiler)
        self.compiled = compiled
        self.sql = compiled.string
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())
        self.binds: dict[str, Processor] = {
            name: bind.type.dialect_impl(dialect).bind_processor(dialect) for name, bind in compiled.binds.items()
        }
        # Columns the INSERT must fill with their Python-side defaults.
        self.defaults: dict[str, Any] = {}
        for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
            default = column.default if column in compiled.insert_prefetch else column.onupdate
            if default is None or not default.is_scalar:
                raise TypeError(f"{column}: only scalar Python-side defaults run on SQLite's driver")
            self.defaults[column.key] = default.arg  # type: ignore[attr-defined]
        # IN lists and literal parameters are rendered per call.
        self.late = bool(compiled.post_compile_params or compiled.literal_execute_params)
        columns = getattr(statement, "selected_columns", ())
        processors = [column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns]
        self.results: tuple[Processor, ...] | None = tuple(processors) if any(processors) else None

    def bound(self, params: Params | None) -> tuple[str, Sequence[Any]]:
        """The SQL and its positional values for `params`."""
        given = {**self.defaults, **params} if self.defaults and params else (params or self.defaults)
        if not self.late:
            values = self.compiled.construct_params(given)
            return self.sql, [self._process(name, values[name]) for name in self.names]
        state = self.compiled.construct_expanded_state(given)
        base = {name: base for base, names in state.parameter_expansion.items() for name in names}
        return state.statement, [
            self._process(base.get(name, name), state.parameters[name]) for name in state.positiontup or ()
        ]

    def _process(self, name: str, value: Any) -> Any:
        processor = self.binds.get(name)
        return value if processor is None or value is None else processor(value)

    def row(self, row: tuple[Any, ...]) -> tuple[Any, ...]:
        if self.results is None:
            return row
        return tuple(value if p is None else p(value) for p, value in zip(self.results, row, strict=True))


class SqliteStatements:
    """Compiled forms of a store's statements, kept per statement and set of parameter names.

    Meant for statements built once (see store.py's `_Statements`): one built per call would
    be compiled per call. The cache is bounded all the same, so such a statement costs time,
    never memory."""

    _LIMIT = 512

    def __init__(self, dialect: Dialect):
        self._dialect = dialect
        self._prepared: dict[tuple[ClauseElement, tuple[str, ...]], _Prepared] = {}

    def get(self, statement: ClauseElement, params: Params | None) -> _Prepared:
        keys = tuple(params) if params else ()
        prepared = self._prepared.get((statement, keys))
        if prepared is None:
            if len(self._prepared) >= self._LIMIT:
                self._prepared.clear()
            prepared = self._prepared[(statement, keys)] = _Prepared(statement, keys, self._dialect)
        return prepared


class SqliteTx:
    """A `Tx` straight on a sqlite3 connection inside a transaction `InlineSqlite` opened."""

    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection, statements: SqliteStatements):
        self._connection = connection
        self._statements = statements

    def _execute(self, statement: ClauseElement, params: Params | None) -> tuple[_Prepared, sqlite3.Cursor]:
        prepared = self._statements.get(statement, params)
        sql, values = prepared.bound(params)
        return prepared, self._connection.execute(sql, values)

    def rows(self, statement: ClauseElement, params: Params | None = None) -> Sequence[Sequence[Any]]:
        prepared, cursor = self._execute(statement, params)
        return [prepared.row(row) for row in cursor.fetchall()]

    def first(self, statement: ClauseElement, params: Params | None = None) -> Sequence[Any] | None:
        prepared, cursor = self._execute(statement, params)
        row = cursor.fetchone()
        cursor.close()
        return None if row is None else prepared.row(row)

    def scalar(self, statement: ClauseElement, params: Params | None = None) -> Any:
        row = self.first(statement, params)
        return None if row is None else row[0]

    def run(self, statement: ClauseElement, params: Params | Sequence[Params] | None = None) -> int:
        if isinstance(params, Sequence):
            if not params:
                return 0
            prepared = self._statements.get(statement, params[0])
            bound = [prepared.bound(p) for p in params]
            sql = bound[0][0]
            if prepared.late:  # each set may expand to other SQL
                return sum(self._connection.execute(s, v).rowcount for s, v in bound)
            return self._connection.executemany(sql, [values for _, values in bound]).rowcount
        _, cursor = self._execute(statement, params)
        return cursor.rowcount
