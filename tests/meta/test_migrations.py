"""Migrations 0001–head on both databases: up, down, up again, and many instances at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

from portside.meta.accounts import AuditQuery
from portside.meta.sql.accounts import SqlAccounts
from portside.meta.sql.artifacts import SqlArtifacts
from portside.meta.sql.jobs import SqlJobs
from portside.meta.sql.migrate import downgrade, upgrade
from portside.meta.sql.schema import metadata
from portside.meta.sql.store import SqlDatabase
from tests.meta.conftest import Database, blob, image, push

HEAD = "0022"


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
        for revision in ("0005", "0003", "0002", "0001"):
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
            rows = (
                await conn.execute(
                    text(
                        "SELECT table_name, column_name, data_type, collation_name, column_default"
                        " FROM information_schema.columns WHERE table_schema = 'public'"
                    )
                )
            ).all()
            columns = {(r.table_name, r.column_name): (r.data_type, r.collation_name) for r in rows}
            defaults = {(r.table_name, r.column_name): r.column_default for r in rows}
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
    # Ids come from sequences, which never go back: no id is handed out twice (see 0006).
    for table, column in (
        ("repositories", "id"),
        ("users", "user_id"),
        ("projects", "project_id"),
        ("project_members", "id"),
        ("robots", "id"),
        ("audit_logs", "id"),
        ("jobs", "id"),
    ):
        assert str(defaults[(table, column)]).startswith("nextval("), (table, column, defaults[(table, column)])


async def _execute(engine: AsyncEngine, sql: str, **params: object) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(sql), params)


async def _insert(engine: AsyncEngine, table: str, key: str, **values: object) -> int:
    """Insert a row with plain SQL (creation and update times filled in where the table has
    them); its new `key`."""
    if table in ("users", "projects", "project_members"):
        values = {**values, "creation_time": datetime.now(UTC), "update_time": datetime.now(UTC)}
    columns = ", ".join(values)
    marks = ", ".join(f":{name}" for name in values)
    async with engine.begin() as conn:
        await conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({marks})"), values)
        return int((await conn.execute(text(f"SELECT max({key}) FROM {table}"))).scalar() or 0)


async def _scalar(engine: AsyncEngine, sql: str, **params: object) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text(sql), params)).scalar() or 0)


async def test_upgrade_to_0006_keeps_every_id_and_never_gives_one_again(empty_database: Database):
    """Rows written under 0005 keep their ids; a project deleted before the upgrade, whose
    id only its audit records still name, never gives that id to another; and after the
    upgrade no deleted row's id comes back, on either database."""
    engine = empty_database.engine()
    try:
        await upgrade(engine, "0005")
        # Rows as version 0005 wrote them (today's stores write today's columns).
        owner_id = await _insert(
            engine, "users", "user_id", username="owner", realname="", comment="", password_hash="hash", sysadmin=False
        )
        kept_id = await _insert(engine, "projects", "project_id", name="kept", owner_id=owner_id)
        doomed_id = await _insert(engine, "projects", "project_id", name="doomed", owner_id=owner_id)
        await _insert(
            engine,
            "audit_logs",
            "id",
            project_id=doomed_id,
            username="owner",
            operation="create",
            resource_type="project",
            resource="x",
            client="",
            success=True,
            op_time=datetime.now(UTC),
        )
        await _execute(engine, "DELETE FROM projects WHERE project_id = :id", id=doomed_id)
        guest_id = await _insert(
            engine, "users", "user_id", username="guest", realname="", comment="", password_hash="hash", sysadmin=False
        )
        member_id = await _insert(engine, "project_members", "id", project_id=kept_id, user_id=guest_id, role_id=3)
        accounts, db, jobs = SqlAccounts(engine), SqlDatabase(engine), SqlJobs(engine)
        digest, size = blob("layer")
        await db.link_blob("kept/app", digest, size)
        repo_id = await _scalar(engine, "SELECT id FROM repositories WHERE name = 'kept/app'")
        job = await jobs.create_job("gc", "Manual", "{}", datetime.now(UTC) - timedelta(days=1))
        assert job is not None

        await upgrade(engine)
        assert await _version(engine) == HEAD
        if empty_database.dialect == "sqlite":
            assert await _scalar(engine, "SELECT seq FROM sqlite_sequence WHERE name = 'projects'") == doomed_id
        # Every row stays, with its id and its links.
        again = await accounts.get_project("kept")
        assert again is not None and (again.project_id, again.owner_id) == (kept_id, owner_id)
        assert member_id in [m.id for m in (await accounts.list_members(kept_id, None, 0, 10)).items]
        assert await _scalar(engine, "SELECT id FROM repositories WHERE name = 'kept/app'") == repo_id
        assert await db.blob_size("kept/app", digest) == size
        stored_job = await jobs.get_job(job.id)
        assert stored_job is not None and stored_job.kind == "gc"

        # The id the audit records name is not given to the next project, nor are their records.
        after = await accounts.create_project("after", owner_id, {})
        assert after.project_id > doomed_id
        assert (await accounts.list_audit(AuditQuery(project_id=after.project_id), 0, 10)).items == []

        # From now on the newest row of each, deleted, leaves its id unused.
        await _never_reused_after_the_upgrade(engine, accounts, db, jobs, owner_id, after.project_id)
    finally:
        await engine.dispose()


async def _never_reused_after_the_upgrade(
    engine: AsyncEngine, accounts: SqlAccounts, db: SqlDatabase, jobs: SqlJobs, owner_id: int, project_id: int
) -> None:
    user = await accounts.create_user("newest", "hash", email=None, realname="", comment="", sysadmin=False)
    assert await accounts.delete_user(user.user_id)
    other = await accounts.create_user("newer", "hash", email=None, realname="", comment="", sysadmin=False)
    assert other.user_id > user.user_id

    project = await accounts.create_project("newest", owner_id, {})
    assert await accounts.delete_project(project.project_id)
    assert (await accounts.create_project("newer", owner_id, {})).project_id > project.project_id

    member = await accounts.add_member(project_id, other.user_id, 2)
    assert await accounts.remove_member(project_id, member.id)
    assert (await accounts.add_member(project_id, other.user_id, 2)).id > member.id

    robots = []
    for name in ("robot$newest", "robot$newer"):
        robot = await accounts.create_robot(
            name, "hash", description="", level="system", project_id=None, duration=-1, expires_at=-1,
            disabled=False, permissions=[], creator="admin",
        )  # fmt: skip
        robots.append(robot.id)
        assert await accounts.delete_robot(robot.id)
    assert robots[1] > robots[0]

    digest, size = blob("another layer")
    ids = []
    for _ in range(2):
        await db.link_blob("after/app", digest, size)
        ids.append(await _scalar(engine, "SELECT id FROM repositories WHERE name = 'after/app'"))
        assert await SqlArtifacts(engine).delete_repository("after/app")
    assert ids[1] > ids[0]

    newest = await _scalar(engine, "SELECT MAX(id) FROM audit_logs")
    await accounts.purge_audit(datetime.now(UTC) + timedelta(days=1))  # every record
    await accounts.record(project_id=None, username="x", operation="login", resource_type="user", resource="x")
    assert await _scalar(engine, "SELECT MAX(id) FROM audit_logs") > newest

    newest_job = await _scalar(engine, "SELECT MAX(id) FROM jobs")
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM jobs"))  # history pruned by hand
    job = await jobs.create_job("gc", "Manual", "{}", datetime.now(UTC))
    assert job is not None and job.id > newest_job
