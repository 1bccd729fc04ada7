"""Transaction bodies run straight on SQLite's driver (direct.py): they must store and read
back exactly what the same bodies do through SQLAlchemy, and the loop's own connection must
commit, roll back, wait for other writers and close like the pool's connections."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

import portside.meta.sql.accounts as accounts_module
import portside.meta.sql.quotas as quotas_module
import portside.meta.sql.store as store_module
from portside.errors import Denied, ManifestBlobUnknown
from portside.meta.sql.accounts import SqlAccounts
from portside.meta.sql.engine import create_engine
from portside.meta.sql.migrate import upgrade
from portside.meta.sql.quotas import SqlQuotas
from portside.meta.sql.store import SqlDatabase
from portside.meta.stores import UploadRecord
from portside.oci.digest import Digest
from tests.meta.conftest import blob, image, index, push
from tests.meta.test_sqlite_inline import Ticks

MOMENT = datetime(2026, 11, 23, 12, 34, 56, 789012, tzinfo=UTC)


async def _migrated(path: Path, *, inline: bool) -> AsyncEngine:
    engine = create_engine(f"sqlite+aiosqlite:///{path}", inline=inline)
    await upgrade(engine)
    return engine


async def _everything(engine: AsyncEngine) -> list[Any]:
    """Every write of a push, each kind of read, a quota refusal; what the reads returned."""
    db, accounts = SqlDatabase(engine), SqlAccounts(engine)
    owner = await accounts.create_user("owner", "x", email=None, realname="", comment="", sysadmin=False)
    team = await accounts.create_project("team", owner.user_id, {})
    await SqlQuotas(engine).set_storage_limit(team.project_id, 1000)
    seen: list[Any] = []

    started = UploadRecord("a" * 32, "team/app", 0, MOMENT)
    await db.save_upload(started)
    await db.save_upload(UploadRecord(started.upload_id, "team/app", 7, MOMENT, state=b"\x00\xffstate"))
    seen.append(await db.get_upload(started.upload_id))
    config = blob("{}")
    await db.complete_upload(started, *config)
    seen.append(await db.get_upload(started.upload_id))  # a tombstone now
    await db.end_upload(UploadRecord("b" * 32, "team/app", 0, MOMENT))
    seen.append(await db.get_upload("b" * 32))

    first, second = image("layer one"), image("layer two", config='{"os": "linux"}')
    await push(db, "team/app", first, "v1")  # into the existing repository
    await push(db, "open/app", second)  # a repository of no project: created by the push
    await push(db, "open/app", first, "v1")
    await db.put_manifest("open/app", index(first, second), "multi")
    await db.put_manifest("open/app", first, "v1")  # again: the manifest row is kept
    with pytest.raises(Denied):  # over the 1000 bytes
        await db.link_blob("team/app", *blob("x" * 600))
    for reference in ("v1", "multi", first.digest, Digest.of(b"absent")):
        record = await db.get_manifest("open/app", reference)
        seen.append(None if record is None else (record.digest, record.media_type, record.payload))
    seen.append(await db.blob_size("team/app", config[0]))
    seen.append(await db.blob_size("team/app", Digest.of(b"absent")))
    await accounts.close()
    return seen


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    connection = sqlite3.connect(path)
    try:
        names = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {name: sorted(connection.execute(f'SELECT * FROM "{name}"'), key=repr) for name in names}
    finally:
        connection.close()


async def test_bodies_on_the_driver_store_and_read_what_sqlalchemy_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for module in (store_module, quotas_module, accounts_module):
        monkeypatch.setattr(module, "now", lambda: MOMENT)
    direct = await _migrated(tmp_path / "direct.db", inline=True)
    through_sqlalchemy = await _migrated(tmp_path / "sqlalchemy.db", inline=False)
    assert SqlDatabase(direct)._inline is not None and SqlDatabase(through_sqlalchemy)._inline is None
    try:
        seen_direct = await _everything(direct)
        seen_through = await _everything(through_sqlalchemy)
    finally:
        await direct.dispose()
        await through_sqlalchemy.dispose()

    assert seen_direct == seen_through
    session = seen_direct[0]
    assert session.started_at == MOMENT and session.state == b"\x00\xffstate" and session.ended is False
    assert seen_direct[1].ended is True
    direct_rows, sqlalchemy_rows = _dump(tmp_path / "direct.db"), _dump(tmp_path / "sqlalchemy.db")
    assert direct_rows == sqlalchemy_rows
    assert len(direct_rows["manifests"]) == 3 and len(direct_rows["tags"]) == 3


async def _driver_engine(path: Path) -> tuple[AsyncEngine, SqlDatabase]:
    engine = await _migrated(path, inline=True)
    return engine, SqlDatabase(engine)


async def test_a_body_that_raises_leaves_nothing(tmp_path: Path) -> None:
    engine, db = await _driver_engine(tmp_path / "db.sqlite")
    try:
        with pytest.raises(ManifestBlobUnknown):
            # The body creates the repository, then finds the child missing.
            await db.put_manifest("app", index(image("unpushed")), "v1")
        assert await db.list_repositories(None, None) == []
        await push(db, "app", image("pushed"), "v1")
        assert await db.list_tags("app", None, None) == ["v1"]
        assert await db.list_repositories(None, None) == ["app"]
    finally:
        await engine.dispose()


async def test_a_body_waits_for_another_process_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine, db = await _driver_engine(path)
    other = sqlite3.connect(path, isolation_level=None)
    try:
        await db.link_blob("app", *blob("warm"))  # opens the loop's own connection
        other.execute("BEGIN IMMEDIATE")
        ticks = Ticks()
        linking = asyncio.create_task(db.link_blob("app", *blob("waits")))
        await asyncio.sleep(0.3)
        assert not linking.done(), "the write went ahead while another writer held the lock"
        assert ticks.count >= 20, "the event loop was blocked while the body waited"
        # Reads on the same connection go on meanwhile (WAL): they see the last commit.
        assert await db.blob_size("app", blob("warm")[0]) == 4
        other.execute("COMMIT")
        await asyncio.wait_for(linking, 5)
        ticks.stop()
        assert await db.blob_size("app", blob("waits")[0]) == 5
    finally:
        other.close()
        await engine.dispose()


async def test_disposing_the_engine_closes_the_loops_connection(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine, db = await _driver_engine(path)
    await push(db, "app", image("layer"), "v1")
    assert Path(f"{path}-wal").exists()
    await engine.dispose()
    # The last connection to close checkpoints the log and removes it: none is left open.
    assert not Path(f"{path}-wal").exists()
    # A store used after a dispose opens a connection again.
    assert await db.list_tags("app", None, None) == ["v1"]
    assert (await db.get_manifest("app", "v1")) is not None
    await engine.dispose()
