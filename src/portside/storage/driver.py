"""The blob-store interface: content-addressed blobs and resumable upload writers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from portside.oci.digest import Digest

__all__ = ["BlobStore", "BlobWriter", "StoredBlob", "StagedUpload", "UploadLost", "UploadSealed"]


@dataclass(frozen=True, slots=True)
class StoredBlob:
    digest: Digest
    size: int
    modified: datetime


@dataclass(frozen=True, slots=True)
class StagedUpload:
    upload_id: str
    modified: datetime


class UploadLost(Exception):
    """The staged bytes of an upload are gone (purged, or lost in a crash)."""


class UploadSealed(Exception):
    """The upload's bytes were published already; they can be committed, not changed."""


class BlobWriter(Protocol):
    """Appends to one upload's staging area while the caller holds it exclusively."""

    @property
    def size(self) -> int: ...

    @property
    def sealed(self) -> bool:
        """True when a completion published these bytes but died before it was recorded:
        the bytes are final and `write` raises `UploadSealed`; `commit` may be retried."""

    @property
    def state(self) -> bytes | None:
        """What another process or instance needs to continue this upload (for example
        multipart parts and the running hash), valid after `flush`; the caller saves it
        with the acknowledged size and hands it back to `resume`. None: nothing to save."""

    async def resume(self, size: int, state: bytes | None) -> None:
        """Position the writer after the `size` acknowledged bytes, discarding any bytes past
        them (from a request that failed half-way); `state` is what `state` said when those
        bytes were acknowledged. Raises `UploadLost` when fewer are staged.
        A sealed upload keeps all its bytes."""

    async def write(self, data: bytes) -> None:
        """Append `data`; it counts towards `size` at once, and is kept after `flush`."""

    async def flush(self) -> None:
        """Keep every byte written so far beyond this request, so a restart can resume from
        `size`. A store whose acknowledged bytes a machine crash could lose or garble (the
        filesystem's, before it publishes) must tell from `state` when `resume` can no
        longer trust them; only `commit` must be durable."""

    async def digest(self, algorithm: str) -> Digest:
        """The digest of everything written so far."""

    async def commit(self, digest: Digest) -> None:
        """Durably publish the staged bytes as blob `digest` (nothing to do when it exists).
        The staged bytes stay until `discard_upload`, so a crash before the database records
        the blob leaves a completion that can be retried."""


class BlobStore(Protocol):
    async def size(self, digest: Digest) -> int | None:
        """The stored size of `digest`, or None when the content is absent."""

    def local_path(self, digest: Digest) -> Path | None:
        """A path the HTTP server can send with zero copies, when the store is local."""

    def read(self, digest: Digest, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes `start`..`end` (exclusive) of a stored blob."""

    async def delete(self, digest: Digest) -> None: ...

    async def redirect_url(self, digest: Digest) -> str | None:
        """A URL clients may fetch the blob from directly (a presigned object-store URL),
        or None to serve it through Portside."""

    def list_blobs(self) -> AsyncIterator[StoredBlob]:
        """Every stored blob, in no particular order (for GC's sweep of orphans and scrub)."""

    def list_uploads(self) -> AsyncIterator[StagedUpload]:
        """Every upload staging area, with when it last changed (for purging idle ones)."""

    async def quarantine(self, digest: Digest) -> None:
        """Move a blob's content out of service, keeping it for inspection (scrub)."""

    def upload(self, upload_id: str) -> AbstractAsyncContextManager[BlobWriter]:
        """Hold upload `upload_id` exclusively (across processes too), creating its staging
        area when new. The holder calls `resume` with the acknowledged size before writing."""

    async def discard_upload(self, upload_id: str) -> None: ...

    async def ensure_space(self) -> None:
        """Raise `InsufficientStorage` while the store has too little free space to take
        uploads (a filesystem under its reserve); an object store has no such limit."""

    async def check(self) -> str | None:
        """Raise when the store cannot be used (for readiness probes), or when it is too
        full to take uploads; may return a note on its state (its free space)."""

    async def close(self) -> None: ...
