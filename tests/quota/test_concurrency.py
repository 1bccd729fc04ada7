"""Concurrent writers of one limited project cannot pass its limit together, also as two
instances (two engines, two connection pools) on one database: SQLite on the `fs`
stack, PostgreSQL on the `scaled` one, where the quota row lock is what serialises them."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portside import wiring
from portside.config import load_settings
from portside.errors import Denied
from portside.meta.quotas import QuotaQuery
from portside.meta.sql.accounts import SqlAccounts
from portside.meta.sql.engine import create_engine
from portside.meta.sql.quotas import SqlQuotas
from portside.meta.sql.store import SqlDatabase
from portside.meta.stores import UploadRecord
from portside.oci.digest import Digest
from portside.oci.manifest import parse_manifest
from tests.quota.conftest import OCI_MANIFEST, MiB, image_manifest
from tests.stacks import Backing


@dataclass
class Instances:
    databases: list[SqlDatabase]
    quotas: SqlQuotas
    project_id: int

    async def used(self) -> int:
        quota = await self.quotas.get_quota(self.project_id)
        assert quota is not None
        return quota.storage_used


@pytest.fixture
async def instances(tmp_path: Path, stack: str, backing: Backing) -> AsyncIterator[Instances]:
    url = backing.postgres.create_database() if stack == "scaled" else None
    settings = load_settings(data_dir=tmp_path, database_url=url)
    await wiring.upgrade_database(settings)
    engines = [create_engine(settings.sqlalchemy_url) for _ in range(2)]
    try:
        accounts = SqlAccounts(engines[0])
        owner = await accounts.create_user("owner", "x", email=None, realname="", comment="", sysadmin=False)
        project = await accounts.create_project("team", owner.user_id, {})
        quotas = SqlQuotas(engines[0])
        yield Instances([SqlDatabase(e) for e in engines], quotas, project.project_id)
    finally:
        for engine in engines:
            await engine.dispose()


def fake_digest(n: int) -> Digest:
    return Digest.parse("sha256:" + hashlib.sha256(f"blob {n}".encode()).hexdigest())


async def _outcomes(pushes: list[asyncio.Future[None] | asyncio.Task[None]]) -> tuple[int, int]:
    results = await asyncio.gather(*pushes, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Denied):
            raise result
    refused = sum(isinstance(r, Denied) for r in results)
    return len(results) - refused, refused


async def test_concurrent_blob_links_stop_at_the_limit(instances: Instances) -> None:
    await instances.quotas.set_storage_limit(instances.project_id, 5 * MiB)
    dbs = instances.databases
    pushes = [asyncio.ensure_future(dbs[n % 2].link_blob(f"team/repo{n}", fake_digest(n), MiB)) for n in range(12)]
    assert await _outcomes(pushes) == (5, 7)
    assert await instances.used() == 5 * MiB

    # uploads completing at once, half on each instance: none fit any more
    sessions = {n: UploadRecord(f"u{n}", f"team/up{n}", 1, datetime.now(UTC)) for n in range(100, 104)}
    for n, session in sessions.items():
        await dbs[n % 2].save_upload(session)
    pushes = [
        asyncio.ensure_future(dbs[n % 2].complete_upload(session, fake_digest(n), 1)) for n, session in sessions.items()
    ]
    assert await _outcomes(pushes) == (0, 4)

    # the same blob pushed into many repositories at once counts once: all of them fit
    await instances.quotas.set_storage_limit(instances.project_id, 6 * MiB)
    pushes = [asyncio.ensure_future(dbs[n % 2].link_blob(f"team/same{n}", fake_digest(999), MiB)) for n in range(8)]
    assert await _outcomes(pushes) == (8, 0)
    assert await instances.used() == 6 * MiB


async def test_concurrent_manifests_stop_at_the_limit(instances: Instances) -> None:
    dbs = instances.databases
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    manifests = [image_manifest(config, [f"layer {n}".encode()]) for n in range(10)]
    repos = [f"team/app{n}" for n in range(10)]
    for n, repo in enumerate(repos):
        await dbs[0].link_blob(repo, Digest.of(config), len(config))
        await dbs[0].link_blob(repo, Digest.of(f"layer {n}".encode()), len(f"layer {n}".encode()))
    before = await instances.used()
    size = len(manifests[0])
    assert all(len(m) == size for m in manifests)
    await instances.quotas.set_storage_limit(instances.project_id, before + 3 * size)

    pushes = [
        asyncio.ensure_future(
            dbs[n % 2].put_manifest(repos[n], parse_manifest(payload, OCI_MANIFEST, Digest.of(payload)), "v1")
        )
        for n, payload in enumerate(manifests)
    ]
    assert await _outcomes(pushes) == (3, 7)
    assert await instances.used() == before + 3 * size

    page = await instances.quotas.list_quotas(QuotaQuery(sort=[("used.storage", True)]), 0, 10)
    assert [(q.project_name, q.storage_used) for q in page.items] == [("team", before + 3 * size)]
