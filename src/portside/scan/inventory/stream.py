"""A bounded hand-over of a layer's bytes from the event loop to the thread that parses it.

The async side feeds chunks as storage yields them and waits (off the loop) when the queue is
full, so at most `depth` pieces of at most `_PIECE` bytes are in memory however large the
layer, and whatever size of chunk storage yields; the thread side reads
it as a plain blocking file, which is what `tarfile` and the decompressors want."""

from __future__ import annotations

import asyncio
import queue
from collections.abc import AsyncIterator

__all__ = ["ChunkPipe", "LayerStreamBroken"]


_PIECE = 1 << 20


class LayerStreamBroken(OSError):
    """The byte stream stopped before its end (storage failed while the layer was read)."""


class _End:
    def __init__(self, failed: bool) -> None:
        self.failed = failed


class ChunkPipe:
    """Bytes written by one coroutine, read by one thread."""

    def __init__(self, depth: int = 8) -> None:
        self._queue: queue.Queue[bytes | _End] = queue.Queue(maxsize=depth)
        self._buffer = bytearray()  # deleting from its front is cheap in CPython
        self._end: _End | None = None
        self._abandoned = False

    # -- the event loop's side -------------------------------------------------------------

    async def feed(self, chunks: AsyncIterator[bytes]) -> None:
        """Hand over every chunk, then the end; the end is sent even when `chunks` fails."""
        failed = True
        try:
            async for chunk in chunks:
                if self._abandoned:
                    break
                for at in range(0, len(chunk), _PIECE):
                    await self._put(chunk[at : at + _PIECE] if len(chunk) > _PIECE else chunk)
            failed = False
        finally:
            await self._put(_End(failed))

    async def _put(self, item: bytes | _End) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            await asyncio.to_thread(self._queue.put, item)

    # -- the reading thread's side ---------------------------------------------------------

    def _fill(self) -> bool:
        """One more chunk into the buffer; False at the end of the stream."""
        if self._end is not None:
            return False
        item = self._queue.get()
        if isinstance(item, _End):
            self._end = item
            if item.failed:
                raise LayerStreamBroken("the layer's byte stream ended early")
            return False
        self._buffer += item
        return True

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            while self._fill():
                pass
            data = bytes(self._buffer)
            self._buffer.clear()
            return data
        while len(self._buffer) < size and self._fill():
            pass
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def peek(self, size: int) -> bytes:
        while len(self._buffer) < size and self._fill():
            pass
        return bytes(self._buffer[:size])

    def drain(self) -> None:
        """Read and drop whatever is left, so the feeding side never waits on a full queue
        (tar readers stop at the end-of-archive marker, before the stream's padding)."""
        self._abandoned = True
        self._buffer.clear()
        try:
            while self._end is None:
                item = self._queue.get()
                if isinstance(item, _End):
                    self._end = item
        finally:
            self._buffer.clear()
