"""One download per missing blob, however many pulls ask for it while it runs.

A download streams the upstream's bytes into the blob store (a monolithic upload, which
verifies the digest before it links anything) and, in the same pass, into a spool file
that every waiting pull reads as it grows. The last chunk reaches the spool only once the
store found the digest right, so no pull is ever sent the whole of a wrong blob, and the
store never keeps one: a mismatch breaks off every pull's transfer and leaves nothing
behind. The bytes are hashed once, by the store.

The download runs as a task of its own, not in the request that started it: a client that
goes away leaves the others (and the cache) their bytes. Downloads are kept by digest in
the one `Downloads` the composition root builds; a finished one is forgotten, and its
spool file removed (pulls still reading it hold it open).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import BinaryIO

from portside.oci.digest import Digest

__all__ = ["Download", "Downloads", "Fetch", "Keep"]

log = logging.getLogger("portside.proxy")

_READ = 1 << 20
# Opens the upstream's stream: (size if known, its chunks).
Fetch = Callable[[], AbstractAsyncContextManager[tuple[int | None, AsyncIterator[bytes]]]]
# Stores a blob from its chunks (and its size, if known), verifying its digest.
Keep = Callable[[AsyncIterable[bytes], int | None], Awaitable[object]]


class DownloadFailed(Exception):
    """The download a pull was reading broke off; the pull's transfer must too."""


class Download:
    def __init__(self, digest: Digest, spool: Path):
        self.digest = digest
        self.spool = spool
        self.size: int | None = None
        self.started = False  # the upstream answered: `size` is what it said
        self.written = 0
        self.done = False
        self.error: BaseException | None = None
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait_started(self) -> None:
        """Until the upstream answered (or the download failed: raised here)."""
        while not self.started and self.error is None:
            await self._changed.wait()
        if self.error is not None:
            raise self.error

    async def wait_done(self) -> None:
        while not self.done and self.error is None:
            await self._changed.wait()
        if self.error is not None:
            raise self.error

    def reader(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end) as they arrive. The spool is opened here, before the
        download can finish and remove it."""
        return self._read(open(self.spool, "rb"), start, end)  # closed by _read

    async def _read(self, spool: BinaryIO, start: int, end: int | None) -> AsyncIterator[bytes]:
        with spool:
            position = start
            while True:
                if self.error is not None:
                    raise DownloadFailed(f"the download of {self.digest} failed: {self.error}")
                available = self.written if end is None else min(end, self.written)
                if position < available:
                    # Page-cache reads of what was just written: not worth a thread hop.
                    spool.seek(position)
                    data = spool.read(min(available - position, _READ))
                    position += len(data)
                    yield data
                    continue
                if self.done or (end is not None and position >= end):
                    return
                await self._changed.wait()

    async def _run(self, fetch: Fetch, keep: Keep, spool: BinaryIO) -> None:
        try:
            async with fetch() as (size, chunks):
                self.size, self.started = size, True
                self._notify()

                held: list[bytes] = []  # the last chunk so far: spooled once the digest is right

                def spooled(chunk: bytes) -> None:
                    spool.write(chunk)
                    spool.flush()
                    self.written += len(chunk)
                    self._notify()

                async def tee() -> AsyncIterator[bytes]:
                    async for chunk in chunks:
                        if held:
                            spooled(held.pop())
                        held.append(chunk)
                        yield chunk

                await keep(tee(), size)
                if held:
                    spooled(held.pop())
            self.done = True
        except BaseException as error:  # every reader must learn of it, cancellation too
            self.error = error
            if not isinstance(error, Exception):
                raise
            log.warning("download of %s failed: %s", self.digest, error)
        finally:
            spool.close()
            with contextlib.suppress(OSError):
                os.unlink(self.spool)
            self._notify()


class Downloads:
    def __init__(self, spool_dir: Path):
        self._dir = spool_dir
        self._running: dict[Digest, Download] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.started = 0  # downloads begun (a pull that joined one begins none)

    def running(self, digest: Digest) -> Download | None:
        return self._running.get(digest)

    def join(self, digest: Digest, fetch: Fetch, keep: Keep) -> Download:
        """The running download of `digest`, or a new one of `fetch`'s bytes kept by `keep`."""
        found = self._running.get(digest)
        if found is not None:
            return found
        self._dir.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f"{digest.hex[:16]}-", dir=self._dir)
        download = Download(digest, Path(name))
        self._running[digest] = download
        self.started += 1
        task = asyncio.create_task(self._one(download, fetch, keep, os.fdopen(handle, "wb")))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return download

    async def _one(self, download: Download, fetch: Fetch, keep: Keep, spool: BinaryIO) -> None:
        try:
            await download._run(fetch, keep, spool)
        finally:
            self._running.pop(download.digest, None)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
