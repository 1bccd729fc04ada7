"""The SQLite driver that runs on the event loop's thread: waiting for the write lock must
never block the loop, writers of one process queue, and patience ends in SQLite's error."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine

import portside.meta.sql.sqlite_inline as inline_module
from portside.meta.sql.engine import create_engine


async def _engine(path: Path, **kwargs: object) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{path}", **kwargs)  # type: ignore[arg-type]
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS items (name TEXT PRIMARY KEY)"))
    return engine


def _reader(engine: AsyncEngine) -> AsyncEngine:
    # As the stores read: a plain BEGIN, which never waits for the write lock.
    return engine.execution_options(portside_read_only=True)


async def _count(engine: AsyncEngine) -> int:
    async with _reader(engine).connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM items"))).scalar_one())


class Ticks:
    """Counts the event loop's 5 ms ticks from now on: a blocked loop stops counting."""

    def __init__(self) -> None:
        self.count = 0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(0.005)
            self.count += 1

    def stop(self) -> None:
        self._task.cancel()


async def test_a_writer_waits_for_another_process_without_blocking_the_loop(tmp_path: Path):
    path = tmp_path / "db.sqlite"
    engine = await _engine(path)
    # Another process's writer, as SQLite sees it: a separate connection holding the lock.
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO items VALUES ('theirs')")

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO items VALUES ('ours')"))

    ticks = Ticks()
    writing = asyncio.create_task(write())
    await asyncio.sleep(0.3)
    assert not writing.done(), "the write went ahead while another writer held the lock"
    assert ticks.count >= 20, "the event loop was blocked while the writer waited"
    # Readers are not held up by the other writer (WAL): they see the last commit.
    assert await _count(engine) == 0
    other.execute("COMMIT")
    await asyncio.wait_for(writing, 5)
    ticks.stop()
    assert await _count(engine) == 2
    other.close()
    await engine.dispose()


async def test_writers_of_one_process_take_turns(tmp_path: Path):
    engine = await _engine(tmp_path / "db.sqlite", pool_size=4, max_overflow=30)

    async def write(i: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO items VALUES (:n)"), {"n": f"item{i}"})
            await asyncio.sleep(0.001)  # hold the transaction across a suspension

    await asyncio.wait_for(asyncio.gather(*(write(i) for i in range(30))), 30)
    assert await _count(engine) == 30
    await engine.dispose()


async def test_a_writer_cancelled_mid_transaction_lets_the_next_one_in(tmp_path: Path):
    engine = await _engine(tmp_path / "db.sqlite")
    inside = asyncio.Event()

    async def stuck() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO items VALUES ('lost')"))
            inside.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(stuck())
    await inside.wait()
    waiting = asyncio.create_task(_insert(engine, "next"))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(waiting, 5)
    async with _reader(engine).connect() as conn:
        names = set((await conn.execute(text("SELECT name FROM items"))).scalars())
    assert names == {"next"}  # the cancelled transaction was rolled back
    await engine.dispose()


async def _insert(engine: AsyncEngine, name: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO items VALUES (:n)"), {"n": name})


async def test_patience_runs_out_with_sqlites_own_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "db.sqlite"
    engine = await _engine(path)
    monkeypatch.setattr(inline_module, "BUSY_PATIENCE_SECONDS", 0.2)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(OperationalError, match="locked"):
        await asyncio.wait_for(_insert(engine, "never"), 5)
    other.execute("ROLLBACK")
    await _insert(engine, "later")  # the queue of writers was left free
    assert await _count(engine) == 1
    other.close()
    await engine.dispose()


async def test_the_threaded_engine_still_works(tmp_path: Path):
    engine = await _engine(tmp_path / "db.sqlite", inline=False)
    await _insert(engine, "a")
    assert await _count(engine) == 1
    await engine.dispose()
