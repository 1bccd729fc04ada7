"""A TCP proxy on loopback in front of a registry, to see and disturb what a copy sends.

It counts the bytes clients send and the HTTP request lines among them, can cut the
connection once after a number of client bytes (an upload interrupted mid-blob), and can
rewrite a byte string in what the registry answers (a source serving bytes that do not
match their digest). It runs its own event loop in a thread, so tests drive it from
synchronous code and from `asyncio.run` alike.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.servers import free_port

_REQUEST_LINE = re.compile(rb"(GET|HEAD|POST|PUT|PATCH|DELETE) (\S+) HTTP/1\.1\r\n")


class LoopbackProxy:
    def __init__(
        self,
        target_port: int,
        *,
        cut_after: int | None = None,
        replace: tuple[bytes, bytes] | None = None,
        port: int | None = None,
    ):
        self.target_port = target_port
        self.port = port or free_port()
        self.cut_after = cut_after
        self.replace = replace
        self.sent = 0  # bytes from clients to the registry
        self.requests: list[tuple[str, str]] = []
        self.cuts = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def reset(self) -> None:
        self.sent, self.requests = 0, []

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._main())
        self._loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self._ready.set()
        await self._stopping.wait()
        server.close()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def start(self) -> LoopbackProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        cut = asyncio.Event()

        async def upward() -> None:
            tail = b""
            while data := await client_reader.read(65536):
                if self.cut_after is not None and self.sent + len(data) > self.cut_after:
                    keep = self.cut_after - self.sent
                    upstream_writer.write(data[:keep])
                    await upstream_writer.drain()
                    self.sent += keep
                    self.cut_after, self.cuts = None, self.cuts + 1
                    cut.set()
                    return
                self.sent += len(data)
                scan = tail + data
                self.requests += [(m.group(1).decode(), m.group(2).decode()) for m in _REQUEST_LINE.finditer(scan)]
                tail = scan[-64:]
                upstream_writer.write(data)
                await upstream_writer.drain()

        async def downward() -> None:
            held = b""
            while data := await upstream_reader.read(65536):
                if self.replace is None:
                    client_writer.write(data)
                else:
                    old, new = self.replace
                    ready, held = _split((held + data).replace(old, new), old)
                    client_writer.write(ready)
                await client_writer.drain()
            client_writer.write(held)

        tasks = [asyncio.ensure_future(upward()), asyncio.ensure_future(downward())]
        waiter = asyncio.ensure_future(cut.wait())
        try:
            await asyncio.wait([*tasks, waiter], return_when=asyncio.FIRST_COMPLETED)
            if cut.is_set() or tasks[0].done():
                if cut.is_set():
                    for task in tasks:
                        task.cancel()
                else:
                    await asyncio.wait([tasks[1]], timeout=30)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            for task in [*tasks, waiter]:
                task.cancel()
            for writer in (client_writer, upstream_writer):
                writer.close()


def _split(data: bytes, old: bytes) -> tuple[bytes, bytes]:
    """`data` less the end that may begin `old` (a match straddling two reads), and that end."""
    for size in range(min(len(old) - 1, len(data)), 0, -1):
        if old.startswith(data[-size:]):
            return data[:-size], data[-size:]
    return data, b""


@contextmanager
def proxy(target_port: int, **kwargs: object) -> Iterator[LoopbackProxy]:
    running = LoopbackProxy(target_port, **kwargs).start()  # type: ignore[arg-type]
    try:
        yield running
    finally:
        running.stop()
