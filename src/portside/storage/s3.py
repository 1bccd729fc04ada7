"""The blob store on an S3-compatible object store (AWS S3, MinIO, Ceph RGW).

Only the standard S3 API is used. Layout under `<prefix>/` in the bucket::

    blobs/<algorithm>/<first two hex digits>/<hex>   published content, never changed
    uploads/<upload id>/tail.<size>                  the bytes after the last part, up to <size>
    uploads/<upload id>/data                         the multipart upload's object, once completed
    uploads/<upload id>/sealed                       written just before completing (see below)
    quarantine/<algorithm>/<hex>                     content scrub took out of service

An upload streams into an S3 multipart upload (key `uploads/<id>/data`) in parts of
`part_size` bytes: one part fills while the one before it is sent, so memory holds a few
parts at most, whatever the layer's size, and nothing is written to local disk. What is
left after the last full part when a request ends is saved as a small `tail.<size>`
object (below S3's 5 MiB minimum part size, or it becomes a part itself); the next
request reads it back and continues. Bytes are hashed
as they arrive, and the running SHA-256 (see `hashstate`) travels in the writer's state,
because parts of an unfinished multipart upload cannot be read back.

Writer state (compact JSON, saved by the caller with the acknowledged size)::

    {"v": 1, "mp": multipart upload id | null, "parts": [[number, etag, size], ...],
     "tail": "tail.<size>" | null, "stale": [superseded tail names], "size": N,
     "hash": base64 of the exported SHA-256 state}

A request that fails half-way may leave parts, tails or a whole multipart upload that no
saved state names: the next request continues from the saved state, uploads the same part
numbers again (replacing what was there) and names its tails by the size they end at.
Tails a saved state superseded are deleted when a request resumes from that state (it is
certain then that the database holds it); everything else goes with `discard_upload`.

Publishing: S3 has no rename, and a multipart upload's key is fixed when it starts,
before the digest is known. So completion writes `sealed` (size, SHA-256 and the final
part list), completes the multipart upload into `uploads/<id>/data`, and copies that to
the blob's key server-side (multipart copy above `_SINGLE_COPY_MAX`). From `sealed` on,
the upload is sealed: its bytes can be committed again after a crash, never changed.
A blob smaller than one part never becomes a multipart upload: it is one PutObject (or a
server-side copy of its tail) straight to its key.

The client is created on first use; `open()` creates it ahead (to fail fast on bad
settings) and `close()` closes it. Credentials come from the standard AWS chain
(environment, shared files, instance or task roles) and are never logged.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from portside.coord.locks import Locks
from portside.errors import DigestInvalid
from portside.oci.digest import Digest
from portside.storage.driver import BlobWriter, StagedUpload, StoredBlob, UploadLost, UploadSealed
from portside.storage.hashstate import HashStateInvalid, ResumableHash

__all__ = ["S3BlobStore", "S3Config"]

MiB = 1024 * 1024
GiB = 1024 * MiB
# S3's limits: every part but the last is at least 5 MiB, at most 5 GiB; 10,000 parts.
_MIN_PART = 5 * MiB
_MAX_PART = 5 * GiB
_MAX_PARTS = 10_000
# Larger objects are copied as a multipart copy, in parallel parts (a single CopyObject is
# limited to 5 GiB, and one long request is slower and more fragile than several).
_SINGLE_COPY_MAX = 256 * MiB
_COPY_PART = 256 * MiB
_COPY_CONCURRENCY = 8
_READ_CHUNK = 1024 * 1024
_HASH_BATCH = 8 * MiB
_STATE_VERSION = 1
_SSE = (None, "AES256", "aws:kms")
_MISSING = {"404", "NoSuchKey", "NotFound"}


@dataclass(frozen=True, slots=True)
class S3Config:
    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None  # MinIO, Ceph RGW, ...; None: AWS
    region: str | None = None  # None: from the standard AWS configuration
    path_style: bool = False
    sse: str | None = None  # "AES256" or "aws:kms"
    kms_key_id: str | None = None
    storage_class: str | None = None  # of published content; None: the bucket's default
    part_size: int = 16 * MiB
    redirect: bool = False  # answer blob GETs with a presigned URL
    presign_ttl: int = 1200  # seconds

    def __post_init__(self) -> None:
        if not self.bucket:
            raise ValueError("an S3 bucket name is needed")
        if self.sse not in _SSE:
            raise ValueError(f"server-side encryption must be AES256 or aws:kms, not {self.sse!r}")
        if self.kms_key_id and self.sse != "aws:kms":
            raise ValueError("a KMS key id needs server-side encryption aws:kms")
        if not _MIN_PART <= self.part_size <= _MAX_PART:
            raise ValueError(f"part size must be within 5 MiB and 5 GiB, not {self.part_size}")
        if not 1 <= self.presign_ttl <= 7 * 86400:
            raise ValueError("presigned URLs live between one second and seven days")
        object.__setattr__(self, "prefix", self.prefix.strip("/"))

    @classmethod
    def from_url(cls, url: str, **options: Any) -> S3Config:
        """`s3://bucket/prefix`, plus any of the other fields as keywords."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"expected s3://BUCKET/PREFIX, not {url!r}")
        return cls(bucket=parts.netloc, prefix=parts.path, **options)


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _missing(exc: Exception) -> bool:
    return _code(exc) in _MISSING


def _md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()


@dataclass(frozen=True, slots=True)
class _Part:
    number: int
    etag: str
    size: int


class S3BlobStore:
    name = "s3"

    def __init__(self, config: S3Config, locks: Locks):
        self.config = config
        self._locks = locks
        self._client: Any = None
        self._exit = AsyncExitStack()
        self._opening = asyncio.Lock()

    # --- the client ---------------------------------------------------------------------

    async def open(self) -> None:
        """Create the S3 client now rather than on first use."""
        await self.client()

    async def client(self) -> Any:
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    self._client = await self._exit.enter_async_context(self._create_client())
        return self._client

    def _create_client(self) -> Any:
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path" if self.config.path_style else "auto"},
            retries={"max_attempts": 5, "mode": "standard"},
            # Every blob streamed through Portside holds a connection while it is sent.
            max_pool_connections=256,
            # A request that gets no answer is abandoned and retried (every request here is
            # idempotent, or its retry is handled: a completed upload is sealed first).
            # Server-side copies are cut into parts of at most 256 MiB so that none of them
            # needs longer, even on slow S3-compatible stores.
            connect_timeout=10,
            read_timeout=60,
            # Only the checksums S3 requires: the newer default (trailing CRC checksums in
            # aws-chunked bodies) is not understood by every S3-compatible store. Parts and
            # objects are sent with Content-MD5 instead, which every one of them verifies.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        return get_session().create_client(
            "s3", region_name=self.config.region, endpoint_url=self.config.endpoint_url, config=config
        )

    async def close(self) -> None:
        await self._exit.aclose()
        self._client = None
        self._exit = AsyncExitStack()

    # --- keys ---------------------------------------------------------------------------

    def _key(self, path: str) -> str:
        return f"{self.config.prefix}/{path}" if self.config.prefix else path

    def blob_key(self, digest: Digest) -> str:
        return self._key(f"blobs/{digest.algorithm}/{digest.hex[:2]}/{digest.hex}")

    def upload_key(self, upload_id: str, name: str = "") -> str:
        return self._key(f"uploads/{upload_id}/{name}")

    def _encryption(self) -> dict[str, str]:
        args = {}
        if self.config.sse:
            args["ServerSideEncryption"] = self.config.sse
        if self.config.kms_key_id:
            args["SSEKMSKeyId"] = self.config.kms_key_id
        return args

    def _published(self) -> dict[str, str]:
        """Arguments of writes to published content: encryption and storage class. Staging
        objects get encryption only: they are short-lived and must stay readable, which an
        archival class (or the minimum storage charge of an infrequent-access one) spoils."""
        args = self._encryption()
        if self.config.storage_class:
            args["StorageClass"] = self.config.storage_class
        return args

    # --- objects ------------------------------------------------------------------------

    async def _head(self, key: str) -> dict[str, Any] | None:
        client = await self.client()
        try:
            head: dict[str, Any] = await client.head_object(Bucket=self.config.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return head

    async def _get(self, key: str) -> bytes | None:
        client = await self.client()
        try:
            response = await client.get_object(Bucket=self.config.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        async with response["Body"] as body:
            data: bytes = await body.read()
        return data

    async def _put(self, key: str, data: bytes, extra: dict[str, str]) -> None:
        client = await self.client()
        md5 = await anyio.to_thread.run_sync(_md5, data) if len(data) > _READ_CHUNK else _md5(data)
        await client.put_object(Bucket=self.config.bucket, Key=key, Body=data, ContentMD5=md5, **extra)

    async def _delete_keys(self, keys: list[str]) -> None:
        client = await self.client()
        # One DeleteObject each: DeleteObjects needs a checksum header that not every
        # S3-compatible store accepts in the form newer SDKs send.
        await asyncio.gather(*(client.delete_object(Bucket=self.config.bucket, Key=key) for key in keys))

    async def _stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if end is not None and end <= start:
            return
        client = await self.client()
        args: dict[str, Any] = {"Bucket": self.config.bucket, "Key": key}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end - 1}"
        try:
            response = await client.get_object(**args)
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(f"{key} is missing from bucket {self.config.bucket}") from None
            raise
        async with response["Body"] as body:
            async for chunk in body.iter_chunks(_READ_CHUNK):
                yield chunk

    async def _hash_object(self, key: str, algorithm: str) -> str:
        """Hash an object by reading it back (only for digests other than SHA-256)."""
        hasher = hashlib.new(algorithm)
        batch: list[bytes] = []
        batched = 0
        async for chunk in self._stream(key):
            batch.append(chunk)
            batched += len(chunk)
            if batched >= _HASH_BATCH:
                await anyio.to_thread.run_sync(hasher.update, b"".join(batch))
                batch, batched = [], 0
        await anyio.to_thread.run_sync(hasher.update, b"".join(batch))
        return hasher.hexdigest()

    async def _copy(self, source: str, dest: str, size: int) -> None:
        """A server-side copy of `source` (of `size` bytes) to `dest`, as published content."""
        client = await self.client()
        bucket = self.config.bucket
        copy_source = {"Bucket": bucket, "Key": source}
        if size <= _SINGLE_COPY_MAX:
            await client.copy_object(Bucket=bucket, Key=dest, CopySource=copy_source, **self._published())
            return
        part_size = max(_COPY_PART, -(-size // _MAX_PARTS))
        created = await client.create_multipart_upload(Bucket=bucket, Key=dest, **self._published())
        upload_id = created["UploadId"]
        limit = asyncio.Semaphore(_COPY_CONCURRENCY)

        async def copy_part(number: int, first: int) -> dict[str, Any]:
            last = min(first + part_size, size) - 1
            async with limit:
                copied = await client.upload_part_copy(
                    Bucket=bucket,
                    Key=dest,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource=copy_source,
                    CopySourceRange=f"bytes={first}-{last}",
                )
            return {"PartNumber": number, "ETag": copied["CopyPartResult"]["ETag"]}

        try:
            parts = await asyncio.gather(
                *(copy_part(n, first) for n, first in enumerate(range(0, size, part_size), start=1))
            )
            await client.complete_multipart_upload(
                Bucket=bucket, Key=dest, UploadId=upload_id, MultipartUpload={"Parts": list(parts)}
            )
        except BaseException:
            with suppress(Exception):
                await client.abort_multipart_upload(Bucket=bucket, Key=dest, UploadId=upload_id)
            raise

    # --- BlobStore ----------------------------------------------------------------------

    async def size(self, digest: Digest) -> int | None:
        head = await self._head(self.blob_key(digest))
        return None if head is None else int(head["ContentLength"])

    def local_path(self, digest: Digest) -> Path | None:
        return None

    def read(self, digest: Digest, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self._stream(self.blob_key(digest), start, end)

    async def delete(self, digest: Digest) -> None:
        await self._delete_keys([self.blob_key(digest)])

    async def redirect_url(self, digest: Digest) -> str | None:
        if not self.config.redirect:
            return None
        client = await self.client()
        url: str = await client.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.config.bucket, "Key": self.blob_key(digest)},
            ExpiresIn=self.config.presign_ttl,
        )
        return url

    async def _list(self, prefix: str) -> AsyncIterator[dict[str, Any]]:
        client = await self.client()
        paginator = client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.config.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield item

    async def list_blobs(self) -> AsyncIterator[StoredBlob]:
        prefix = self._key("blobs/")
        async for item in self._list(prefix):
            names = item["Key"][len(prefix) :].split("/")
            if len(names) != 3:
                continue
            algorithm, fan, hexpart = names
            try:
                digest = Digest.parse(f"{algorithm}:{hexpart}")
            except DigestInvalid:
                continue
            if fan == digest.hex[:2]:
                yield StoredBlob(digest, int(item["Size"]), item["LastModified"].astimezone(UTC))

    async def list_uploads(self) -> AsyncIterator[StagedUpload]:
        """Uploads with staged objects or an unfinished multipart upload (including ones a
        failed request started and no state names: `discard_upload` aborts those too);
        `modified` is the latest object's or multipart upload's start, whichever is later."""
        prefix = self._key("uploads/")
        client = await self.client()
        started: dict[str, datetime] = {}
        paginator = client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.config.bucket, Prefix=prefix):
            for item in page.get("Uploads", []):
                upload_id = item["Key"][len(prefix) :].partition("/")[0]
                when = item["Initiated"].astimezone(UTC)
                started[upload_id] = max(when, started.get(upload_id, when))
        current: str | None = None
        latest: datetime | None = None
        async for item in self._list(prefix):
            upload_id = item["Key"][len(prefix) :].partition("/")[0]
            if upload_id != current:
                if current is not None and latest is not None:
                    yield StagedUpload(current, max(latest, started.pop(current, latest)))
                current, latest = upload_id, None
            modified = item["LastModified"].astimezone(UTC)
            latest = modified if latest is None else max(latest, modified)
        if current is not None and latest is not None:
            yield StagedUpload(current, max(latest, started.pop(current, latest)))
        for upload_id, when in started.items():
            yield StagedUpload(upload_id, when)

    async def quarantine(self, digest: Digest) -> None:
        key = self.blob_key(digest)
        head = await self._head(key)
        if head is None:
            return
        dest = self._key(f"quarantine/{digest.algorithm}/{digest.hex}")
        await self._copy(key, dest, int(head["ContentLength"]))
        await self._delete_keys([key])

    @asynccontextmanager
    async def upload(self, upload_id: str) -> AsyncIterator[BlobWriter]:
        async with self._locks.hold(f"upload:{upload_id}"):
            writer = _S3Writer(self, upload_id)
            try:
                yield writer
            finally:
                await writer.settle(cancel=True)

    async def discard_upload(self, upload_id: str) -> None:
        client = await self.client()
        prefix = self.upload_key(upload_id)
        paginator = client.get_paginator("list_multipart_uploads")
        async for page in paginator.paginate(Bucket=self.config.bucket, Prefix=prefix):
            for item in page.get("Uploads", []):
                try:
                    await client.abort_multipart_upload(
                        Bucket=self.config.bucket, Key=item["Key"], UploadId=item["UploadId"]
                    )
                except ClientError as exc:
                    if _code(exc) != "NoSuchUpload":
                        raise
        keys = [item["Key"] async for item in self._list(prefix)]
        await self._delete_keys(keys)

    async def ensure_space(self) -> None:
        return None  # a bucket has no free space to run out of

    async def check(self) -> None:
        client = await self.client()
        try:
            await client.head_bucket(Bucket=self.config.bucket)
        except ClientError as exc:
            raise OSError(f"S3 bucket {self.config.bucket} cannot be used: {_code(exc) or exc}") from exc


@dataclass(frozen=True, slots=True)
class _Seal:
    """What `uploads/<id>/sealed` records: enough to finish publishing after a crash."""

    size: int
    sha256: str
    multipart: str
    parts: list[_Part]

    def encode(self) -> bytes:
        parts = [[p.number, p.etag, p.size] for p in self.parts]
        return json.dumps(
            {"v": 1, "size": self.size, "sha256": self.sha256, "mp": self.multipart, "parts": parts},
            separators=(",", ":"),
        ).encode()

    @classmethod
    def decode(cls, data: bytes) -> _Seal:
        try:
            doc = json.loads(data)
            return cls(
                int(doc["size"]),
                str(doc["sha256"]),
                str(doc["mp"]),
                [_Part(int(n), str(e), int(s)) for n, e, s in doc["parts"]],
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise UploadLost("an upload's seal record is unreadable") from exc


class _S3Writer:
    """One request's hold on an upload.

    Byte ranges: parts (acknowledged or uploaded by this request) hold [0, parts_end); when
    `_tail` is set, that object holds [parts_end, durable); `_buffer` holds
    [parts_end, size) once the tail has been read back (`_loaded`), else nothing, and the
    running hash covers [0, hash.size). At most one part upload runs at a time
    (`_inflight`), while the next part fills the buffer."""

    def __init__(self, store: S3BlobStore, upload_id: str):
        self._store = store
        self._id = upload_id
        self._size = -1
        self._durable = 0
        self._multipart: str | None = None
        self._parts: list[_Part] = []
        self._parts_end = 0
        self._next_part = 1
        self._tail: str | None = None
        self._stale: list[str] = []
        self._loaded = True
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._hash = ResumableHash()
        self._inflight: asyncio.Task[None] | None = None
        self._seal: _Seal | None = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def sealed(self) -> bool:
        return self._seal is not None

    @property
    def state(self) -> bytes | None:
        if self._seal is not None or self._inflight is not None or self._durable != self._size:
            return None  # not flushed: nothing that could be saved with this size
        doc = {
            "v": _STATE_VERSION,
            "mp": self._multipart,
            "parts": [[p.number, p.etag, p.size] for p in self._parts],
            "tail": self._tail,
            "stale": self._stale,
            "size": self._size,
            "hash": base64.b64encode(self._hash.export()).decode(),
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    async def resume(self, size: int, state: bytes | None) -> None:
        store = self._store
        sealed = await store._get(store.upload_key(self._id, "sealed"))
        if sealed is not None:
            self._seal = _Seal.decode(sealed)
            self._size = self._durable = self._seal.size
            return
        if state is None:
            if size:
                raise UploadLost(f"upload {self._id} has {size} bytes but no saved state")
            self._size = 0
            return
        try:
            doc = json.loads(state)
            if doc.get("v") != _STATE_VERSION:
                raise ValueError(f"state version {doc.get('v')}")
            parts = [_Part(int(n), str(e), int(s)) for n, e, s in doc["parts"]]
            tail, stale, saved = doc["tail"], [str(t) for t in doc["stale"]], int(doc["size"])
            hasher = ResumableHash.restore(base64.b64decode(doc["hash"]))
            multipart = doc["mp"]
        except (ValueError, KeyError, TypeError, HashStateInvalid) as exc:
            raise UploadLost(f"upload {self._id} has a state that cannot be continued: {exc}") from exc
        parts_end = sum(p.size for p in parts)
        if saved != size or hasher.size != size or parts_end > size or (tail is None and parts_end != size):
            raise UploadLost(f"upload {self._id} has a state that disagrees with its {size} bytes")
        self._multipart = None if multipart is None else str(multipart)
        self._parts, self._parts_end, self._next_part = parts, parts_end, len(parts) + 1
        self._tail = None if tail is None else str(tail)
        self._loaded = self._tail is None
        self._hash, self._size, self._durable = hasher, size, size
        if stale:
            # The database holds this state, so the tails it replaced are garbage now.
            with suppress(ClientError, BotoCoreError):
                await store._delete_keys([store.upload_key(self._id, name) for name in stale])

    async def write(self, data: bytes) -> None:
        if self._seal is not None:
            raise UploadSealed(f"upload {self._id} was already published")
        if not data:
            return
        if not self._loaded:
            await self._load_tail()
        part_size = self._store.config.part_size
        view = memoryview(data)
        while view:
            room = part_size - self._buffered
            piece, view = view[:room], view[room:]
            self._buffer.append(data if len(piece) == len(data) else bytes(piece))
            self._buffered += len(piece)
            self._size += len(piece)
            if self._buffered >= part_size:
                await self._cut_part()

    async def _load_tail(self) -> None:
        assert self._tail is not None
        data = await self._store._get(self._store.upload_key(self._id, self._tail))
        expected = self._durable - self._parts_end
        if data is None or len(data) != expected:
            raise UploadLost(f"upload {self._id} lost the bytes after its last part")
        self._buffer, self._buffered, self._loaded = [data], len(data), True

    def _take_buffer(self) -> bytes:
        body = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        return body

    async def _cut_part(self) -> None:
        """Send the buffer as the next part, in the background while the next one fills."""
        await self.settle()  # one part in flight at a time: bounded memory, ordered hashing
        body = self._take_buffer()
        first = self._parts_end
        self._parts_end += len(body)
        if self._tail is not None:  # its bytes are in this part now
            self._stale.append(self._tail)
            self._tail = None
        number = self._next_part
        self._next_part += 1
        self._inflight = asyncio.create_task(self._send_part(number, body, first))

    async def _send_part(self, number: int, body: bytes, first: int) -> None:
        if number > _MAX_PARTS:
            raise ValueError(
                f"upload {self._id} is larger than {_MAX_PARTS} parts of {self._store.config.part_size} bytes allow"
            )
        md5 = await anyio.to_thread.run_sync(self._hash_and_md5, body, first)
        store = self._store
        client = await store.client()
        if self._multipart is None:
            created = await client.create_multipart_upload(
                Bucket=store.config.bucket, Key=store.upload_key(self._id, "data"), **store._encryption()
            )
            self._multipart = str(created["UploadId"])
        sent = await client.upload_part(
            Bucket=store.config.bucket,
            Key=store.upload_key(self._id, "data"),
            UploadId=self._multipart,
            PartNumber=number,
            Body=body,
            ContentMD5=md5,
        )
        self._parts.append(_Part(number, str(sent["ETag"]), len(body)))

    def _hash_and_md5(self, body: bytes, first: int) -> str:
        """In a worker thread: hash what the running hash lacks, and the part's MD5."""
        self._hash.update(body, self._hash.size - first)
        return _md5(body)

    async def settle(self, cancel: bool = False) -> None:
        """Wait for the part upload in flight (raising its error), or cancel it."""
        task, self._inflight = self._inflight, None
        if task is None:
            return
        if cancel:
            task.cancel()
            with suppress(BaseException):
                await task
            return
        await task

    async def _hash_buffer(self) -> bytes:
        """The buffer as one object, with the running hash brought up to `size`."""
        await self.settle()
        body = self._take_buffer()
        self._buffer, self._buffered = [body], len(body)
        if self._hash.size < self._size:
            await anyio.to_thread.run_sync(self._hash.update, body, self._hash.size - self._parts_end)
        return body

    async def flush(self) -> None:
        if self._seal is not None or self._size == self._durable:
            await self.settle()
            return
        body = await self._hash_buffer()
        store = self._store
        if len(body) >= _MIN_PART:
            await self._cut_part()
            await self.settle()
        else:
            name = f"tail.{self._size}"
            await store._put(store.upload_key(self._id, name), body, store._encryption())
            if self._tail is not None and self._tail != name:
                self._stale.append(self._tail)
            self._tail = name
        self._durable = self._size

    async def digest(self, algorithm: str) -> Digest:
        if self._seal is not None:
            if algorithm == "sha256":
                return Digest("sha256", self._seal.sha256)
            return Digest(algorithm, await self._read_back(algorithm))
        body = await self._hash_buffer()
        if algorithm == "sha256":
            return Digest("sha256", self._hash.hexdigest())
        # Other algorithms are rare. A blob below one part is at hand (its tail is small);
        # a larger one is sealed and completed into its staging object, which is read back.
        if not self._parts:
            if not self._loaded:
                await self._load_tail()
                body = await self._hash_buffer()
            return Digest(algorithm, await anyio.to_thread.run_sync(_hexdigest, algorithm, body))
        await self._seal_upload()
        return Digest(algorithm, await self._read_back(algorithm))

    async def _read_back(self, algorithm: str) -> str:
        await self._complete()
        return await self._store._hash_object(self._store.upload_key(self._id, "data"), algorithm)

    async def commit(self, digest: Digest) -> None:
        store = self._store
        dest = store.blob_key(digest)
        if await store._head(dest) is not None:
            return  # content-addressed: the same bytes are there already
        await self.settle()
        if self._seal is None:
            if not self._parts:
                await self._publish_small(dest)
                return
            await self._seal_upload()
        await self._complete()
        assert self._seal is not None
        await store._copy(store.upload_key(self._id, "data"), dest, self._seal.size)

    async def _publish_small(self, dest: str) -> None:
        """A blob below one part: one PutObject, or a server-side copy of its tail."""
        store = self._store
        if self._tail is not None and not self._loaded:
            await store._copy(store.upload_key(self._id, self._tail), dest, self._size)
        else:
            await store._put(dest, self._take_buffer(), store._published())

    async def _seal_upload(self) -> None:
        """Send the last part and record the final part list: from here on the bytes are final."""
        body = await self._hash_buffer()
        store = self._store
        if body:
            await self._cut_part()
            await self.settle()
        elif self._tail is not None:
            # The last part may be small: copy the tail in server-side.
            await self._copy_tail_as_part()
        assert self._multipart is not None
        seal = _Seal(self._size, self._hash.hexdigest(), self._multipart, list(self._parts))
        await store._put(store.upload_key(self._id, "sealed"), seal.encode(), store._encryption())
        self._seal = seal

    async def _copy_tail_as_part(self) -> None:
        assert self._tail is not None and self._multipart is not None
        store = self._store
        client = await store.client()
        number = self._next_part
        copied = await client.upload_part_copy(
            Bucket=store.config.bucket,
            Key=store.upload_key(self._id, "data"),
            UploadId=self._multipart,
            PartNumber=number,
            CopySource={"Bucket": store.config.bucket, "Key": store.upload_key(self._id, self._tail)},
        )
        self._next_part += 1
        self._parts.append(_Part(number, str(copied["CopyPartResult"]["ETag"]), self._durable - self._parts_end))
        self._parts_end = self._durable

    async def _complete(self) -> None:
        """Complete the sealed multipart upload into `uploads/<id>/data` (once)."""
        seal = self._seal
        assert seal is not None
        store = self._store
        key = store.upload_key(self._id, "data")
        head = await store._head(key)
        if head is not None and int(head["ContentLength"]) == seal.size:
            return
        client = await store.client()
        try:
            await client.complete_multipart_upload(
                Bucket=store.config.bucket,
                Key=key,
                UploadId=seal.multipart,
                MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in seal.parts]},
            )
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload":
                raise UploadLost(f"upload {self._id} was sealed but its parts are gone") from exc
            raise


def _hexdigest(algorithm: str, data: bytes) -> str:
    return hashlib.new(algorithm, data).hexdigest()
