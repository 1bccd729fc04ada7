"""Registries (endpoints) on both databases: names unique, listing by Harbor's criteria, the
secret encrypted in the row and kept or replaced on update, health recorded and dropped
when the registry changes, and two instances reading each other's secrets (one key)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from portside.errors import Conflict
from portside.meta.criteria import Criteria, Match
from portside.meta.registries import Health, NewEndpoint
from portside.meta.sql.registries import SqlEndpoints
from tests.meta.conftest import Stores

SECRET = "store-secret-0c1d"


def _new(name: str, **extra: object) -> NewEndpoint:
    values: dict[str, object] = {
        "name": name,
        "type": "docker-registry",
        "url": f"https://{name}.example",
        "credential_type": "basic",
        "access_key": "user",
        "access_secret": SECRET,
    }
    values.update(extra)
    return NewEndpoint(**values)  # type: ignore[arg-type]


async def test_endpoints_are_stored_listed_and_their_secret_encrypted(stores: Stores) -> None:
    endpoints = SqlEndpoints(stores.engine)
    made = await endpoints.create(_new("central", description="the centre"))
    assert made.has_secret and made.health is None and made.access_key == "user"
    with pytest.raises(Conflict):
        await endpoints.create(_new("central"))
    async with stores.engine.connect() as conn:
        stored = (await conn.execute(text("SELECT access_secret FROM registries"))).scalar_one()
    assert SECRET not in stored and stored.startswith("gAAAA")
    assert await endpoints.secret(made.id) == SECRET
    # Another instance on the same database has the same key.
    assert await SqlEndpoints(stores.engine).secret(made.id) == SECRET

    for name in ("edge-b", "edge-a"):
        await endpoints.create(_new(name, type="harbor", access_key="", access_secret="", credential_type=""))
    found = await endpoints.list(Criteria().where("type", Match("exact", ("harbor",))).ordered(("name", False)), 0, 10)
    assert [e.name for e in found.items] == ["edge-a", "edge-b"] and found.total == 2
    assert not found.items[0].has_secret and await endpoints.secret(found.items[0].id) == ""
    page = await endpoints.list(Criteria(), 1, 1)
    assert page.total == 3 and [e.name for e in page.items] == ["edge-b"]  # by id

    checked = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await endpoints.record_health(made.id, Health("unhealthy", "unreachable", checked))
    again = await endpoints.get(made.id)
    assert again is not None and again.health == Health("unhealthy", "unreachable", checked)
    unhealthy = await endpoints.list(Criteria().where("status", Match("exact", ("unhealthy",))), 0, 10)
    assert [e.name for e in unhealthy.items] == ["central"]

    kept = await endpoints.update(made.id, _new("central", url="https://moved.example", access_secret=""), True)
    assert kept is not None and kept.url == "https://moved.example" and kept.health is None
    assert await endpoints.secret(made.id) == SECRET
    replaced = await endpoints.update(made.id, _new("central", access_secret="another"), False)
    assert replaced is not None and await endpoints.secret(made.id) == "another"
    with pytest.raises(Conflict):
        await endpoints.update(made.id, _new("edge-a"), True)
    assert await endpoints.update(10_000, _new("nothing"), True) is None

    removed = await endpoints.delete(made.id)
    assert removed is not None and removed.name == "central"
    assert await endpoints.get(made.id) is None and await endpoints.delete(made.id) is None
