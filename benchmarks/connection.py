"""One keep-alive HTTP/1.1 connection, as thin as a client can be.

The pushes are measured through this rather than httpx: a request body that is a file is
handed to the kernel with `sendfile`, so the client costs next to nothing and the rate
measured is the server's. Responses are read with their `Content-Length` (or chunked
encoding); a body being pulled can be discarded as it arrives instead of kept.
"""

from __future__ import annotations

import io
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import cast
from urllib.parse import urlsplit

__all__ = ["Connection", "FileBody", "Response", "HttpError", "path_of"]

_DISCARD_CHUNK = 1024 * 1024


class HttpError(RuntimeError):
    """A response other than the one the benchmark needed."""


@dataclass(frozen=True)
class FileBody:
    """`count` bytes of `path` from `offset`, sent with sendfile."""

    path: Path
    offset: int
    count: int


@dataclass
class Response:
    status: int
    headers: dict[str, str]  # names in lower case; a repeated header keeps its last value
    body: bytes
    length: int  # bytes of body received (also when they were discarded)

    def expect(self, *statuses: int, what: str = "request") -> Response:
        if self.status not in statuses:
            raise HttpError(f"{what}: HTTP {self.status} {self.body[:500]!r}")
        return self


def path_of(location: str) -> str:
    """The path and query of a Location header, absolute (Distribution) or relative (Portside)."""
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Connection:
    def __init__(self, host: str, port: int, timeout: float = 600.0):
        self.host = host
        self.port = port
        self._timeout = timeout
        self._sock: socket.socket | None = None
        self._reader: io.BufferedReader | None = None

    @classmethod
    def to(cls, url: str, timeout: float = 600.0) -> Connection:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 80, timeout)

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.create_connection((self.host, self.port), timeout=self._timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._reader = cast(io.BufferedReader, sock.makefile("rb", buffering=256 * 1024))
        return self._sock

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self._reader = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | None = None,
        body: bytes | FileBody | None = None,
        keep_body: bool = True,
    ) -> Response:
        """Send one request and read its response; `keep_body=False` counts the body's bytes
        without keeping them (pulls)."""
        sock = self._connect()
        length = 0 if body is None else (body.count if isinstance(body, FileBody) else len(body))
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        for name, value in (headers or {}).items():
            lines.append(f"{name}: {value}")
        if body is not None or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {length}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if isinstance(body, FileBody):
                sock.sendall(head)
                with open(body.path, "rb") as f:
                    sent = sock.sendfile(f, body.offset, body.count)
                if sent != body.count:
                    raise HttpError(f"sent {sent} of {body.count} bytes")
            else:
                sock.sendall(head + body if body else head)
            return self._read_response(method, keep_body)
        except BaseException:
            self.close()  # the connection is in an unknown state
            raise

    def _read_response(self, method: str, keep_body: bool) -> Response:
        reader = self._reader
        assert reader is not None
        status_line = reader.readline()
        if not status_line:
            raise HttpError("connection closed before the response")
        status = int(status_line.split(b" ", 2)[1])
        headers: dict[str, str] = {}
        while True:
            line = reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        chunks: list[bytes] = []
        received = 0
        if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
            pass
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(reader.readline().split(b";")[0], 16)
                if size == 0:
                    while reader.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                received += self._read_exactly(size, chunks if keep_body else None)
                reader.readline()
        elif "content-length" in headers:
            received = self._read_exactly(int(headers["content-length"]), chunks if keep_body else None)
        else:
            while block := reader.read(_DISCARD_CHUNK):
                received += len(block)
                if keep_body:
                    chunks.append(block)
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Response(status, headers, b"".join(chunks), received)

    def _read_exactly(self, size: int, into: list[bytes] | None) -> int:
        reader = self._reader
        assert reader is not None
        if into is not None:
            data = reader.read(size)
            if len(data) != size:
                raise HttpError(f"body cut short: {len(data)} of {size} bytes")
            into.append(data)
            return size
        buffer = memoryview(bytearray(min(size, _DISCARD_CHUNK)))
        left = size
        while left:
            n = reader.readinto(buffer[: min(left, len(buffer))])
            if not n:
                raise HttpError(f"body cut short: {size - left} of {size} bytes")
            left -= n
        return size
