"""A local file, whole or one byte range of it, as an HTTP response.

Two ways to send its bytes:

- **pathsend**: the server is handed the path and reads the file itself
  (`http.response.pathsend`). Granian reads 128 KiB at a time on a thread of its own and
  wakes its I/O thread for each piece: cheap in memory (a few pieces per transfer), but a
  lone client's pull is bound by those hand-offs.
- **slices**: Portside reads large slices itself and sends each as one body message. A
  slice is read on the event loop's thread when the page cache holds all of it
  (`preadv2` with `RWF_NOWAIT`, which fails instead of waiting for the disk); otherwise
  the rest of it is read on a worker thread. A 256 MiB blob is 64 reads and 64 messages
  instead of about 2,000 of each with as many thread hand-offs. The price is memory: the
  server copies each body it is given and queues it, so a transfer holds about three
  slices at once.

A range always goes in slices (pathsend sends only whole files). A whole file goes in
slices while the process has a slot for it in `SliceSlots` (a lone client, or a few), by
pathsend otherwise, so many clients pulling at once keep pathsend's small footprint.

Which bytes to send (Range, If-Range, 416) is the caller's decision; this module only
sends the bytes it is told to.
"""

from __future__ import annotations

import asyncio
import errno
import os
from collections.abc import Callable, Mapping

import anyio.to_thread
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

__all__ = ["FileRange", "SliceSlots", "SLICE_BYTES"]

# Bytes per read and per body message: fewer, larger slices mean fewer reads and messages;
# the server holds about three per transfer (the one it was handed, the one it queued,
# the one being written), which bounds a transfer's memory. Measured on a 128 MiB range:
# 1 MiB slices cost the server 60 ms of CPU, 4 MiB 50 ms. From 8 MiB on, each copy Granian
# makes of a body is one of jemalloc's "oversize" allocations, whose pages go back to the
# kernel when freed: every page then faults anew, and the rate halves.
SLICE_BYTES = 4 * 1024 * 1024

_PATHSEND = "http.response.pathsend"

# Linux's "fail rather than wait for the disk" flag for preadv2; None where there is none.
_NOWAIT: int | None = getattr(os, "RWF_NOWAIT", None)
# What preadv2 answers on a file system that cannot honour the flag: read on a thread then.
_NOWAIT_REFUSED = {errno.EAGAIN, errno.EOPNOTSUPP, errno.EINVAL}


class SliceSlots:
    """How many whole files one server process sends in slices at once (see the module's
    docstring); the others go by pathsend. One per event loop: only its thread uses it."""

    def __init__(self, slots: int) -> None:
        self._free = slots

    def take(self) -> bool:
        if self._free <= 0:
            return False
        self._free -= 1
        return True

    def give_back(self) -> None:
        self._free += 1


class FileRange(Response):
    """Bytes [start, end) of the file at `path` (`size` bytes long), with `status_code` and
    `headers`, which must already give the Content-Length (and for a range the
    Content-Range) of what is sent. `slots` decides how a whole file goes (see the module's
    docstring); None sends whole files by pathsend whenever the server offers it.

    The file is opened before anything is sent: if it vanished since the caller looked (a
    garbage collection in between), the response `gone()` returns is sent instead.
    """

    def __init__(
        self,
        path: str,
        size: int,
        start: int,
        end: int,
        status_code: int,
        headers: Mapping[str, str],
        gone: Callable[[], Response],
        slots: SliceSlots | None = None,
    ) -> None:
        self.path = path
        self.size = size
        self.start = start
        self.end = end
        self.status_code = status_code
        self.background = None
        self.init_headers(headers)
        self.gone = gone
        self.slots = slots

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        if scope["method"] == "HEAD" or self.start >= self.end:
            await send(start)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        if self.start == 0 and self.end == self.size and _PATHSEND in scope.get("extensions", {}):
            if self.slots is None or not self.slots.take():
                # The server reads the file itself: no byte passes through Python.
                await send(start)
                await send({"type": _PATHSEND, "path": self.path})
                return
            try:
                await self._send_from_file(start, scope, receive, send)
            finally:
                self.slots.give_back()
            return
        await self._send_from_file(start, scope, receive, send)

    async def _send_from_file(self, start: dict[str, object], scope: Scope, receive: Receive, send: Send) -> None:
        try:
            # Opening a path the kernel has cached costs less than a thread hop.
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            await self.gone()(scope, receive, send)
            return
        try:
            await send(start)
            if self.end - self.start <= SLICE_BYTES:
                await self._send_slices(fd, send, None)
                return
            # A long transfer stops when the client leaves: some servers' `send` goes on
            # accepting bodies for a closed connection, and the rest would be read for nothing.
            left = asyncio.Event()
            watcher = asyncio.ensure_future(_watch_for_disconnect(receive, left))
            try:
                await self._send_slices(fd, send, left)
            finally:
                watcher.cancel()
        finally:
            os.close(fd)

    async def _send_slices(self, fd: int, send: Send, left: asyncio.Event | None) -> None:
        offset, end = self.start, self.end
        while offset < end:
            if left is not None and left.is_set():
                return
            chunk = await read_slice(fd, offset, min(SLICE_BYTES, end - offset))
            if len(chunk) == 0:
                raise RuntimeError(f"{self.path} ended at byte {offset}, before the {end} its answer promised")
            offset += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": offset < end})


async def read_slice(fd: int, offset: int, length: int) -> bytearray:
    """Up to `length` bytes of `fd` from `offset` (fewer only at the end of the file).

    A new buffer for every slice, never written again once returned: a server may keep
    the body it was handed (an in-process client does). Granian copies it at once."""
    buffer = bytearray(length)
    with memoryview(buffer) as view:
        got = _read_cached(fd, view, offset)
        while got < length:
            n = await anyio.to_thread.run_sync(os.preadv, fd, [view[got:]], offset + got)
            if n == 0:
                break
            got += n
    return buffer if got == length else buffer[:got]


def _read_cached(fd: int, view: memoryview, offset: int) -> int:
    """What the page cache holds of `view`'s bytes at `offset`, read without waiting: the
    number of bytes read, 0 when none was there (or the file system cannot tell)."""
    if _NOWAIT is None:
        return 0
    try:
        return os.preadv(fd, [view], offset, _NOWAIT)
    except OSError as error:
        if error.errno in _NOWAIT_REFUSED:
            return 0
        raise


async def _watch_for_disconnect(receive: Receive, left: asyncio.Event) -> None:
    try:
        while (await receive())["type"] != "http.disconnect":
            pass
    except Exception:  # a server that cannot say any more: nobody is known to have left
        return
    left.set()
