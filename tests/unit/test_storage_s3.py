"""The S3 blob store against moto in server mode, over real HTTP (tests.backing.S3).

Each "request" below is what UploadService does: hold the upload, `resume` from the saved
size and state, write, `flush`, save (size, state). A new S3BlobStore object stands for
another instance (nothing cached in memory)."""

from __future__ import annotations

import asyncio
import hashlib
import random
import tracemalloc
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import boto3
import httpx
import pytest

from portside import wiring
from portside.config import load_settings
from portside.coord.locks import LocalLocks
from portside.http.v2.blobs import RangeNotSatisfiable, byte_range
from portside.oci.digest import Digest
from portside.storage import s3 as s3_module
from portside.storage.driver import UploadLost, UploadSealed
from portside.storage.s3 import S3BlobStore, S3Config
from tests.backing import S3, S3_ENV

MiB = 1024 * 1024
PART = 5 * MiB

Saved = tuple[int, bytes | None]


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    with pytest.MonkeyPatch.context() as env:
        for name, value in S3_ENV.items():
            env.setenv(name, value)
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        server = S3(tmp_path_factory.mktemp("moto")).start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture
def bucket(s3: S3) -> str:
    return s3.create_bucket()


@pytest.fixture
def raw(s3: S3):
    """A plain boto3 client, to look at the bucket behind the store's back."""
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
    )


@pytest.fixture
async def new_store(s3: S3, bucket: str, tmp_path: Path) -> AsyncIterator[Callable[..., S3BlobStore]]:
    """Makes store objects on one bucket (one per simulated instance), closed at the end."""
    made: list[S3BlobStore] = []

    def make(**options: object) -> S3BlobStore:
        config = S3Config(bucket, "reg", endpoint_url=s3.endpoint, path_style=True, part_size=PART, **options)
        store = S3BlobStore(config, LocalLocks(tmp_path / "locks"))
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()


@pytest.fixture
async def store(new_store: Callable[..., S3BlobStore]) -> S3BlobStore:
    store = new_store()
    await store.open()
    return store


def blob(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def pieces(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def request(store: S3BlobStore, upload_id: str, saved: Saved, chunks: list[bytes]) -> Saved:
    async with store.upload(upload_id) as writer:
        await writer.resume(*saved)
        for chunk in chunks:
            await writer.write(chunk)
        await writer.flush()
        return writer.size, writer.state


async def finish(store: S3BlobStore, upload_id: str, saved: Saved, last: bytes = b"", algorithm: str = "sha256"):
    async with store.upload(upload_id) as writer:
        await writer.resume(*saved)
        await writer.write(last)
        digest = await writer.digest(algorithm)
        await writer.commit(digest)
        return digest


async def read_all(store: S3BlobStore, digest: Digest, start: int = 0, end: int | None = None) -> bytes:
    return b"".join([chunk async for chunk in store.read(digest, start, end)])


def keys(raw, bucket: str, prefix: str = "reg/") -> list[str]:
    return [o["Key"] for o in raw.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def multipart_uploads(raw, bucket: str) -> list[str]:
    return [u["Key"] for u in raw.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]


# --- configuration -------------------------------------------------------------------------


def test_config_from_url():
    config = S3Config.from_url("s3://images/registry/v1/", region="eu-west-1", part_size=8 * MiB)
    assert (config.bucket, config.prefix, config.region, config.part_size) == (
        "images",
        "registry/v1",
        "eu-west-1",
        8 * MiB,
    )
    assert S3Config.from_url("s3://images").prefix == ""
    for url in ("file:///tmp", "s3:///prefix"):
        with pytest.raises(ValueError):
            S3Config.from_url(url)
    with pytest.raises(ValueError, match="part size"):
        S3Config("b", part_size=MiB)
    with pytest.raises(ValueError, match="encryption"):
        S3Config("b", sse="rot13")
    with pytest.raises(ValueError, match="KMS"):
        S3Config("b", sse="AES256", kms_key_id="k")


async def test_check_reaches_the_bucket(store: S3BlobStore, s3: S3, tmp_path: Path):
    await store.check()
    missing = S3BlobStore(S3Config("no-such-bucket", endpoint_url=s3.endpoint, path_style=True), LocalLocks(tmp_path))
    try:
        with pytest.raises(OSError, match="no-such-bucket"):
            await missing.check()
    finally:
        await missing.close()


# --- uploads -------------------------------------------------------------------------------


async def test_a_small_monolithic_blob_is_one_put(store: S3BlobStore, raw, bucket: str):
    data = b"small blob"
    digest = await finish(store, "mono", (0, None), data)
    assert digest == Digest.of(data)
    assert keys(raw, bucket) == [f"reg/blobs/sha256/{digest.hex[:2]}/{digest.hex}"]
    assert multipart_uploads(raw, bucket) == []
    assert await read_all(store, digest) == data
    assert await store.size(digest) == len(data)
    assert await store.size(Digest.of(b"other")) is None
    assert store.local_path(digest) is None
    await store.discard_upload("mono")


async def test_an_empty_blob(store: S3BlobStore):
    digest = await finish(store, "empty", (0, None))
    assert digest == Digest.of(b"")
    assert await store.size(digest) == 0 and await read_all(store, digest) == b""


@pytest.mark.parametrize("chunk", [2 * MiB + 3, PART, 7 * MiB + 1])
async def test_chunked_upload_across_instances(new_store, raw, bucket: str, chunk: int):
    """Every chunk is a request to a different instance; parts, tails and hash carry over."""
    data = blob(10 * MiB + 5, seed=chunk)
    saved: Saved = (0, None)
    for part in pieces(data, chunk):
        # Each request streams its chunk in small writes, as an HTTP body arrives.
        saved = await request(new_store(), "up", saved, pieces(part, 64 * 1024 + 7))
        assert saved[0] and saved[1] is not None
    assert saved[0] == len(data)
    digest = await finish(new_store(), "up", saved)
    assert digest == Digest.of(data)
    store = new_store()
    assert await read_all(store, digest) == data
    # Superseded tails went as soon as a later request resumed from the state replacing them.
    tails = [k for k in keys(raw, bucket, "reg/uploads/") if "/tail." in k]
    assert len(tails) <= 2
    await store.discard_upload("up")
    assert keys(raw, bucket, "reg/uploads/") == [] and multipart_uploads(raw, bucket) == []


async def test_sha512_digests_are_read_back(new_store):
    small, large = blob(1000, 1), blob(PART + 100, 2)
    assert await finish(new_store(), "s", (0, None), small, "sha512") == Digest.of(small, "sha512")
    saved = await request(new_store(), "l", (0, None), [large[: PART + 1]])
    digest = await finish(new_store(), "l", saved, large[PART + 1 :], "sha512")
    assert digest == Digest.of(large, "sha512")
    assert await read_all(new_store(), digest) == large


async def test_a_request_that_failed_half_way_is_ignored(new_store, raw, bucket: str):
    data = blob(9 * MiB, 3)
    store = new_store()
    saved = await request(store, "u", (0, None), [data[: 2 * MiB]])
    # This request uploads a part, flushes a tail, then dies before the database saves
    # what it acknowledged: the part and the tail it left are not in any saved state.
    with pytest.raises(RuntimeError):
        async with store.upload("u") as writer:
            await writer.resume(*saved)
            await writer.write(blob(6 * MiB, 99))
            await writer.flush()
            raise RuntimeError("the database write failed")
    # The client sends the chunk again (other bytes, to prove the old ones are not used).
    saved = await request(new_store(), "u", saved, [data[2 * MiB : 8 * MiB]])
    digest = await finish(new_store(), "u", saved, data[8 * MiB :])
    assert digest == Digest.of(data)
    assert await read_all(new_store(), digest) == data
    await new_store().discard_upload("u")
    assert keys(raw, bucket, "reg/uploads/") == [] and multipart_uploads(raw, bucket) == []


async def test_a_multipart_upload_started_by_a_failed_request_is_listed_and_aborted(store, raw, bucket: str):
    with pytest.raises(RuntimeError):
        async with store.upload("orphan") as writer:
            await writer.resume(0, None)
            await writer.write(blob(PART + 1))
            await writer.flush()
            raise RuntimeError("died")
    assert [u.upload_id async for u in store.list_uploads()] == ["orphan"]
    assert len(multipart_uploads(raw, bucket)) == 1
    await store.discard_upload("orphan")
    assert multipart_uploads(raw, bucket) == [] and keys(raw, bucket) == []
    assert [u async for u in store.list_uploads()] == []


async def test_unusable_states_lose_the_upload(new_store):
    saved = await request(new_store(), "u", (0, None), [b"abc"])
    store = new_store()
    for size, state in [(3, None), (4, saved[1]), (3, b"{not json"), (3, saved[1].replace(b'"v":1', b'"v":9'))]:
        with pytest.raises(UploadLost):
            async with store.upload("u") as writer:
                await writer.resume(size, state)
    await store.discard_upload("u")  # the tail is gone now
    with pytest.raises(UploadLost):
        async with store.upload("u") as writer:
            await writer.resume(*saved)
            await writer.write(b"more")


async def test_a_sealed_upload_is_committed_again_after_a_crash(new_store, raw, bucket: str, monkeypatch):
    data = blob(PART + 2 * MiB, 4)
    saved = await request(new_store(), "u", (0, None), [data[: PART + MiB]])

    # The completion sends its last chunk and seals, then dies before completing.
    async def crash(self) -> None:
        raise ConnectionError("instance died")

    with monkeypatch.context() as patch:
        patch.setattr(s3_module._S3Writer, "_complete", crash)
        with pytest.raises(ConnectionError):
            await finish(new_store(), "u", saved, data[PART + MiB :])

    # The client repeats its PUT elsewhere: the bytes are final, the commit goes through.
    store = new_store()
    async with store.upload("u") as writer:
        await writer.resume(*saved)
        assert writer.sealed and writer.size == len(data)
        with pytest.raises(UploadSealed):
            await writer.write(b"x")
        digest = await writer.digest("sha256")
        assert digest == Digest.of(data)
        assert await writer.digest("sha512") == Digest.of(data, "sha512")
        await writer.commit(digest)
    assert await read_all(store, digest) == data

    # Published, then the database write is lost: a retry finds it sealed and done.
    async with new_store().upload("u") as writer:
        await writer.resume(*saved)
        assert writer.sealed
        await writer.commit(digest)
    await store.discard_upload("u")
    assert keys(raw, bucket) == [f"reg/blobs/sha256/{digest.hex[:2]}/{digest.hex}"]


async def test_committing_existing_content_keeps_the_first_copy(store: S3BlobStore, raw, bucket: str):
    data = blob(PART + 10, 5)
    first = await finish(store, "a", (0, None), data)
    key = store.blob_key(first)
    before = raw.head_object(Bucket=bucket, Key=key)["LastModified"]
    saved = await request(store, "b", (0, None), [data])
    assert await finish(store, "b", saved) == first
    assert raw.head_object(Bucket=bucket, Key=key)["LastModified"] == before
    for upload_id in ("a", "b"):
        await store.discard_upload(upload_id)
    assert keys(raw, bucket) == [key] and multipart_uploads(raw, bucket) == []


async def test_large_copies_are_multipart_copies(store: S3BlobStore, monkeypatch):
    monkeypatch.setattr(s3_module, "_SINGLE_COPY_MAX", PART)
    monkeypatch.setattr(s3_module, "_COPY_PART", PART)
    data = blob(2 * PART + 123, 6)
    saved = await request(store, "big", (0, None), [data])
    digest = await finish(store, "big", saved)
    assert await read_all(store, digest) == data
    await store.quarantine(digest)
    assert await store.size(digest) is None


async def test_streaming_40_mib_keeps_memory_bounded(store: S3BlobStore):
    rng = random.Random(8)
    expected = hashlib.sha256()
    tracemalloc.start()
    try:
        async with store.upload("stream") as writer:
            await writer.resume(0, None)
            for _ in range(40 * 16):  # 40 MiB in 64 KiB chunks, made as they are sent
                chunk = rng.randbytes(64 * 1024)
                expected.update(chunk)
                await writer.write(chunk)
            digest = await writer.digest("sha256")
            await writer.commit(digest)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert digest.hex == expected.hexdigest()
    assert await store.size(digest) == 40 * MiB
    # One part filling while the one before it is sent, and a copy joining it: never the layer.
    assert peak < 4 * PART, f"peak {peak / MiB:.1f} MiB"


async def test_server_side_encryption_is_requested(new_store, raw, bucket: str):
    store = new_store(sse="AES256")
    small = await finish(store, "s", (0, None), b"secret")
    saved = await request(store, "l", (0, None), [blob(PART + 1, 9)])
    large = await finish(store, "l", saved)
    for digest in (small, large):
        head = raw.head_object(Bucket=bucket, Key=store.blob_key(digest))
        assert head["ServerSideEncryption"] == "AES256"
    saved = await request(store, "t", (0, None), [b"tail bytes"])
    tail = next(k for k in keys(raw, bucket, "reg/uploads/t/") if "/tail." in k)
    assert raw.head_object(Bucket=bucket, Key=tail)["ServerSideEncryption"] == "AES256"


async def test_storage_class_applies_to_published_content(new_store, raw, bucket: str):
    store = new_store(storage_class="STANDARD_IA")
    digest = await finish(store, "u", (0, None), b"cold")
    assert raw.head_object(Bucket=bucket, Key=store.blob_key(digest))["StorageClass"] == "STANDARD_IA"


# --- reading, listing, scrub ---------------------------------------------------------------


async def test_ranged_reads(store: S3BlobStore):
    data = blob(3 * MiB + 17, 10)
    digest = await finish(store, "r", (0, None), data)
    for start, end in [(0, None), (0, 1), (5, 10), (MiB, 2 * MiB + 1), (len(data) - 1, None), (7, 7)]:
        assert await read_all(store, digest, start, end) == data[start:end]
    with pytest.raises(FileNotFoundError):
        await read_all(store, Digest.of(b"absent"))


async def test_presigned_urls(new_store):
    store = new_store(redirect=True, presign_ttl=60)
    data = blob(1000, 11)
    digest = await finish(store, "p", (0, None), data)
    url = await store.redirect_url(digest)
    assert url is not None and "X-Amz-Signature" in url
    async with httpx.AsyncClient() as client:
        got = await client.get(url)
        assert got.status_code == 200 and got.content == data
        ranged = await client.get(url, headers={"Range": "bytes=10-19"})
        assert ranged.status_code == 206 and ranged.content == data[10:20]
    assert await new_store().redirect_url(digest) is None


async def test_list_quarantine_delete(store: S3BlobStore, raw, bucket: str):
    blobs = {await finish(store, f"b{i}", (0, None), blob(100 + i, i)) for i in range(3)}
    listed = {b.digest: b.size async for b in store.list_blobs()}
    assert set(listed) == blobs and sorted(listed.values()) == [100, 101, 102]
    await request(store, "open", (0, None), [b"partial"])
    assert sorted([u.upload_id async for u in store.list_uploads()]) == ["open"]
    victim, gone, *_ = sorted(blobs, key=str)
    await store.quarantine(victim)
    await store.quarantine(victim)  # nothing left to move: no error
    assert await store.size(victim) is None
    assert f"reg/quarantine/sha256/{victim.hex}" in keys(raw, bucket)
    await store.delete(gone)
    assert {b.digest async for b in store.list_blobs()} == blobs - {victim, gone}


async def test_concurrent_requests_on_one_upload_take_turns(new_store):
    """The upload's lock spans instances (here: two store objects sharing LocalLocks)."""
    saved = await request(new_store(), "u", (0, None), [b"a"])
    order: list[str] = []

    async def hold(store: S3BlobStore, name: str) -> None:
        async with store.upload("u") as writer:
            order.append(f"{name}+")
            await writer.resume(*saved)
            await asyncio.sleep(0.05)
            order.append(f"{name}-")

    await asyncio.gather(hold(new_store(), "x"), hold(new_store(), "y"))
    assert order in (["x+", "x-", "y+", "y-"], ["y+", "y-", "x+", "x-"])


# --- served over HTTP ----------------------------------------------------------------------


def test_byte_range_parsing():
    assert byte_range("bytes=0-9", 100) == (0, 10)
    assert byte_range("bytes=90-", 100) == (90, 100)
    assert byte_range("bytes=90-500", 100) == (90, 100)
    assert byte_range("bytes=-10", 100) == (90, 100)
    assert byte_range("bytes=-500", 100) == (0, 100)
    assert byte_range("Bytes = 5 - 5", 100) == (5, 6)
    for ignored in ("items=0-1", "bytes=0-1,5-6", "bytes=9-3", "bytes=-", "bytes=a-b", "bytes=0-²", "0-1"):
        assert byte_range(ignored, 100) is None, ignored
    for unsatisfiable, size in (("bytes=100-", 100), ("bytes=-0", 100), ("bytes=0-", 0), ("bytes=-3", 0)):
        with pytest.raises(RangeNotSatisfiable):
            byte_range(unsatisfiable, size)


@asynccontextmanager
async def running(app) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan (so the store's client is closed at the end)."""
    queue: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    sent: list[dict[str, str]] = []

    async def receive() -> dict[str, str]:
        return await queue.get()

    async def send(message: dict[str, str]) -> None:
        sent.append(message)

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send))
    await queue.put({"type": "lifespan.startup"})
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://r") as client:
            yield client
    finally:
        await queue.put({"type": "lifespan.shutdown"})
        await task


@pytest.mark.parametrize("redirect", [False, True])
async def test_blob_get_over_s3(tmp_path: Path, s3: S3, bucket: str, redirect: bool):
    settings = load_settings(
        data_dir=tmp_path,
        log_requests=False,
        open_registry=True,
        storage_url=f"s3://{bucket}/http",
        s3_endpoint_url=s3.endpoint,
        s3_path_style=True,
        s3_part_size_mib=5,
        s3_redirect=redirect,
    )
    await wiring.upgrade_database(settings)
    data = blob(PART + 1234, 12)
    digest = str(Digest.of(data))
    path = f"/v2/s3/blob/blobs/{digest}"
    async with running(wiring.build(settings)) as client:
        pushed = await client.post(f"/v2/s3/blob/blobs/uploads/?digest={digest}", content=data)
        assert pushed.status_code == 201, pushed.text
        head = await client.head(path)
        assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
        got = await client.get(path)
        if redirect:
            assert got.status_code == 307 and got.headers["docker-content-digest"] == digest
            async with httpx.AsyncClient() as outside:
                fetched = await outside.get(got.headers["location"])
            assert fetched.content == data
            return
        assert got.status_code == 200 and got.content == data
        part = await client.get(path, headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == data[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(data)}"
        assert part.headers["content-length"] == "100"
        tail = await client.get(path, headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == data[-10:]
        ranged_head = await client.head(path, headers={"Range": "bytes=0-0"})
        assert ranged_head.status_code == 206 and ranged_head.headers["content-length"] == "1"
        beyond = await client.get(path, headers={"Range": f"bytes={len(data)}-"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
        stale = await client.get(path, headers={"Range": "bytes=0-9", "If-Range": '"sha256:other"'})
        assert stale.status_code == 200 and stale.content == data
        several = await client.get(path, headers={"Range": "bytes=0-1,4-5"})
        assert several.status_code == 200 and len(several.content) == len(data)
