"""Idle upload sessions and staging leftovers are purged; scrub finds corrupted and
missing blobs and quarantines the corrupted ones."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from portside.errors import BlobUploadUnknown
from portside.meta.stores import UploadRecord
from portside.oci.digest import Digest
from portside.upkeep.gc import GcOptions
from portside.upkeep.jobs import PlainJournal
from portside.upkeep.purge import UploadPurger
from portside.upkeep.scrub import Scrubber
from tests.api import oci
from tests.upkeep.conftest import World, _body

IDLE = 600


async def _staged(world: World) -> set[str]:
    return {u.upload_id async for u in world.store.list_uploads()}


async def test_idle_sessions_and_leftover_staging_areas_are_purged(world: World) -> None:
    idle = await world.uploads.start("r")
    await world.uploads.append("r", idle.upload_id, _body(b"some bytes"))
    # A staging area no session owns: a crash after the session ended, say.
    async with world.store.upload("leftover") as writer:
        await writer.resume(0, None)
        await writer.write(b"orphaned")
        await writer.flush()
    await asyncio.sleep(0.01)  # file times have coarse resolution on some filesystems
    cutoff = datetime.now(UTC)
    active = await world.uploads.start("r")
    await world.uploads.append("r", active.upload_id, _body(b"more bytes"))
    # A staging area made after the cutoff with no row yet: a session's first chunk in flight.
    async with world.store.upload("inflight") as writer:
        await writer.resume(0, None)
        await writer.write(b"arriving")
    assert await _staged(world) == {idle.upload_id, active.upload_id, "leftover", "inflight"}

    purger = UploadPurger(world.upkeep, world.store, IDLE)
    now = cutoff + timedelta(seconds=IDLE)
    lines: list[str] = []
    dry = await purger.purge(PlainJournal(lines), dry_run=True, now=now)
    assert (dry.sessions, dry.staging_areas) == (1, 1)
    assert await _staged(world) == {idle.upload_id, active.upload_id, "leftover", "inflight"}
    assert await world.database.get_upload(idle.upload_id) is not None
    assert any(idle.upload_id in line for line in lines) and any("leftover" in line for line in lines)

    done = await purger.purge(now=now)
    assert (done.sessions, done.staging_areas) == (1, 1)
    assert await world.database.get_upload(idle.upload_id) is None
    assert await world.database.get_upload(active.upload_id) is not None
    assert await _staged(world) == {active.upload_id, "inflight"}
    # The active session goes on and completes.
    data = b"more bytes"
    await world.uploads.complete("r", active.upload_id, Digest.of(data))
    assert await world.has_blob("r", str(Digest.of(data)))


async def test_gc_purges_uploads_too(world: World) -> None:
    session = await world.uploads.start("r")
    await world.uploads.append("r", session.upload_id, _body(b"abandoned"))
    now = datetime.now(UTC) + timedelta(days=2)
    result = await world.collector(grace_seconds=0, max_idle_seconds=IDLE).collect(GcOptions(), now=now)
    assert (result.uploads_purged, result.staging_areas_purged) == (1, 0)
    assert await world.database.get_upload(session.upload_id) is None
    assert await _staged(world) == set()


async def test_scrub_finds_corrupted_and_missing_blobs_and_quarantines(world: World) -> None:
    image = oci.image_manifest(oci.config_blob(), [oci.layer(4000), oci.layer(3000), oci.layer(2000)])
    await world.push("r", image, "v1")
    config, flipped, truncated, gone = image.blobs
    with open(world.store.blob_path(Digest.parse(flipped.digest)), "r+b") as f:
        f.seek(100)
        f.write(bytes([f.read(1)[0] ^ 0xFF]))
    os.truncate(world.store.blob_path(Digest.parse(truncated.digest)), 1000)
    os.unlink(world.store.blob_path(Digest.parse(gone.digest)))
    scrubber = Scrubber(world.upkeep, world.store, world.locks, batch=2)

    report = await scrubber.scrub()
    assert report.checked == 4
    assert sorted(report.corrupted) == sorted([flipped.digest, truncated.digest])
    assert report.missing == [gone.digest]
    assert report.quarantined == []
    assert report.bytes_checked == config.size
    assert await world.stored(flipped.digest)

    quarantined = await scrubber.scrub(quarantine=True)
    assert sorted(quarantined.quarantined) == sorted([flipped.digest, truncated.digest])
    for blob in (flipped, truncated):
        digest = Digest.parse(blob.digest)
        assert await world.store.size(digest) is None
        assert (world.store.root / "quarantine" / digest.algorithm / digest.hex).exists()
    summary = quarantined.to_dict()
    assert (summary["corrupted_count"], summary["missing_count"], summary["quarantined_count"]) == (2, 1, 2)

    # Pushing the blobs again publishes good copies; the next scrub finds everything intact.
    for blob in (flipped, truncated, gone):
        await world.push_blob("r", blob)
        assert await world.has_blob("r", blob.digest)
    clean = await scrubber.scrub()
    assert (clean.corrupted, clean.missing, clean.checked) == ([], [], 4)


async def test_ended_sessions_leave_tombstones_until_their_ids_expire(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = await world.uploads.start("r")
    assert await world.database.get_upload(started.upload_id) is None  # no row before its first bytes
    data = b"whole"
    await world.uploads.complete("r", started.upload_id, Digest.of(data), _body(data))
    tombstone = await world.database.get_upload(started.upload_id)
    assert tombstone is not None and tombstone.ended
    with pytest.raises(BlobUploadUnknown):
        await world.uploads.status("r", started.upload_id)

    # Once idle past the limit (the service's: a day), the tombstone goes; the id has
    # expired with it, so it still names no session.
    later = datetime.now(UTC) + timedelta(days=1, seconds=1)
    purged = await UploadPurger(world.upkeep, world.store, 86400).purge(now=later)
    assert purged.sessions == 1
    assert await world.database.get_upload(started.upload_id) is None
    monkeypatch.setattr("portside.registry.uploadids.time.time", later.timestamp)
    with pytest.raises(BlobUploadUnknown):
        await world.uploads.status("r", started.upload_id)
    with pytest.raises(BlobUploadUnknown):
        await world.uploads.append("r", started.upload_id, _body(b"too late"))


async def test_a_session_from_before_self_proving_ids_completes(world: World) -> None:
    """Sessions recorded under uuid4 ids before an upgrade go on through their rows."""
    legacy = UploadRecord(uuid.uuid4().hex, "r", 0, datetime.now(UTC))
    await world.database.save_upload(legacy)
    await world.uploads.append("r", legacy.upload_id, _body(b"first "))
    assert (await world.uploads.status("r", legacy.upload_id)).size == 6
    with pytest.raises(BlobUploadUnknown):
        await world.uploads.status("other", legacy.upload_id)
    data = b"first and last"
    await world.uploads.complete("r", legacy.upload_id, Digest.of(data), _body(b"and last"))
    assert await world.has_blob("r", str(Digest.of(data)))
    with pytest.raises(BlobUploadUnknown):
        await world.uploads.status("r", legacy.upload_id)
