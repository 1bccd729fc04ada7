"""Blob uploads: sessions that stage bytes, verify their digest and publish atomically.

The database holds each session and its acknowledged size; the blob store holds the
staged bytes. Publishing is: verify digest → fsync + rename into place → one transaction
that links the blob and forgets the session. A crash before the transaction leaves an
unlinked file (invisible, collectable); never a visible half blob.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from portside.coord.locks import Locks
from portside.errors import BlobUploadInvalid, BlobUploadUnknown, DigestInvalid, RangeInvalid, SizeInvalid
from portside.meta.stores import UploadRecord, UploadStore
from portside.oci.digest import Digest
from portside.storage.driver import BlobStore, BlobWriter, UploadLost

__all__ = ["ChunkRange", "UploadService"]


@dataclass(frozen=True, slots=True)
class ChunkRange:
    """Where a chunk says it belongs: `start` and inclusive `end`, as in Content-Range."""

    start: int
    end: int

    @classmethod
    def parse(cls, header: str) -> ChunkRange:
        text = header.strip()
        if text.startswith("bytes"):
            text = text[5:].lstrip(" =")
        start, sep, end = text.partition("-")
        if not sep or not start.isdigit() or not end.isdigit() or int(end) < int(start):
            raise RangeInvalid(f"invalid Content-Range {header!r}")
        return cls(int(start), int(end))

    @property
    def length(self) -> int:
        return self.end - self.start + 1


# What `start` hands out: uuid4().hex.
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")


class _EndedMeanwhile(Exception):
    pass


class UploadService:
    def __init__(self, store: BlobStore, uploads: UploadStore, locks: Locks):
        self._store = store
        self._uploads = uploads
        self._locks = locks

    async def start(self, repo: str) -> UploadRecord:
        return await self._uploads.create_upload(uuid.uuid4().hex, repo)

    async def status(self, repo: str, upload_id: str) -> UploadRecord:
        return await self._session(repo, upload_id)

    async def append(
        self,
        repo: str,
        upload_id: str,
        body: AsyncIterable[bytes],
        chunk: ChunkRange | None = None,
        length: int | None = None,
    ) -> int:
        """Append a chunk (at `chunk.start` when given, which must be the current size)."""
        async with self._held(repo, upload_id) as writer:
            if writer.sealed:
                raise BlobUploadInvalid("this upload was completed; repeat its PUT to finish it")
            await self._receive(writer, body, chunk, length)
            await writer.flush()
            await self._uploads.set_upload_size(upload_id, writer.size, writer.state)
            return writer.size

    async def complete(
        self,
        repo: str,
        upload_id: str,
        digest: Digest,
        body: AsyncIterable[bytes] | None = None,
        chunk: ChunkRange | None = None,
        length: int | None = None,
    ) -> int:
        """Take an optional last chunk, verify `digest` and publish the blob; returns its size."""
        async with self._held(repo, upload_id) as writer:
            if writer.sealed:
                # A retry after a crash: the bytes were verified and published then; any
                # final chunk sent again is already among them.
                if body is not None:
                    async for _ in body:
                        pass
            elif body is not None:
                await self._receive(writer, body, chunk, length)
            actual = await writer.digest(digest.algorithm)
            if actual != digest:
                await self._forget(upload_id)
                raise DigestInvalid(
                    f"content has digest {actual}, not {digest}",
                    detail={"expected": str(digest), "actual": str(actual)},
                )
            # Under the blob's lock from publishing to recording: GC sweeps a blob under it
            # too, so it never deletes content that this commit found already in place.
            async with self._locks.hold(f"blob:{digest}"):
                await writer.commit(digest)
                await self._uploads.complete_upload(upload_id, repo, digest, writer.size)
            await self._store.discard_upload(upload_id)
            return writer.size

    async def upload_whole(self, repo: str, digest: Digest, body: AsyncIterable[bytes], length: int | None) -> int:
        """A monolithic upload: a session that lives for one request."""
        session = await self.start(repo)
        try:
            return await self.complete(repo, session.upload_id, digest, body, None, length)
        except BaseException:
            await self._forget(session.upload_id)
            raise

    async def cancel(self, repo: str, upload_id: str) -> None:
        await self._session(repo, upload_id)
        await self._forget(upload_id)

    async def _forget(self, upload_id: str) -> None:
        await self._uploads.delete_upload(upload_id)
        await self._store.discard_upload(upload_id)

    async def _session(self, repo: str, upload_id: str) -> UploadRecord:
        session = await self._uploads.get_upload(upload_id)
        if session is None or session.repository != repo:
            raise BlobUploadUnknown(f"upload {upload_id} unknown to repository {repo}", detail={"uuid": upload_id})
        return session

    @asynccontextmanager
    async def _held(self, repo: str, upload_id: str) -> AsyncIterator[BlobWriter]:
        """The session's writer, held exclusively and positioned after its acknowledged bytes.

        The session is read once held: a request that waited for the hold must see what
        the one before it acknowledged (or that it completed the upload)."""
        if not _UPLOAD_ID.fullmatch(upload_id):
            # Never one of ours (`start` makes them): refused before it names a staging area.
            raise BlobUploadUnknown(f"upload {upload_id} unknown to repository {repo}", detail={"uuid": upload_id})
        try:
            async with self._store.upload(upload_id) as writer:
                session = await self._uploads.get_upload(upload_id)
                if session is None:
                    raise _EndedMeanwhile  # unknown, or ended by the request we waited for
                if session.repository != repo:
                    # Another repository's session: refused without touching its bytes.
                    raise BlobUploadUnknown(
                        f"upload {upload_id} unknown to repository {repo}", detail={"uuid": upload_id}
                    )
                await writer.resume(session.size, session.state)
                yield writer
        except _EndedMeanwhile:
            # No session owns this staging area (any more): it goes too.
            await self._store.discard_upload(upload_id)
            raise BlobUploadUnknown(f"upload {upload_id} has ended", detail={"uuid": upload_id}) from None
        except UploadLost as exc:
            await self._forget(upload_id)
            raise BlobUploadUnknown(str(exc), detail={"uuid": upload_id}) from exc

    async def _receive(
        self,
        writer: BlobWriter,
        body: AsyncIterable[bytes],
        chunk: ChunkRange | None,
        length: int | None,
    ) -> None:
        start = writer.size
        if chunk is not None:
            if chunk.start != start:
                raise RangeInvalid(
                    f"chunk starts at {chunk.start} but the upload holds {start} bytes",
                    headers={"Range": f"0-{max(start - 1, 0)}"},
                )
            if length is not None and length != chunk.length:
                raise SizeInvalid(f"Content-Length {length} does not match Content-Range {chunk.start}-{chunk.end}")
        async for data in body:
            await writer.write(data)
        received = writer.size - start
        expected = chunk.length if chunk is not None else length
        if expected is not None and received != expected:
            raise SizeInvalid(f"received {received} bytes, expected {expected}")
