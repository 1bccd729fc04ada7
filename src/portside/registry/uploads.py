"""Blob uploads: sessions that stage bytes, verify their digest and publish atomically.

The database holds each session's acknowledged size once it has one; a session that has
acknowledged nothing is known by its id alone (uploadids.py), so the usual POST and one
PUT cost no write for the session. The blob store holds the staged bytes. Publishing is:
verify digest → fsync + rename into place → one transaction that links the blob and ends
the session. A crash before the transaction leaves an unlinked file (invisible,
collectable); never a visible half blob.

A request that brings bytes (a POST that starts an upload, a PATCH, a PUT with a body) is
refused before it reads them while the store is too full (`ensure_space`); one that
completes an upload whose bytes are all staged is not.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from portside.coord.locks import Locks
from portside.digits import SATURATED, parse_decimal
from portside.errors import BlobUploadInvalid, BlobUploadUnknown, DigestInvalid, RangeInvalid, SizeInvalid
from portside.meta.stores import UploadRecord, UploadStore
from portside.oci.digest import Digest
from portside.registry.uploadids import UploadIds
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
        first, sep, last = text.partition("-")
        start, end = parse_decimal(first), parse_decimal(last)
        # A range past 64 bits is no part of any upload.
        if not sep or start is None or end is None or end < start or end >= SATURATED:
            raise RangeInvalid(f"invalid Content-Range {header!r}")
        return cls(start, end)

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class _EndedMeanwhile(Exception):
    pass


class UploadService:
    def __init__(self, store: BlobStore, uploads: UploadStore, locks: Locks, ids: UploadIds):
        self._store = store
        self._uploads = uploads
        self._locks = locks
        self._ids = ids

    async def start(self, repo: str) -> UploadRecord:
        await self._store.ensure_space()
        upload_id, issued = self._ids.issue(repo)
        return UploadRecord(upload_id, repo, 0, issued)

    async def status(self, repo: str, upload_id: str) -> UploadRecord:
        return await self._live(repo, upload_id)

    async def append(
        self,
        repo: str,
        upload_id: str,
        body: AsyncIterable[bytes],
        chunk: ChunkRange | None = None,
        length: int | None = None,
    ) -> int:
        """Append a chunk (at `chunk.start` when given, which must be the current size)."""
        await self._store.ensure_space()
        async with self._held(repo, upload_id) as (session, writer):
            if writer.sealed:
                raise BlobUploadInvalid("this upload was completed; repeat its PUT to finish it")
            await self._receive(writer, body, chunk, length)
            await writer.flush()
            await self._uploads.save_upload(replace(session, size=writer.size, state=writer.state))
            return writer.size

    async def complete(
        self,
        repo: str,
        upload_id: str,
        digest: Digest,
        body: AsyncIterable[bytes] | None = None,
        chunk: ChunkRange | None = None,
        length: int | None = None,
        project_id: int | None = None,
    ) -> int:
        """Take an optional last chunk, verify `digest` and publish the blob; returns its size.
        `project_id` binds the blob's link to `repo`'s project (meta/stores.py)."""
        if body is not None and length != 0:
            await self._store.ensure_space()
        async with self._held(repo, upload_id) as (session, writer):
            return await self._complete(session, writer, digest, body, chunk, length, project_id)

    async def upload_whole(
        self,
        repo: str,
        digest: Digest,
        body: AsyncIterable[bytes],
        length: int | None,
        project_id: int | None = None,
    ) -> int:
        """A monolithic upload: a session that lives for one request, its id never shown."""
        session = await self.start(repo)
        async with self._store.upload(session.upload_id) as writer:
            try:
                await writer.resume(0, None)
                return await self._complete(session, writer, digest, body, None, length, project_id, shown=False)
            except BaseException:
                await self._store.discard_upload(session.upload_id)
                raise

    async def cancel(self, repo: str, upload_id: str) -> None:
        await self._forget(await self._live(repo, upload_id))

    async def _complete(
        self,
        session: UploadRecord,
        writer: BlobWriter,
        digest: Digest,
        body: AsyncIterable[bytes] | None,
        chunk: ChunkRange | None,
        length: int | None,
        project_id: int | None,
        *,
        shown: bool = True,
    ) -> int:
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
            if shown:
                await self._forget(session)
            raise DigestInvalid(
                f"content has digest {actual}, not {digest}",
                detail={"expected": str(digest), "actual": str(actual)},
            )
        # Under the blob's lock from publishing to recording: GC sweeps a blob under it
        # too, so it never deletes content that this commit found already in place.
        async with self._locks.hold(f"blob:{digest}"):
            await writer.commit(digest)
            await self._uploads.complete_upload(session, digest, writer.size, tombstone=shown, project_id=project_id)
        await self._store.discard_upload(session.upload_id)
        return writer.size

    async def _forget(self, session: UploadRecord) -> None:
        await self._uploads.end_upload(session)
        await self._store.discard_upload(session.upload_id)

    async def _live(self, repo: str, upload_id: str) -> UploadRecord:
        if self._ids.refuses(repo, upload_id):  # no row to look for (nor text a store can hold)
            raise _unknown(repo, upload_id)
        session = self._session(repo, upload_id, await self._uploads.get_upload(upload_id))
        if session is None:
            raise _unknown(repo, upload_id)
        return session

    def _session(self, repo: str, upload_id: str, row: UploadRecord | None) -> UploadRecord | None:
        """The live session `upload_id` of `repo`, from its row, or from the id itself when
        it has none yet; None when there is no such session (any more)."""
        if row is not None:
            return row if row.repository == repo and not row.ended else None
        issued = self._ids.issued_at(repo, upload_id)
        if issued is None or self._ids.expired(issued):
            return None
        return UploadRecord(upload_id, repo, 0, issued)

    @asynccontextmanager
    async def _held(self, repo: str, upload_id: str) -> AsyncIterator[tuple[UploadRecord, BlobWriter]]:
        """The session and its writer, held exclusively and positioned after its
        acknowledged bytes.

        The session is read once held: a request that waited for the hold must see what
        the one before it acknowledged (or that it ended the session)."""
        if self._ids.refuses(repo, upload_id):
            # Never one of ours, another repository's or forged: refused before it names a
            # staging area.
            raise _unknown(repo, upload_id)
        session: UploadRecord | None = None
        try:
            async with self._store.upload(upload_id) as writer:
                row = await self._uploads.get_upload(upload_id)
                if row is not None and row.repository != repo:
                    # Another repository's (legacy) session: refused without touching its bytes.
                    raise _unknown(repo, upload_id)
                session = self._session(repo, upload_id, row)
                if session is None:
                    raise _EndedMeanwhile  # ended, expired, or ended by the request we waited for
                await writer.resume(session.size, session.state)
                yield session, writer
        except _EndedMeanwhile:
            # No session owns this staging area (any more): it goes too.
            await self._store.discard_upload(upload_id)
            raise BlobUploadUnknown(f"upload {upload_id} has ended", detail={"uuid": upload_id}) from None
        except UploadLost as exc:
            if session is not None:
                await self._forget(session)
            else:
                await self._store.discard_upload(upload_id)
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


def _unknown(repo: str, upload_id: str) -> BlobUploadUnknown:
    return BlobUploadUnknown(f"upload {upload_id} unknown to repository {repo}", detail={"uuid": upload_id})
