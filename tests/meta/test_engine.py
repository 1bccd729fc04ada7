"""What the engine adds under the stores: retries, idle connections, time zones, timeouts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError

import portside.meta.sql.engine as engine_module
from portside.meta.sessions import WebSession
from portside.meta.sql.engine import SqlBase, lock_key, retry_transient, utc
from portside.meta.sql.schema import repositories
from tests.meta.conftest import Database, Stores, blob


class _Orig(Exception):
    def __init__(self, sqlstate: str):
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


async def test_deadlock_victims_run_again_and_other_errors_do_not():
    calls: list[str] = []

    @retry_transient
    async def flaky(state: str) -> str:
        calls.append(state)
        if len(calls) < 3:
            raise DBAPIError("UPDATE …", None, _Orig(state))
        return "done"

    assert await flaky("40P01") == "done" and len(calls) == 3
    calls.clear()
    with pytest.raises(DBAPIError):
        await flaky("23505")  # a unique violation is an answer, not bad luck
    assert len(calls) == 1


class _Crosser(SqlBase):
    """Updates two repositories' rows in the order given: two of these in opposite orders
    deadlock on PostgreSQL, the first attempt of each meeting at `barrier` in between."""

    @retry_transient
    async def cross(self, first: str, second: str, barrier: asyncio.Barrier, attempts: list[str]) -> None:
        attempts.append(first)
        async with self._write() as conn:
            for name in (first, second):
                await conn.execute(
                    update(repositories)
                    .where(repositories.c.name == name)
                    .values(pull_count=repositories.c.pull_count + 1)
                )
                if name == first and attempts.count(first) == 1:
                    await barrier.wait()


async def test_a_real_deadlock_is_retried(database: Database, stores: Stores):
    if database.dialect != "postgresql":
        pytest.skip("SQLite's writers take turns: the second would wait at BEGIN, never meet the first")
    for name in ("dl/a", "dl/b"):
        await stores.db.link_blob(name, *blob(name))
    engines = [database.engine(), database.engine()]
    try:
        barrier, attempts = asyncio.Barrier(2), []
        one, two = (_Crosser(e) for e in engines)
        await asyncio.wait_for(
            asyncio.gather(one.cross("dl/a", "dl/b", barrier, attempts), two.cross("dl/b", "dl/a", barrier, attempts)),
            timeout=60,
        )
    finally:
        for engine in engines:
            await engine.dispose()
    async with stores.engine.connect() as conn:
        counts = dict((await conn.execute(select(repositories.c.name, repositories.c.pull_count))).all())
    assert counts == {"dl/a": 2, "dl/b": 2}
    assert len(attempts) >= 3, attempts  # at least one of the two ran again


async def test_idle_connections_that_died_are_replaced(
    database: Database, stores: Stores, monkeypatch: pytest.MonkeyPatch
):
    if database.dialect != "postgresql":
        pytest.skip("SQLite has no server to lose connections to")
    await stores.db.check()  # a connection now sits in the pool
    monkeypatch.setattr(engine_module, "_PING_AFTER_IDLE_SECONDS", 0.0)
    admin = database.engine()
    try:
        async with admin.begin() as conn:
            killed = await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
            assert killed.all()
    finally:
        await admin.dispose()
    await stores.db.check()
    assert await stores.db.list_repositories(None, None) == []


async def test_times_come_back_aware_in_utc(stores: Stores):
    user = await stores.accounts.create_user("tz", "h", email=None, realname="", comment="", sysadmin=False)
    assert user.creation_time.utcoffset() == timedelta(0)
    later = datetime(2040, 1, 1, 12, tzinfo=timezone(timedelta(hours=5)))
    await stores.sessions.create_session(WebSession("s", user.user_id, "c", later))
    found = await stores.sessions.get_session("s")
    assert found is not None and found.expires_at == later and found.expires_at.utcoffset() == timedelta(0)


def test_utc():
    naive = datetime(2030, 1, 1, 12)
    assert utc(naive) == datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert utc(datetime(2030, 1, 1, 17, tzinfo=timezone(timedelta(hours=5)))) == utc(naive)


def test_lock_keys_are_64_bit_and_apart():
    keys = {lock_key("repository", f"r{i}") for i in range(1000)} | {lock_key("schema", "r1")}
    assert len(keys) == 1001
    assert all(-(2**63) <= k < 2**63 for k in keys)


async def test_postgresql_session_settings(database: Database):
    if database.dialect != "postgresql":
        pytest.skip("PostgreSQL only")
    engine = database.engine()
    try:
        async with engine.connect() as conn:
            timeout = (await conn.execute(text("SHOW statement_timeout"))).scalar()
            isolation = (await conn.execute(text("SHOW transaction_isolation"))).scalar()
    finally:
        await engine.dispose()
    assert timeout == "1min" and isolation == "read committed"
