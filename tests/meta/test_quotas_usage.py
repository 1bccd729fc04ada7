"""Usage as the quota store reads it, remembered per process (`UsageCache`), on both databases.

The reader is one instance (its own engine and cache), every write comes from another (its
own engine, bumping the generation the way a server's stores do, through a counter of its
own on the same file, as two processes of one machine share it). After each write the
reader answers exactly what a store without a cache sums; the writes include the one kind
that moves no generation (blob links: uploads and mounts). What is remembered is shown to
be used: a size changed behind every store's back is not seen until the generation moves;
and the storage check, which must never read it, sees it at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from portside.coord.counters import MachineChangeCounter
from portside.errors import Denied
from portside.meta.quotas import QuotaQuery
from portside.meta.sql.artifacts import SqlArtifacts
from portside.meta.sql.gc import SqlUpkeep
from portside.meta.sql.quotas import SqlQuotas, UsageCache
from portside.meta.sql.schema import blobs
from portside.meta.sql.store import SqlDatabase
from portside.meta.stores import UploadRecord
from tests.meta.conftest import Stores, blob, image, push


@dataclass
class Two:
    """A writer instance and a reader instance on one database and one generation."""

    writer: SqlDatabase
    artifacts: SqlArtifacts
    upkeep: SqlUpkeep
    writes: MachineChangeCounter
    cached: SqlQuotas
    reads: MachineChangeCounter
    uncached: SqlQuotas
    stores: Stores
    team: int
    other: int

    async def used(self, project_id: int | None = None) -> int:
        """The reader's answer, checked against a fresh sum and the list's."""
        project_id = self.team if project_id is None else project_id
        quota = await self.cached.get_quota(project_id)
        fresh = await self.uncached.get_quota(project_id)
        assert quota is not None and fresh is not None
        assert quota.storage_used == fresh.storage_used
        listed = await self.cached.list_quotas(QuotaQuery(sort=[("used.storage", True)]), 0, 10)
        assert {q.project_id: q.storage_used for q in listed.items}[project_id] == quota.storage_used
        return quota.storage_used


@pytest.fixture
async def two(instances: Callable[[int], list[Stores]], tmp_path: Path) -> AsyncIterator[Two]:
    stores, writing = instances(2)
    generation = tmp_path / "registry.generation"
    writes, reads = MachineChangeCounter(generation), MachineChangeCounter(generation)
    owner = await stores.accounts.create_user("owner", "x", email=None, realname="", comment="", sysadmin=False)
    team = await stores.accounts.create_project("team", owner.user_id, {})
    other = await stores.accounts.create_project("other", owner.user_id, {})
    try:
        yield Two(
            writer=SqlDatabase(writing.engine, after_commit=writes.bump),
            artifacts=SqlArtifacts(writing.engine, after_commit=writes.bump),
            upkeep=SqlUpkeep(writing.engine, after_commit=writes.bump),
            writes=writes,
            cached=SqlQuotas(stores.engine, usage=UsageCache(reads)),
            reads=reads,
            uncached=SqlQuotas(stores.engine),
            stores=stores,
            team=team.project_id,
            other=other.project_id,
        )
    finally:
        writes.close()
        reads.close()


async def test_every_change_through_another_instance_is_seen_by_the_next_read(two: Two) -> None:
    db = two.writer
    assert await two.used() == 0
    config, layer, extra = blob("{}"), blob("layer one"), blob("a blob on its own")

    # Blob links commit without moving the generation: the count of links tells.
    await db.link_blob("team/app", *config)
    assert await two.used() == config[1]
    await db.link_blob("team/app", *layer)
    assert await two.used() == config[1] + layer[1]
    session = UploadRecord("upload-1", "team/app", 0, datetime.now(UTC))
    await db.save_upload(session)
    await db.complete_upload(session, *extra)
    assert await two.used() == config[1] + layer[1] + extra[1]
    # ... into a new repository too, and a mount of what the project holds adds nothing.
    await db.link_blob("team/tools", *layer)
    assert await two.used() == config[1] + layer[1] + extra[1]

    manifest = image("layer one")
    await push(db, "team/app", manifest, "v1")
    content = config[1] + layer[1] + extra[1]
    assert await two.used() == content + len(manifest.payload)
    second = image("layer one", annotations={"build": "2"})
    await push(db, "team/tools", second, "v2")
    assert await two.used() == content + len(manifest.payload) + len(second.payload)

    # Deletes: a tag (usage stays), manifests, blob links, a repository.
    assert await db.delete_tag("team/tools", "v2")
    assert await two.used() == content + len(manifest.payload) + len(second.payload)
    assert await db.delete_manifest("team/tools", second.digest)
    assert await two.used() == content + len(manifest.payload)
    assert await db.unlink_blob("team/app", extra[0])
    assert await two.used() == config[1] + layer[1] + len(manifest.payload)
    # One blob unlinked and another linked: as many links as before, other bytes.
    assert await db.unlink_blob("team/tools", layer[0])
    await db.link_blob("team/tools", *extra)
    assert await two.used() == content + len(manifest.payload)
    assert await two.artifacts.delete_repository("team/tools")
    assert await two.used() == config[1] + layer[1] + len(manifest.payload)

    # Garbage collection's unlinks (an untagged manifest, then its blobs).
    assert await db.delete_tag("team/app", "v1")
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await two.upkeep.unlink_manifest("team/app", str(manifest.digest), later)
    assert await two.used() == config[1] + layer[1]
    assert await two.upkeep.unlink_blob("team/app", str(layer[0]), later)
    assert await two.used() == config[1]

    # The other project saw none of it.
    assert await two.used(two.other) == 0


async def test_what_is_remembered_is_used_until_the_generation_moves(two: Two) -> None:
    await push(two.writer, "team/app", image("layer"), "v1")
    before = await two.used()
    layer = blob("layer")[0]
    # Behind every store's back: no generation moves, no link is added.
    async with two.stores.engine.begin() as conn:
        await conn.execute(update(blobs).where(blobs.c.digest == str(layer)).values(size=blobs.c.size + 1000))
    quota = await two.cached.get_quota(two.team)
    assert quota is not None and quota.storage_used == before
    batch = await two.cached.quotas_of([two.team, two.other])
    assert {p: q.storage_used for p, q in batch.items()} == {two.team: before, two.other: 0}

    # The storage check sums what the project holds, whatever a reader remembers.
    await two.uncached.set_storage_limit(two.team, before + 500)
    small = blob("x")
    with pytest.raises(Denied, match="quota exceeded"):
        await two.writer.link_blob("team/app", *small)

    await two.writes.bump()
    quota = await two.cached.get_quota(two.team)
    assert quota is not None and quota.storage_used == before + 1000


class Moving:
    """A generation that moves between any two looks at it, or cannot be read (None)."""

    def __init__(self, readable: bool = True):
        self._readable = readable
        self._value = 0

    async def current(self) -> int | None:
        self._value += 1
        return self._value if self._readable else None


@pytest.mark.parametrize("readable", [True, False])
async def test_nothing_is_remembered_while_the_generation_moves_or_is_unknown(two: Two, readable: bool) -> None:
    quotas = SqlQuotas(two.stores.engine, usage=UsageCache(Moving(readable)))
    await push(two.writer, "team/app", image("layer"), "v1")
    first = await quotas.get_quota(two.team)
    assert first is not None
    async with two.stores.engine.begin() as conn:
        await conn.execute(update(blobs).where(blobs.c.digest == str(blob("layer")[0])).values(size=blobs.c.size + 7))
    again = await quotas.get_quota(two.team)
    assert again is not None and again.storage_used == first.storage_used + 7


class Late:
    """The shared generation, with a change committed just after one look at it, whose
    bump lands before the next look (as a write on another instance does, mid-read)."""

    def __init__(self, counter: MachineChangeCounter):
        self._counter = counter
        self.then: Callable[[], Awaitable[None]] | None = None

    async def current(self) -> int | None:
        value = await self._counter.current()
        if self.then is not None:
            change, self.then = self.then, None
            await change()
        return value


async def test_a_read_during_which_the_generation_moves_sums_afresh(two: Two) -> None:
    late = Late(two.reads)
    quotas = SqlQuotas(two.stores.engine, usage=UsageCache(late))
    await push(two.writer, "team/app", image("layer"), "v1")
    first = await quotas.get_quota(two.team)
    assert first is not None

    async def change() -> None:
        # Unseen by the count of links: only the generation can tell.
        async with two.stores.engine.begin() as conn:
            await conn.execute(update(blobs).where(blobs.c.digest == str(blob("layer")[0])).values(size=9999))
        await two.writes.bump()

    late.then = change
    again = await quotas.get_quota(two.team)
    fresh = await two.uncached.get_quota(two.team)
    assert again is not None and fresh is not None
    assert again.storage_used == fresh.storage_used != first.storage_used


async def test_quotas_of_a_page_of_projects(two: Two) -> None:
    await push(two.writer, "team/app", image("a"), "v1")
    await push(two.writer, "other/app", image("b", "c"), "v1")
    # A project made before quotas (no row) gets one with the store's default limit.
    async with two.stores.engine.begin() as conn:
        await conn.exec_driver_sql(f"DELETE FROM quotas WHERE project_id = {two.other}")
    store = SqlQuotas(two.stores.engine, default_limit=12345, usage=UsageCache(two.reads))
    found = await store.quotas_of([two.team, two.other, 999_999])
    assert set(found) == {two.team, two.other}
    assert found[two.other].storage_limit == 12345 and found[two.other].project_name == "other"
    for project_id, quota in found.items():
        fresh = await two.uncached.get_quota(project_id)
        assert fresh is not None and quota.storage_used == fresh.storage_used > 0
    assert await store.quotas_of([]) == {}
