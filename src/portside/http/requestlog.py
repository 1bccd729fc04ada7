"""One structured line per request: method, path, status, bytes sent, duration."""

from __future__ import annotations

import json
import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("portside.access")


class RequestLog:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        declared = 0  # Content-Length: what a pathsend response sends without a body message
        streamed = 0

        async def observe(message: Message) -> None:
            nonlocal status, declared, streamed
            kind = message["type"]
            if kind == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"content-length" and scope["method"] != "HEAD":
                        declared = int(value)
            elif kind == "http.response.body":
                streamed += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            log.info(
                json.dumps(
                    {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "bytes": streamed or declared,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                        "client": (scope.get("client") or ("", 0))[0],
                    },
                    separators=(",", ":"),
                )
            )
