"""Scanner registrations in the metadata store: names and URLs unique, one default at a
time, and the adapter's credential encrypted in the database file."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from portside.errors import Conflict
from portside.meta.scanners import NewRegistration
from portside.meta.sql.engine import create_engine
from portside.meta.sql.migrate import upgrade
from portside.meta.sql.scanners import SqlScannerRegistrations

SECRET = "adapter-secret-0123456789"


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlScannerRegistrations]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}", pool_size=2)
    await upgrade(engine)
    yield SqlScannerRegistrations(engine)
    await engine.dispose()


async def test_names_and_urls_are_unique(store: SqlScannerRegistrations) -> None:
    first = await store.create(NewRegistration(name="trivy", url="http://trivy:8080"))
    with pytest.raises(Conflict):
        await store.create(NewRegistration(name="trivy", url="http://other:8080"))
    with pytest.raises(Conflict):
        await store.create(NewRegistration(name="other", url="http://trivy:8080"))
    assert [r.uuid for r in await store.list()] == [first.uuid]


async def test_one_default_at_a_time(store: SqlScannerRegistrations) -> None:
    a = await store.create(NewRegistration(name="a", url="http://a"))
    b = await store.create(NewRegistration(name="b", url="http://b"))
    assert await store.set_default(a.uuid)
    assert await store.set_default(b.uuid)
    defaults = [r.name for r in await store.list() if r.is_default]
    assert defaults == ["b"]
    assert not await store.set_default("no-such-scanner")
    assert await store.set_default(None)
    assert not any(r.is_default for r in await store.list())


async def test_credential_is_encrypted_at_rest(store: SqlScannerRegistrations, tmp_path: Path) -> None:
    made = await store.create(NewRegistration(name="s", url="http://s", auth="Bearer", access_credential=SECRET))
    assert made.has_credential
    assert await store.credential(made.uuid) == SECRET
    with sqlite3.connect(tmp_path / "meta.db") as db:
        stored = db.execute("SELECT access_credential FROM scanner_registrations").fetchone()[0]
    assert stored and SECRET not in stored
    assert SECRET.encode() not in (tmp_path / "meta.db").read_bytes()

    # Sent back masked, the credential stays as it was; a new one replaces it.
    kept = await store.update(made.uuid, NewRegistration(name="s2", url="http://s", auth="Bearer"), True)
    assert kept is not None and kept.name == "s2"
    assert await store.credential(made.uuid) == SECRET
    await store.update(made.uuid, NewRegistration(name="s2", url="http://s", access_credential="new"), False)
    assert await store.credential(made.uuid) == "new"
    assert await store.delete(made.uuid) is not None
    assert await store.get(made.uuid) is None
