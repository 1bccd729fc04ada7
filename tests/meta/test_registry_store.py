"""SqlDatabase (what /v2 uses): every method's round trip, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from portside.errors import Denied, ManifestBlobUnknown, ManifestInvalid
from portside.meta.stores import UploadRecord
from portside.oci.digest import Digest
from tests.meta.conftest import Stores, blob, image, index, push

# Names whose byte order differs from a locale's (en-US puts "a-b" after "aB", "_" first).
TRICKY = ["A", "Z", "a", "a-b", "a.b", "a_b", "aB", "ab", "b", "v1.10", "v1.9", "v1_0"]


async def test_blob_links(stores: Stores):
    db = stores.db
    digest, size = blob("layer")
    assert await db.blob_size("r/one", digest) is None
    await db.link_blob("r/one", digest, size)
    await db.link_blob("r/one", digest, size)  # again: nothing changes
    assert await db.blob_size("r/one", digest) == size
    assert await db.blob_size("r/two", digest) is None  # a link, not a global blob
    assert await db.unlink_blob("r/one", digest) is True
    assert await db.unlink_blob("r/one", digest) is False
    assert await db.unlink_blob("never/was", digest) is False
    assert await db.blob_size("r/one", digest) is None


async def test_large_sizes_survive(stores: Stores):
    digest = Digest.of(b"huge")
    await stores.db.link_blob("r/huge", digest, 5 * 2**40)  # beyond 32 bits
    assert await stores.db.blob_size("r/huge", digest) == 5 * 2**40


async def test_manifest_round_trip(stores: Stores):
    db = stores.db
    manifest = image("l1", "l2")
    await push(db, "r/img", manifest, "latest")
    by_tag = await db.get_manifest("r/img", "latest")
    by_digest = await db.get_manifest("r/img", manifest.digest)
    assert by_tag == by_digest
    assert by_tag is not None
    assert by_tag.payload == manifest.payload and isinstance(by_tag.payload, bytes)
    assert by_tag.media_type == manifest.media_type
    assert by_tag.digest == manifest.digest
    assert await db.get_manifest("r/img", "other") is None
    assert await db.get_manifest("r/other", manifest.digest) is None


async def test_binary_payload_is_kept_byte_for_byte(stores: Stores):
    # Manifests are JSON, but stored as bytes: nothing may re-encode them.
    manifest = image("l", annotations={"note": "caf\u00e9 \u2603 \\u0000"})
    await push(stores.db, "r/bytes", manifest)
    found = await stores.db.get_manifest("r/bytes", manifest.digest)
    assert found is not None and found.payload == manifest.payload


async def test_put_manifest_checks_blobs(stores: Stores):
    db = stores.db
    manifest = image("missing")
    with pytest.raises(ManifestBlobUnknown):
        await db.put_manifest("r/check", manifest, "t")
    for descriptor in manifest.blobs:
        await db.link_blob("r/check", descriptor.digest, descriptor.size + 1)
    with pytest.raises(ManifestInvalid):
        await db.put_manifest("r/check", manifest, "t")
    assert await db.list_tags("r/check", None, None) == []


async def test_index_needs_its_children_and_keeps_them(stores: Stores):
    db = stores.db
    child = image("c1")
    parent = index(child)
    with pytest.raises(ManifestBlobUnknown):
        await db.put_manifest("r/idx", parent, "multi")
    await push(db, "r/idx", child)
    await db.put_manifest("r/idx", parent, "multi")
    with pytest.raises(Denied):
        await db.delete_manifest("r/idx", child.digest)
    assert await db.delete_manifest("r/idx", parent.digest) is True
    assert await db.get_manifest("r/idx", "multi") is None  # its tag went with it
    assert await db.delete_manifest("r/idx", child.digest) is True
    assert await db.delete_manifest("r/idx", child.digest) is False
    assert await db.delete_manifest("no/repo", child.digest) is False


async def test_unlinking_a_needed_blob_is_denied(stores: Stores):
    db = stores.db
    manifest = image("needed")
    await push(db, "r/need", manifest, "v1")
    layer = manifest.blobs[1]
    with pytest.raises(Denied):
        await db.unlink_blob("r/need", layer.digest)
    await db.delete_manifest("r/need", manifest.digest)
    assert await db.unlink_blob("r/need", layer.digest) is True


async def test_tags_move_and_delete(stores: Stores):
    db = stores.db
    first, second = image("one"), image("two")
    await push(db, "r/tags", first, "latest")
    await push(db, "r/tags", second, "latest")
    found = await db.get_manifest("r/tags", "latest")
    assert found is not None and found.digest == second.digest
    assert await db.delete_tag("r/tags", "latest") is True
    assert await db.delete_tag("r/tags", "latest") is False
    assert await db.delete_tag("no/repo", "latest") is False
    assert await db.get_manifest("r/tags", first.digest) is not None  # untagged, still there


async def test_tags_list_in_byte_order_with_pages(stores: Stores):
    db = stores.db
    manifest = image("t")
    for tag in reversed(TRICKY):
        await push(db, "r/order", manifest, tag)
    assert await db.list_tags("r/order", None, None) == sorted(TRICKY)
    assert await db.list_tags("r/order", None, 3) == sorted(TRICKY)[:3]
    after = sorted(TRICKY).index("a-b") + 1
    assert await db.list_tags("r/order", "a-b", 3) == sorted(TRICKY)[after : after + 3]
    assert await db.list_tags("r/order", "v1_0", 5) == []
    assert await db.list_tags("no/repo", None, None) is None
    await db.link_blob("r/empty", *blob("x"))
    assert await db.list_tags("r/empty", None, None) == []


async def test_catalog_in_byte_order_with_pages(stores: Stores):
    db = stores.db
    names = [f"p/{n}" for n in TRICKY] + ["p-q/x", "p.q/x", "p_q/x", "pQ/x"]
    for name in reversed(names):
        await db.link_blob(name, *blob("x"))
    assert await db.list_repositories(None, None) == sorted(names)
    after = sorted(names).index("p/a-b") + 1
    assert await db.list_repositories("p/a-b", 2) == sorted(names)[after : after + 2]
    assert await db.list_repositories(sorted(names)[-1], 10) == []


async def test_referrers(stores: Stores):
    db = stores.db
    subject = image("s")
    await push(db, "r/ref", subject, "v1")
    sbom = image("sbom", subject=subject, artifact_type="application/spdx+json", annotations={"k": "v"})
    sig = image("sig", subject=subject, artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json")
    await push(db, "r/ref", sbom)
    await push(db, "r/ref", sig)
    found = await db.referrers("r/ref", subject.digest, None)
    assert [d.digest for d in found] == [sbom.digest, sig.digest]
    assert found[0].annotations == {"k": "v"} and found[0].size == len(sbom.payload)
    assert found[0].artifact_type == "application/spdx+json"
    only = await db.referrers("r/ref", subject.digest, "application/spdx+json")
    assert [d.digest for d in only] == [sbom.digest]
    assert await db.referrers("r/other", subject.digest, None) == []


async def test_record_pulls(stores: Stores):
    db, artifacts = stores.db, stores.artifacts
    manifest = image("pulled")
    await push(db, "r/pull", manifest, "v1")
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    later = t0 + timedelta(seconds=5)
    await db.record_pulls(
        [("r/pull", manifest.digest, t0), ("r/pull", manifest.digest, later), ("gone/x", manifest.digest, t0)]
    )
    # A later batch carrying an older pull (another instance's, say) moves nothing back.
    await db.record_pulls([("r/pull", manifest.digest, t0 - timedelta(days=1))])
    info = await artifacts.get_repository("r/pull")
    assert info is not None and info.pull_count == 3
    artifact = await artifacts.get_artifact("r/pull", str(manifest.digest))
    assert artifact is not None and artifact.pull_time == later
    await db.record_pulls([])


async def test_uploads(stores: Stores):
    db = stores.db
    started = datetime.now(UTC).replace(microsecond=0)
    assert await db.get_upload("u1") is None  # no row until the session saves one
    state = bytes(range(256))  # the writer's resumable state: any bytes
    await db.save_upload(UploadRecord("u1", "r/up", 1234, started, state))
    found = await db.get_upload("u1")
    assert found is not None and found.size == 1234 and found.repository == "r/up"
    assert found.state == state and not found.ended
    assert found.started_at == started and found.started_at.tzinfo is not None
    await db.save_upload(UploadRecord("u1", "r/up", 2000, started, None))
    found = await db.get_upload("u1")
    assert found is not None and (found.size, found.state, found.started_at) == (2000, None, started)

    digest, size = blob("uploaded")
    await db.complete_upload(found, digest, size)
    ended = await db.get_upload("u1")
    assert ended is not None and ended.ended and ended.state is None  # a tombstone
    assert await db.blob_size("r/up", digest) == size
    # A tombstone stays one: a late save cannot bring the session back.
    await db.save_upload(UploadRecord("u1", "r/up", 4000, started, state))
    ended = await db.get_upload("u1")
    assert ended is not None and ended.ended and ended.size == 2000  # unchanged by the late save

    # Ending a session that never saved a row leaves a tombstone all the same.
    await db.end_upload(UploadRecord("u2", "r/up", 0, started))
    cancelled = await db.get_upload("u2")
    assert cancelled is not None and cancelled.ended

    # A session no client saw leaves nothing behind.
    other, other_size = blob("whole")
    await db.complete_upload(UploadRecord("u3", "r/up", 0, started), other, other_size, tombstone=False)
    assert await db.get_upload("u3") is None
    assert await db.blob_size("r/up", other) == other_size


async def test_check(stores: Stores):
    await stores.db.check()
