"""The registry's generation in Redis: bumped after commits, read by every instance's cache."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portside.coord.redis import RedisCoordinator
from portside.errors import Unavailable
from portside.meta.sql.engine import create_engine
from portside.meta.sql.migrate import upgrade
from portside.meta.sql.store import SqlDatabase
from portside.meta.stores import ManifestRecord, UploadRecord
from portside.oci.digest import Digest
from portside.oci.manifest import Manifest, parse_manifest
from portside.registry.cache import ManifestCache
from tests.coord.conftest import Instances
from tests.servers import free_port

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = b'{"architecture":"amd64","os":"linux"}'


async def test_a_bump_is_seen_by_every_instance(instances: Instances) -> None:
    a, b = instances(), instances()
    before = await b.registry_changes.current()
    assert before is not None and before == await a.registry_changes.current()
    await a.registry_changes.bump()
    assert await b.registry_changes.current() not in (None, before)
    assert await b.account_changes.current() != await b.registry_changes.current()  # separate keys


async def test_a_lost_generation_starts_again_somewhere_new(instances: Instances, prefix: str) -> None:
    a = instances()
    await a.registry_changes.bump()
    remembered = await a.registry_changes.current()
    await a._link.client.delete(f"{prefix}gen:registry")  # Redis restarted, or evicted it
    fresh = await a.registry_changes.current()
    assert fresh is not None and fresh != remembered and fresh > 1000  # not 1, 2, 3 … again


async def test_an_unreachable_redis_caches_nothing_and_writers_hear_of_it(prefix: str) -> None:
    down = RedisCoordinator.from_url(f"redis://127.0.0.1:{free_port()}/0", prefix, timeout=0.2)
    try:
        assert await down.registry_changes.current() is None
        with pytest.raises(Unavailable) as raised:
            await down.registry_changes.bump()
        assert raised.value.status == 503 and "saved" in raised.value.text
    finally:
        await down.close()


# --- two instances over one database ----------------------------------------------------


@dataclass
class Instance:
    store: SqlDatabase
    cache: ManifestCache
    loads: int = 0

    async def get(self, repo: str, reference: str | Digest) -> ManifestRecord | None:
        async def load() -> ManifestRecord | None:
            self.loads += 1
            return await self.store.get_manifest(repo, reference)

        return await self.cache.lookup(repo, reference, load)


@pytest.fixture
async def two(tmp_path: Path, instances: Instances) -> AsyncIterator[tuple[Instance, Instance]]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'portside.db'}"
    engines = [create_engine(url), create_engine(url)]
    await upgrade(engines[0])
    pair = []
    for engine in engines:
        coordinator = instances()
        store = SqlDatabase(engine, after_commit=coordinator.registry_changes.bump)
        pair.append(Instance(store, ManifestCache(coordinator.registry_changes)))
    yield pair[0], pair[1]
    for engine in engines:
        await engine.dispose()


async def _image(store: SqlDatabase, repo: str, label: str) -> Manifest:
    config = Digest.of(CONFIG)
    await store.link_blob(repo, config, len(CONFIG))
    payload = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": str(config),
                "size": len(CONFIG),
            },
            "layers": [],
            "annotations": {"label": label},
        }
    ).encode()
    return parse_manifest(payload, OCI_MANIFEST, Digest.of(payload))


async def test_a_tag_moved_through_one_instance_is_served_new_by_the_other(two: tuple[Instance, Instance]) -> None:
    a, b = two
    first, second = await _image(a.store, "lib/app", "1"), await _image(a.store, "lib/app", "2")
    await a.store.put_manifest("lib/app", first, "latest")
    assert (await b.get("lib/app", "latest")).digest == first.digest  # type: ignore[union-attr]
    assert (await b.get("lib/app", "latest")).digest == first.digest  # type: ignore[union-attr]
    assert b.loads == 1

    await a.store.put_manifest("lib/app", second, "latest")  # the push's response goes out after this
    assert (await b.get("lib/app", "latest")).digest == second.digest  # type: ignore[union-attr]

    await a.store.delete_tag("lib/app", "latest")
    assert await b.get("lib/app", "latest") is None


async def test_counters_blob_links_and_uploads_leave_caches_warm(two: tuple[Instance, Instance]) -> None:
    a, b = two
    image = await _image(a.store, "lib/warm", "1")
    await a.store.put_manifest("lib/warm", image, "v1")
    await b.get("lib/warm", "v1")
    await b.get("lib/warm", image.digest)
    loads = b.loads

    await a.store.record_pulls([("lib/warm", image.digest, datetime.now(UTC))])
    await a.store.link_blob("lib/warm", Digest.of(b"layer"), 5)
    await a.store.save_upload(UploadRecord("u1", "lib/warm", 5, datetime.now(UTC)))
    await a.store.complete_upload(UploadRecord("u1", "lib/warm", 5, datetime.now(UTC)), Digest.of(b"other"), 5)

    await b.get("lib/warm", "v1")
    await b.get("lib/warm", image.digest)
    assert b.loads == loads
