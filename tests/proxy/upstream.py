"""A loopback HTTP proxy in front of a real upstream registry, which counts what it is asked
and can be made to fail: answer 429 or 500, hang, refuse credentials, or corrupt one blob's
bytes. It runs on a thread, so it serves in-process apps and server processes alike."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "host"}


class FaultyUpstream:
    def __init__(self, target: str):
        parts = urlsplit(target)
        self.target_host, self.target_port = parts.hostname or "127.0.0.1", parts.port or 80
        self.mode = "pass"  # pass, 429, 500, hang, 401, bearer
        # In "bearer" mode, what a request without a Bearer token is challenged with (the
        # upstream's own challenge, so its token service is the one that answers).
        self.challenge = ""
        self.corrupt: set[str] = set()  # blob digests whose bytes are changed in passing
        self.slow_seconds = 0.0  # pause between chunks of a blob, so pulls overlap
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def _forward(self) -> None:
                with upstream._lock:
                    upstream.requests.append((self.command, self.path.split("?")[0]))
                mode = upstream.mode
                if mode == "hang":
                    time.sleep(30)
                bearer = (self.headers.get("authorization") or "").lower().startswith("bearer ")
                if mode == "bearer" and not bearer:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", upstream.challenge)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if mode in ("429", "500", "401"):
                    self.send_response(int(mode))
                    if mode == "429":
                        self.send_header("Retry-After", "30")
                    if mode == "401":
                        self.send_header("WWW-Authenticate", 'Basic realm="upstream"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(upstream.target_host, upstream.target_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in _HOP:
                        self.send_header(key, value)
                self.end_headers()
                digest = self.path.split("?")[0].rsplit("/", 1)[-1]
                corrupt = "/blobs/" in self.path and digest in upstream.corrupt
                first = True
                while chunk := answer.read(64 * 1024):
                    if corrupt and first:
                        chunk = bytes([chunk[0] ^ 0xFF]) + chunk[1:]
                    first = False
                    if upstream.slow_seconds and "/blobs/" in self.path:
                        time.sleep(upstream.slow_seconds)
                    try:
                        self.wfile.write(chunk)
                    except (BrokenPipeError, ConnectionResetError):
                        break
                conn.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _forward

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FaultyUpstream:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def count(self, method: str | None = None, contains: str = "") -> int:
        with self._lock:
            return sum(1 for m, p in self.requests if (method is None or m == method) and contains in p)

    def counts(self) -> Counter[tuple[str, str]]:
        with self._lock:
            return Counter(self.requests)
