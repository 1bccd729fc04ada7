"""Mark and sweep on a real database: exactly what goes, what stays, and that a dry run
reports the same and deletes nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from portside.oci.digest import Digest
from portside.registry.uploads import UploadService
from portside.upkeep.gc import GcOptions, GcResult
from tests.api import oci
from tests.upkeep.conftest import World, _body, a_moment_later

GRACE = 3600


def _counts(result: GcResult) -> dict[str, object]:
    return {k: v for k, v in result.to_dict().items() if k != "dry_run"}


async def _collect_twice(world: World, options: GcOptions, now: datetime) -> GcResult:
    """A dry run, checked to change nothing, then the real run, checked to match it."""
    collector = world.collector(GRACE)
    before = await world.upkeep.snapshot()
    files = sorted([str(b.digest) async for b in world.store.list_blobs()])
    dry = await collector.collect(GcOptions(options.delete_untagged, dry_run=True), now=now)
    assert await world.upkeep.snapshot() == before
    assert sorted([str(b.digest) async for b in world.store.list_blobs()]) == files
    real = await collector.collect(options, now=now)
    assert dry.dry_run and not real.dry_run
    assert _counts(dry) == _counts(real)
    return real


@dataclass
class Graph:
    """Two repositories' worth of images, signatures, indexes and strays."""

    base: oci.Blob
    m1: oci.Manifest  # tagged a:v1
    sig1: oci.Manifest  # untagged referrer of m1
    index: oci.Manifest  # tagged a:multi, children untagged
    u: oci.Manifest  # untagged, old
    sig_u: oci.Manifest  # referrer of u
    old_index: oci.Manifest  # untagged index with an untagged child
    stray: oci.Blob  # uploaded to a, never used
    d: oci.Manifest  # pushed to a, then deleted through the API
    mb: oci.Manifest  # tagged b:v1, shares u's layer
    md: oci.Manifest  # b:gone, then its tag deleted
    n: oci.Manifest  # untagged in a, pushed within the grace period
    new_stray: oci.Blob  # uploaded to a within the grace period
    cutoff: datetime


async def _build(world: World) -> Graph:
    base = oci.layer(700)
    m1 = oci.image_manifest(oci.config_blob(), [base, oci.layer(300)])
    sig1 = oci.artifact_manifest("application/vnd.dev.cosign.artifact.sig.v1+json", subject=m1)
    children = [oci.image_manifest(oci.config_blob(), [base, oci.layer(200)]) for _ in range(2)]
    index = oci.index_manifest(children)
    u_layer = oci.layer(400)
    u = oci.image_manifest(oci.config_blob(), [u_layer])
    sig_u = oci.artifact_manifest("application/vnd.dev.cosign.artifact.sig.v1+json", subject=u)
    old_index = oci.index_manifest([oci.image_manifest(oci.config_blob(), [oci.layer(500)])])
    stray = oci.layer(123)
    d = oci.image_manifest(oci.config_blob(), [oci.layer(321)])
    mb = oci.image_manifest(oci.config_blob(), [base, u_layer])
    md = oci.image_manifest(oci.config_blob(), [base])

    await world.push("a", m1, "v1")
    await world.push("a", sig1)
    await world.push("a", index, "multi")
    await world.push("a", u)
    await world.push("a", sig_u)
    await world.push("a", old_index)
    await world.push_blob("a", stray)
    await world.push("a", d)
    await world.manifests.delete("a", Digest.parse(d.digest))
    await world.push("b", mb, "v1")
    await world.push("b", md, "gone")
    await world.manifests.delete("b", "gone")

    cutoff = await a_moment_later()
    n = oci.image_manifest(oci.config_blob(), [oci.layer(600)])
    await world.push("a", n)
    new_stray = oci.layer(99)
    await world.push_blob("a", new_stray)
    return Graph(base, m1, sig1, index, u, sig_u, old_index, stray, d, mb, md, n, new_stray, cutoff)


async def test_keeps_what_tags_reach_and_sweeps_the_rest(world: World) -> None:
    g = await _build(world)
    now = g.cutoff + timedelta(seconds=GRACE)
    blobs_of_d = [b.digest for b in g.d.blobs]

    # Without delete_untagged every linked manifest is a root: only the deleted manifest
    # (its row), its blobs and the old stray go.
    first = await _collect_twice(world, GcOptions(delete_untagged=False), now)
    assert (first.manifests_unlinked, first.manifests_deleted) == (0, 1)
    assert (first.blob_links_removed, first.blobs_deleted) == (3, 3)
    assert first.bytes_freed == sum(b.size for b in g.d.blobs) + g.stray.size
    for digest in [*blobs_of_d, g.stray.digest]:
        assert not await world.stored(digest)
    assert await world.has_manifest("a", g.u.digest) and await world.has_manifest("b", g.md.digest)

    # With it: untagged manifests unreachable from tags and older than the cutoff go.
    second = await _collect_twice(world, GcOptions(delete_untagged=True), now)
    old_child = g.old_index.children[0]
    gone_manifests = {("a", g.u.digest), ("a", g.sig_u.digest), ("a", g.old_index.digest), ("a", old_child.digest)}
    gone_manifests.add(("b", g.md.digest))
    assert second.manifests_unlinked == len(gone_manifests)
    assert second.manifests_deleted == len(gone_manifests)
    # u's layer stays: b links it and b's tagged image needs it (only a's link goes).
    u_config, u_layer = g.u.blobs
    sig_u_payload = g.sig_u.blobs[1]
    child_config, child_layer = old_child.blobs
    md_config = g.md.blobs[0]
    swept = [u_config, sig_u_payload, child_config, child_layer, md_config]
    assert second.blobs_deleted == len(swept)
    assert second.blob_links_removed == len(swept) + 1  # and a's link to u's layer
    assert second.bytes_freed == sum(b.size for b in swept)
    assert second.orphans_deleted == 0

    for repo, digest in gone_manifests:
        assert not await world.has_manifest(repo, digest)
    for blob in swept:
        assert not await world.stored(blob.digest)
    assert not await world.has_blob("a", u_layer.digest)
    assert await world.has_blob("b", u_layer.digest)

    kept = {
        "a": [g.m1, g.sig1, g.index, *g.index.children, g.n],
        "b": [g.mb],
    }
    for repo, manifests in kept.items():
        for manifest in manifests:
            assert await world.has_manifest(repo, manifest.digest), (repo, manifest.digest)
            for blob in manifest.blobs:
                assert await world.has_blob(repo, blob.digest), (repo, blob.digest)
    assert await world.has_blob("a", g.new_stray.digest)  # within the grace period
    assert await world.database.list_tags("a", None, None) == ["multi", "v1"]
    assert await world.database.list_tags("b", None, None) == ["v1"]
    referrers = await world.manifests.referrers("a", Digest.parse(g.m1.digest), None)
    assert [str(r.digest) for r in referrers] == [g.sig1.digest]

    # Nothing is left to do: a second pass finds nothing.
    again = await world.collector(GRACE).collect(GcOptions(delete_untagged=True), now=now)
    assert _counts(again) == _counts(GcResult(False, True))


async def test_grace_period_spares_recent_pushes(world: World) -> None:
    old = oci.image_manifest(oci.config_blob(), [oci.layer(100)])
    await world.push("r", old)
    cutoff = await a_moment_later()
    fresh = oci.image_manifest(oci.config_blob(), [oci.layer(100)])
    await world.push("r", fresh)
    uploaded = oci.layer(50)  # a push in flight: blobs up, manifest not yet
    await world.push_blob("r", uploaded)
    result = await world.collector(GRACE).collect(
        GcOptions(delete_untagged=True), now=cutoff + timedelta(seconds=GRACE)
    )
    assert (result.manifests_unlinked, result.blobs_deleted) == (1, 2)
    assert not await world.has_manifest("r", old.digest)
    assert await world.has_manifest("r", fresh.digest)
    assert await world.has_blob("r", uploaded.digest)
    # The push goes on: its manifest still finds the blob it uploaded.
    late = oci.image_manifest(oci.config_blob(), [uploaded])
    await world.push("r", late, "done")


async def test_a_blob_used_again_is_touched_and_survives(world: World) -> None:
    layer = oci.layer(100)
    first = oci.image_manifest(oci.config_blob(), [layer])
    await world.push("r", first)
    await world.manifests.delete("r", Digest.parse(first.digest))
    cutoff = await a_moment_later()
    # Mounted into another repository after the cutoff: its link there is new, and the
    # mount touched the blob, so neither the link in r nor the blob may go.
    assert await world.blobs.mount("s", Digest.parse(layer.digest), "r")
    result = await world.collector(GRACE).collect(GcOptions(), now=cutoff + timedelta(seconds=GRACE))
    assert result.blobs_deleted == 1  # first's config only
    assert await world.has_blob("s", layer.digest)
    assert await world.has_blob("r", layer.digest)


async def test_orphan_content_is_swept_after_the_grace_period(world: World) -> None:
    kept = oci.image_manifest(oci.config_blob(), [oci.layer(64)])
    await world.push("r", kept, "v1")

    async def orphan(data: bytes, age: float) -> Digest:
        """Content published with no row, as a crash between the two leaves it."""
        digest = Digest.of(data)
        async with world.store.upload(f"crash-{digest.hex[:8]}") as writer:
            await writer.resume(0, None)
            await writer.write(data)
            await writer.commit(digest)
        await world.store.discard_upload(f"crash-{digest.hex[:8]}")
        path = world.store.blob_path(digest)
        when = path.stat().st_mtime - age
        os.utime(path, (when, when))
        return digest

    old = await orphan(os.urandom(300), age=2 * GRACE)
    young = await orphan(os.urandom(200), age=0)
    result = await _collect_twice(
        world, GcOptions(), datetime.fromtimestamp(world.store.blob_path(young).stat().st_mtime).astimezone()
    )
    assert (result.orphans_deleted, result.blobs_deleted, result.bytes_freed) == (1, 0, 300)
    assert await world.store.size(old) is None
    assert await world.store.size(young) == 200
    for blob in kept.blobs:
        assert await world.has_blob("r", blob.digest)


class _PausingStore:
    """The blob store, but a commit stops after publishing until the test lets it go on:
    an upload caught between publishing its bytes and recording the blob."""

    def __init__(self, store: Any):
        self._store = store
        self.published = asyncio.Event()
        self.proceed = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @contextlib.asynccontextmanager
    async def upload(self, upload_id: str) -> AsyncIterator[Any]:
        async with self._store.upload(upload_id) as writer:
            commit = writer.commit

            async def paused(digest: Digest) -> None:
                await commit(digest)
                self.published.set()
                await self.proceed.wait()

            writer.commit = paused
            yield writer


async def test_sweep_waits_for_an_upload_relying_on_the_same_content(world: World) -> None:
    layer = oci.layer(1000)
    image = oci.image_manifest(oci.config_blob(), [layer])
    await world.push("r", image)
    await world.manifests.delete("r", Digest.parse(image.digest))
    await world.blobs.delete("r", Digest.parse(layer.digest))  # garbage now: linked nowhere
    cutoff = await a_moment_later()

    # The same layer is pushed again; its commit finds the content in place (nothing to
    # publish) and pauses before the database records it.
    pausing = _PausingStore(world.store)
    uploads = UploadService(pausing, world.database, world.locks, world.uploads._ids)  # type: ignore[arg-type]
    session = await uploads.start("s")
    push = asyncio.create_task(uploads.complete("s", session.upload_id, Digest.parse(layer.digest), _body(layer.data)))
    await pausing.published.wait()
    # GC planned with the layer as garbage reaches it now, and must wait for the upload.
    gc = asyncio.create_task(world.collector(GRACE).collect(GcOptions(), now=cutoff + timedelta(seconds=GRACE)))
    await asyncio.sleep(0.3)
    pausing.proceed.set()
    await push
    result = await gc
    assert await world.has_blob("s", layer.digest)
    assert result.blobs_deleted == 1  # the config only
