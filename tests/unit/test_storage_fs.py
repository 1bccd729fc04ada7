import asyncio
import hashlib
import os
import uuid

import pytest

from portside.errors import InsufficientStorage
from portside.oci.digest import Digest
from portside.storage import fs
from portside.storage.driver import UploadLost, UploadSealed
from portside.storage.fs import FsBlobStore


async def _acknowledge(store: FsBlobStore, data: bytes) -> tuple[int, bytes]:
    """Stage `data` as upload "u"'s first chunk; its acknowledged size and saved state."""
    async with store.upload("u") as writer:
        await writer.resume(0, None)
        await writer.write(data)
        await writer.flush()
        assert writer.state is not None
        return writer.size, writer.state


async def test_upload_resumes_after_restart_and_publishes_once(tmp_path):
    size, _ = await _acknowledge(FsBlobStore(tmp_path), b"hello ")
    # A new store object is what a restarted server sees: no cached hash state.
    restarted = FsBlobStore(tmp_path)
    async with restarted.upload("u") as writer:
        await writer.resume(size)
        await writer.write(b"world")
        digest = await writer.digest("sha256")
        assert digest == Digest.of(b"hello world")
        assert await writer.digest("sha512") == Digest.of(b"hello world", "sha512")
        await writer.commit(digest)
    assert restarted.blob_path(digest).read_bytes() == b"hello world"
    await restarted.discard_upload("u")
    assert not restarted.upload_path("u").exists()
    assert await restarted.size(digest) == 11


async def test_unacknowledged_bytes_are_cut_off(tmp_path):
    store = FsBlobStore(tmp_path)
    with pytest.raises(RuntimeError):
        async with store.upload("u") as writer:
            await writer.resume(0)
            await writer.write(b"acknowledged")
            await writer.flush()
            raise RuntimeError("request failed after the bytes were written")
    async with store.upload("u") as writer:
        await writer.resume(3)
        assert writer.size == 3
        assert await writer.digest("sha256") == Digest.of(b"ack")


async def test_missing_or_short_staging_is_lost(tmp_path):
    store = FsBlobStore(tmp_path)
    with pytest.raises(UploadLost):
        async with store.upload("gone") as writer:
            await writer.resume(5)
    async with store.upload("short") as writer:
        await writer.resume(0)
        await writer.write(b"ab")
        await writer.flush()
    with pytest.raises(UploadLost):
        async with FsBlobStore(tmp_path).upload("short") as writer:
            await writer.resume(10)


async def test_same_content_twice_keeps_one_copy(tmp_path):
    store = FsBlobStore(tmp_path)
    data = os.urandom(1000)
    digest = Digest("sha256", hashlib.sha256(data).hexdigest())
    for upload_id in ("a", "b"):
        async with store.upload(upload_id) as writer:
            await writer.resume(0)
            await writer.write(data)
            await writer.commit(digest)
    files = [p for p in (tmp_path / "blobs").rglob("*") if p.is_file()]
    assert files == [store.blob_path(digest)]
    assert b"".join([c async for c in store.read(digest, 10, 20)]) == data[10:20]


async def test_cached_writer_rewinds_to_the_acknowledged_size(tmp_path):
    store = FsBlobStore(tmp_path)
    async with store.upload("u") as writer:
        await writer.resume(0)
        await writer.write(b"0123456789")
        await writer.flush()
    async with store.upload("u") as writer:
        await writer.resume(4)  # only four bytes were acknowledged
        await writer.write(b"x")
        assert await writer.digest("sha256") == Digest.of(b"0123x")


async def test_a_published_upload_is_sealed_until_discarded(tmp_path):
    store = FsBlobStore(tmp_path)
    data = b"final bytes"
    digest = Digest.of(data)
    async with store.upload("u") as writer:
        await writer.resume(0)
        await writer.write(data)
        await writer.commit(digest)
    # The process dies here, before the database records the blob. After a restart the
    # upload still leads to the published bytes, which can be committed but not changed.
    restarted = FsBlobStore(tmp_path)
    async with restarted.upload("u") as writer:
        await writer.resume(3)
        assert writer.sealed and writer.size == len(data)
        with pytest.raises(UploadSealed):
            await writer.write(b"more")
        assert await writer.digest("sha256") == digest
        await writer.commit(digest)
    await restarted.discard_upload("u")
    assert restarted.blob_path(digest).read_bytes() == data
    assert not restarted.upload_path("u").exists()


async def test_a_restarted_server_continues_the_saved_hash(tmp_path):
    store = FsBlobStore(tmp_path)
    size, state = await _acknowledge(store, b"hello ")
    # Change the staged bytes behind the store's back: a restart that continues from the
    # saved state does not read them again (this is how we see it does not).
    with open(store.upload_path("u"), "r+b") as f:
        f.write(b"HELLO ")
    restarted = FsBlobStore(tmp_path)
    async with restarted.upload("u") as writer:
        await writer.resume(size, state)
        await writer.write(b"world")
        assert await writer.digest("sha256") == Digest.of(b"hello world")


async def test_a_state_that_does_not_fit_falls_back_to_rehashing(tmp_path):
    _, state = await _acknowledge(FsBlobStore(tmp_path), b"0123456789")
    for size, saved in [(10, b"garbage"), (10, state[:-1] + bytes([state[-1] ^ 1])), (4, state)]:
        async with FsBlobStore(tmp_path).upload("u") as writer:
            await writer.resume(size, saved)
            assert await writer.digest("sha256") == Digest.of(b"0123456789"[:size])


def _under_another_boot(state: bytes) -> bytes:
    """`state` as a request after a machine crash finds it: saved under another boot."""
    assert state[:1] == b"U" and state[1:17] == fs._BOOT
    return b"U" + uuid.uuid4().bytes + state[17:]


async def test_a_chunk_is_acknowledged_from_the_page_cache_and_published_with_an_fsync(tmp_path, monkeypatch):
    syncs = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: syncs.append("fdatasync"))
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (syncs.append("fsync"), real_fsync(fd)))
    store = FsBlobStore(tmp_path)
    async with store.upload("u") as writer:
        await writer.resume(0, None)
        await writer.write(b"x" * (5 * 1024 * 1024))  # a batch on a worker thread, and a tail
        await writer.flush()
        assert syncs == []
        assert store.upload_path("u").stat().st_size == writer.size  # in the file, for any process
        state = writer.state
        assert state is not None and state[:1] == b"U" and state[1:17] == fs._BOOT
        digest = await writer.digest("sha256")
        await writer.commit(digest)
    assert syncs[0] == "fsync"  # the staged file, before it is linked into place


async def test_after_a_machine_crash_the_staged_bytes_are_hashed_again(tmp_path):
    store = FsBlobStore(tmp_path)
    size, state = await _acknowledge(store, b"hello ")
    # What a crash can leave: the file's length survived, its bytes did not.
    with open(store.upload_path("u"), "r+b") as f:
        f.write(b"\0" * size)
    async with FsBlobStore(tmp_path).upload("u") as writer:
        await writer.resume(size, _under_another_boot(state))
        await writer.write(b"world")
        # The digest is of what is staged, so the client's digest of "hello world" fails.
        assert await writer.digest("sha256") == Digest.of(b"\0" * size + b"world")


async def test_an_upload_continued_under_another_boot_still_completes(tmp_path):
    store = FsBlobStore(tmp_path)
    size, state = await _acknowledge(store, b"hello ")
    async with FsBlobStore(tmp_path).upload("u") as writer:
        await writer.resume(size, _under_another_boot(state))
        await writer.write(b"world")
        await writer.flush()
        assert writer.state[1:17] == fs._BOOT  # its bytes are this boot's now
        assert await writer.digest("sha256") == Digest.of(b"hello world")


async def test_an_fsynced_state_is_trusted_under_any_boot(tmp_path):
    store = FsBlobStore(tmp_path)
    size, state = await _acknowledge(store, b"hello ")
    with open(store.upload_path("u"), "r+b") as f:
        f.write(b"HELLO ")  # changed behind the store's back: a trusted state does not see it
    async with FsBlobStore(tmp_path).upload("u") as writer:
        await writer.resume(size, state[17:])  # a bare hash state, as saved after an fdatasync
        await writer.write(b"world")
        assert await writer.digest("sha256") == Digest.of(b"hello world")


async def test_where_the_boot_is_unknown_a_chunk_is_fdatasynced(tmp_path, monkeypatch):
    monkeypatch.setattr(fs, "_BOOT", None)
    syncs = []
    real = os.fdatasync
    monkeypatch.setattr(os, "fdatasync", lambda fd: (syncs.append(fd), real(fd)))
    async with FsBlobStore(tmp_path).upload("u") as writer:
        await writer.resume(0, None)
        await writer.write(b"hello")
        await writer.flush()
        assert len(syncs) == 1
        assert writer.state[:1] != b"U"


async def test_state_is_only_offered_once_flushed(tmp_path):
    async with FsBlobStore(tmp_path).upload("u") as writer:
        await writer.resume(0, None)
        await writer.write(b"pending")
        assert writer.state is None
        await writer.flush()
        assert writer.state is not None


async def test_listing_quarantine_and_no_redirects(tmp_path):
    store = FsBlobStore(tmp_path)
    digests = []
    for i, data in enumerate([b"one", b"two!"]):
        async with store.upload(f"u{i}") as writer:
            await writer.resume(0, None)
            await writer.write(data)
            digests.append(await writer.digest("sha256"))
            await writer.commit(digests[-1])
    (tmp_path / "blobs" / "sha256" / "zz").mkdir()
    (tmp_path / "blobs" / "sha256" / "zz" / "not-a-digest").write_bytes(b"")
    listed = {b.digest: b.size async for b in store.list_blobs()}
    assert listed == {digests[0]: 3, digests[1]: 4}
    assert sorted([u.upload_id async for u in store.list_uploads()]) == ["u0", "u1"]
    await store.discard_upload("u0")
    assert [u.upload_id async for u in store.list_uploads()] == ["u1"]
    assert await store.redirect_url(digests[0]) is None
    await store.quarantine(digests[0])
    await store.quarantine(digests[0])
    assert await store.size(digests[0]) is None
    assert (tmp_path / "quarantine" / "sha256" / digests[0].hex).read_bytes() == b"one"
    assert {b.digest async for b in store.list_blobs()} == {digests[1]}
    await store.close()


async def test_large_writes_are_batched_in_flight_and_hash_in_order(tmp_path):
    store = FsBlobStore(tmp_path)
    pieces = [os.urandom(1 << 20) for _ in range(11)]  # more than two 4 MiB batches
    async with store.upload("big") as writer:
        await writer.resume(0)
        for piece in pieces:
            await writer.write(piece)
        assert writer.state is None  # a batch may be in flight, and the tail is buffered
        await writer.flush()
        assert writer.state is not None
        digest = await writer.digest("sha256")
        assert digest == Digest.of(b"".join(pieces))
        await writer.commit(digest)
    assert store.blob_path(digest).read_bytes() == b"".join(pieces)


async def test_a_batch_that_fails_in_flight_fails_the_request_and_loses_nothing(tmp_path, monkeypatch):
    store = FsBlobStore(tmp_path)
    await _acknowledge(store, b"kept")
    real_write = os.write
    room = [6 << 20]  # what the disk takes of the request's bytes before it is full

    def full_disk(fd, data):
        if len(data) > 1 << 20:
            if not room[0]:
                raise OSError(28, "No space left on device")
            written = real_write(fd, data[: room[0]])  # a short write, as a filling disk does
            room[0] -= written
            return written
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", full_disk)
    # A full disk is the registry's refusal (507), not a bare OSError.
    with pytest.raises(InsufficientStorage, match="ran out of space"):
        async with store.upload("u") as writer:
            await writer.resume(4)
            for _ in range(3):  # the first batch's failure shows at the second or at flush
                await writer.write(os.urandom(4 << 20))
            await writer.flush()
    monkeypatch.setattr(os, "write", real_write)
    # The unacknowledged bytes are cut off at once, so their space is free again.
    assert store.upload_path("u").stat().st_size == 4
    async with store.upload("u") as writer:
        await writer.resume(4)  # the acknowledged bytes, and only those
        await writer.write(b" and more")
        assert await writer.digest("sha256") == Digest.of(b"kept and more")


async def test_a_cancelled_request_waits_for_its_batch_before_closing_the_file(tmp_path):
    store = FsBlobStore(tmp_path)

    async def upload_forever() -> None:
        async with store.upload("u") as writer:
            await writer.resume(0)
            while True:
                await writer.write(os.urandom(4 << 20))

    task = asyncio.ensure_future(upload_forever())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The file was closed only after the thread finished with it: a new request finds the
    # upload intact up to what it acknowledges (nothing) and carries on.
    async with store.upload("u") as writer:
        await writer.resume(0)
        await writer.write(b"fresh")
        assert await writer.digest("sha256") == Digest.of(b"fresh")
