"""Noticing commits from any connection or process: SQLite's `PRAGMA data_version`.

The pragma's value changes whenever another connection commits; it reads the WAL index
(shared memory), not the database file, so asking it on every request costs microseconds.
The connection here only ever asks that, from the event loop's thread.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["SqliteChangeCounter"]


class SqliteChangeCounter:
    def __init__(self, database: Path):
        self._conn = sqlite3.connect(database, isolation_level=None, check_same_thread=False)

    async def current(self) -> int | None:
        # Synchronous on purpose: the pragma reads shared memory, no file, in microseconds.
        cursor = self._conn.execute("PRAGMA data_version")
        try:
            row = cursor.fetchone()
        finally:
            cursor.close()  # a statement left open would hold a read snapshot, stalling checkpoints
        return int(row[0]) if row else None

    def close(self) -> None:
        self._conn.close()
