"""Migrations 0001–head on both databases: up, down, up again, and many instances at once."""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from portside.meta.sql.migrate import downgrade, upgrade
from portside.meta.sql.schema import metadata
from portside.meta.sql.store import SqlDatabase
from tests.meta.conftest import Database, blob, image, push

HEAD = "0007"


async def _version(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_up_down_and_up_again(empty_database: Database):
    engine = empty_database.engine()
    try:
        await upgrade(engine)
        assert await _version(engine) == HEAD
        assert await _tables(engine) == set(metadata.tables) | {"alembic_version"}
        await downgrade(engine, "base")
        assert await _tables(engine) == {"alembic_version"}
        assert await _version(engine) is None
        await upgrade(engine)
        assert await _version(engine) == HEAD
    finally:
        await engine.dispose()


async def test_each_step_down_keeps_the_data_of_earlier_steps(empty_database: Database):
    engine = empty_database.engine()
    try:
        await upgrade(engine)
        db = SqlDatabase(engine)
        digest, size = blob("layer")
        await db.link_blob("keep/me", digest, size)
        for revision in ("0003", "0002", "0001"):
            await downgrade(engine, revision)
            assert await _version(engine) == revision
        async with engine.connect() as conn:
            names = (await conn.execute(text("SELECT name FROM repositories"))).scalars().all()
        assert names == ["keep/me"]
        await upgrade(engine)
        assert await db.blob_size("keep/me", digest) == size
    finally:
        await engine.dispose()


async def test_instances_starting_together_migrate_once(empty_database: Database):
    engines = [empty_database.engine() for _ in range(6)]
    try:
        results = await asyncio.gather(*(upgrade(e) for e in engines), return_exceptions=True)
        assert [r for r in results if r is not None] == []
        assert await _version(engines[0]) == HEAD
        db = SqlDatabase(engines[0])
        await push(db, "after/migrate", image("layer"), "latest")
        assert (await db.list_tags("after/migrate", None, None)) == ["latest"]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_postgresql_column_types(database: Database):
    if database.dialect != "postgresql":
        return
    engine = database.engine()
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT table_name, column_name, data_type, collation_name FROM information_schema.columns"
                    " WHERE table_schema = 'public'"
                )
            )
            columns = {(r.table_name, r.column_name): (r.data_type, r.collation_name) for r in rows}
    finally:
        await engine.dispose()
    # Names listed in byte order, whatever the database's locale.
    for table in ("repositories", "tags", "projects"):
        assert columns[(table, "name")] == ("character varying", "C")
    assert columns[("manifests", "payload")][0] == "bytea"
    assert columns[("uploads", "state")][0] == "bytea"
    assert columns[("blobs", "size")][0] == "bigint"
    assert columns[("audit_logs", "id")][0] == "bigint"
    assert columns[("users", "sysadmin")][0] == "boolean"
    assert columns[("jobs", "stop_requested")][0] == "boolean"
    assert columns[("repositories", "created_at")][0] == "timestamp with time zone"
