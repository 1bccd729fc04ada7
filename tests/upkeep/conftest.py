"""A registry's services in-process over a real SQLite database and filesystem store, for
GC, purge and scrub tests that build exact graphs and check exactly what goes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from portside.coord.locks import LocalLocks
from portside.errors import BlobUnknown, ManifestUnknown
from portside.meta.sql.engine import create_engine
from portside.meta.sql.gc import SqlUpkeep
from portside.meta.sql.jobs import SqlJobs
from portside.meta.sql.migrate import upgrade
from portside.meta.sql.store import SqlDatabase
from portside.oci.digest import Digest
from portside.registry.blobs import BlobService
from portside.registry.manifests import ManifestService
from portside.registry.uploadids import UploadIds
from portside.registry.uploads import UploadService
from portside.storage.fs import FsBlobStore
from portside.upkeep.gc import GarbageCollector
from portside.upkeep.purge import UploadPurger
from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Portside
from tests.stacks import Backing


async def _body(data: bytes) -> AsyncIterator[bytes]:
    yield data


@dataclass
class World:
    engine: AsyncEngine
    database: SqlDatabase
    upkeep: SqlUpkeep
    jobs: SqlJobs
    store: FsBlobStore
    locks: LocalLocks
    uploads: UploadService
    blobs: BlobService
    manifests: ManifestService

    def collector(self, grace_seconds: float = 3600, max_idle_seconds: float = 86400) -> GarbageCollector:
        purger = UploadPurger(self.upkeep, self.store, max_idle_seconds)
        return GarbageCollector(self.upkeep, self.store, self.locks, grace_seconds, purger)

    async def push_blob(self, repo: str, blob: oci.Blob | bytes) -> str:
        data = blob.data if isinstance(blob, oci.Blob) else blob
        digest = Digest.of(data)
        await self.uploads.upload_whole(repo, digest, _body(data), len(data))
        return str(digest)

    async def push(self, repo: str, manifest: oci.Manifest, tag: str | None = None) -> str:
        """The manifest's children and blobs, then the manifest (by tag, or by digest)."""
        for child in manifest.children:
            await self.push(repo, child)
        for blob in manifest.blobs:
            await self.push_blob(repo, blob)
        reference = tag if tag is not None else Digest.parse(manifest.digest)
        await self.manifests.put(repo, reference, manifest.body, manifest.media_type)
        return manifest.digest

    async def has_manifest(self, repo: str, digest: str) -> bool:
        try:
            await self.manifests.get(repo, Digest.parse(digest))
        except ManifestUnknown:
            return False
        return True

    async def has_blob(self, repo: str, digest: str) -> bool:
        """Linked to `repo` and its content readable."""
        try:
            handle = await self.blobs.open(repo, Digest.parse(digest))
        except BlobUnknown:
            return False
        data = b"".join([chunk async for chunk in handle.read()])
        assert Digest.of(data) == Digest.parse(digest)
        return True

    async def stored(self, digest: str) -> bool:
        return await self.store.size(Digest.parse(digest)) is not None


@pytest.fixture
async def world(tmp_path: Path, stack: str, backing: Backing) -> AsyncIterator[World]:
    """On the `fs` stack SQLite; on `scaled` a PostgreSQL database of the test's own."""
    if stack == "scaled":
        url = backing.postgres.create_database().replace("postgresql://", "postgresql+asyncpg://", 1)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'portside.db'}"
    engine = create_engine(url)
    await upgrade(engine)
    database = SqlDatabase(engine)
    store = FsBlobStore(tmp_path / "data")
    locks = LocalLocks(tmp_path / "locks")
    yield World(
        engine=engine,
        database=database,
        upkeep=SqlUpkeep(engine),
        jobs=SqlJobs(engine),
        store=store,
        locks=locks,
        uploads=UploadService(store, database, locks, UploadIds(b"upload ids in upkeep tests, 32+ bytes", 86400)),
        blobs=BlobService(store, database, database, locks),
        manifests=ManifestService(database, 4 * 1024 * 1024),
    )
    await store.close()
    await engine.dispose()


async def a_moment_later() -> datetime:
    """A time strictly between what was written before and what is written after."""
    await asyncio.sleep(0.01)
    when = datetime.now(UTC)
    await asyncio.sleep(0.01)
    return when


# --- live servers ---------------------------------------------------------------------------

# The grace period of the live servers here: longer than any one push takes (its blobs
# must survive until its manifest arrives), short enough for tests to wait out.
LIVE_GRACE_SECONDS = 3


@pytest.fixture
def live(tmp_path: Path, stack: str, backing: Backing) -> Iterator[Portside]:
    """`fresh_portside` (a server of the test's own, on each stack) with a short GC grace
    period and schedules polled twice a second."""
    env = {
        **backing.env(stack),
        "PORTSIDE_GC_GRACE_SECONDS": str(LIVE_GRACE_SECONDS),
        "PORTSIDE_JOB_POLL_SECONDS": "0.5",
    }
    server = Portside(data_dir=tmp_path / "data", env=env)
    server.start()
    yield server
    server.stop()


def admin_client(server: Portside) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=("admin", ADMIN_PASSWORD), timeout=60.0)


def wait_job(client: httpx.Client, kind: str, job_id: int, timeout: float = 120.0) -> dict[str, Any]:
    """Poll `/system/<kind>/<id>` until the job has ended; its GCHistory body."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get(f"/api/v2.0/system/{kind}/{job_id}")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["job_status"] not in ("Pending", "Running"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"{kind} job {job_id} still running after {timeout}s")


def run_job(client: httpx.Client, kind: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """Start a job through the API (schedule type Manual) and wait for its end."""
    body = {"schedule": {"type": "Manual"}, "parameters": parameters}
    r = client.post(f"/api/v2.0/system/{kind}/schedule", json=body)
    assert r.status_code == 201, r.text
    job_id = int(r.headers["Location"].rsplit("/", 1)[1])
    return wait_job(client, kind, job_id)
