"""Request bodies are read under a size limit and a timeout, chosen once by path and method.

request                                          size limit              timeout
-----------------------------------------------  ----------------------  --------------------------
blob uploads: POST, PATCH, PUT                   none: streamed to the   between two pieces (an
  /v2/<name>/blobs/uploads[/<upload id>]         store                   upload may take long)
manifests: PUT /v2/<name>/manifests/<reference>  `max_manifest_bytes`    the whole body
any other request with a body                    `max_body_bytes`        the whole body

GET and HEAD pass straight through: no handler reads their bodies, so the hot reads pay
nothing here. A `Content-Length` over the limit is answered at once, the body unread; a
body that passes its limit as it streams, or stops arriving, is cut off there. The answer
is 413 (408 for the timeout) in the error shape of the API the path belongs to, whatever
the handler that was reading made of the error: Harbor's for the management API and the
web sign-in (`/api/`, `/c/`), the OCI registry's for everything else (`/v2`, the token
endpoint).

An answer given before the body was read whole (an error found first) is held back until
the rest has been read, up to a bound, so that the client sees it instead of a connection
cut while it was still sending.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portside.errors import BodyTimeout, BodyTooLarge, ManifestTooLarge, RegistryError
from portside.http.api.errors import error_response
from portside.http.v2.common import render_error

__all__ = ["BodyLimits"]

_BODILESS = frozenset({"GET", "HEAD"})
_UPLOAD_METHODS = frozenset({"POST", "PATCH", "PUT"})
# The router's own patterns: `{name:path}` is greedy, an upload id and a reference are
# one segment.
_UPLOAD_PATH = re.compile(r"/v2/.+/blobs/uploads(?:/[^/]*)?")
_MANIFEST_PATH = re.compile(r"/v2/.+/manifests/[^/]+")
# The management API and the web sign-in answer in Harbor's error shape.
_HARBOR_PREFIXES = ("/api/", "/c/")
# How much of a body is read (and dropped) to deliver an answer given before it was read.
_DRAIN_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class _Rule:
    """What one kind of request may send: at most `limit` bytes (None: any number, and
    `too_large` is never raised), within `timeout` seconds in all, or between two pieces
    when `idle`."""

    limit: int | None
    timeout: float
    idle: bool
    too_large: Callable[[], BodyTooLarge] = BodyTooLarge


class BodyLimits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_manifest_bytes: int, timeout_seconds: float):
        self.app = app
        self._other = _Rule(
            max_body_bytes,
            timeout_seconds,
            idle=False,
            too_large=lambda: BodyTooLarge(
                f"the request body exceeds the limit of {max_body_bytes} bytes", detail={"limit": max_body_bytes}
            ),
        )
        self._manifest = _Rule(
            max_manifest_bytes,
            timeout_seconds,
            idle=False,
            too_large=lambda: ManifestTooLarge(
                f"manifest exceeds the limit of {max_manifest_bytes} bytes", detail={"limit": max_manifest_bytes}
            ),
        )
        self._upload = _Rule(None, timeout_seconds, idle=True)

    def _rule(self, method: str, path: str) -> _Rule:
        if path.startswith("/v2/"):
            if method in _UPLOAD_METHODS and _UPLOAD_PATH.fullmatch(path):
                return self._upload
            if method == "PUT" and _MANIFEST_PATH.fullmatch(path):
                return self._manifest
        return self._other

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODILESS:
            await self.app(scope, receive, send)
            return
        rule = self._rule(scope["method"], scope["path"])
        exchange = _Exchange(scope, receive, send, rule)
        declared = _content_length(scope)
        if rule.limit is not None and declared is not None and declared > rule.limit:
            await exchange.answer(rule.too_large())
            return
        try:
            await self.app(scope, exchange.receive, exchange.send)
        except RegistryError as error:
            # The refusal itself, let through by a handler that did not catch it: answered here.
            if error is not exchange.refused or exchange.started:
                raise
        finally:
            exchange.close()
        if exchange.refused is not None and not exchange.answered and not exchange.started:
            await exchange.answer(exchange.refused)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            # ASCII digits only: a malformed header is the handler's to refuse.
            return int(value) if value.isdigit() else None
    return None


class _Watchdog:
    """Cuts off a wait for the body that outlasts its time. One timer per request, armed
    at the first wait and moved on when it fires early, rather than one per piece: a timer
    per piece (`asyncio.timeout`) measured 10-15 µs, and an upload arrives in thousands."""

    def __init__(self, timeout: float, idle: bool):
        self._timeout = timeout
        self._idle = idle  # each wait has `timeout`; else all of them together
        self._loop = asyncio.get_running_loop()
        self._task: asyncio.Task[Any] | None = None  # the request's, which waits; set at the first wait
        self._deadline = 0.0  # of the whole body: `timeout` after the first wait
        self._since: float | None = None  # when the wait in progress began
        self._timer: asyncio.TimerHandle | None = None
        self._cancelling: int | None = None  # the task's cancellations before ours, once it is ours

    def _due(self, since: float) -> float:
        return since + self._timeout if self._idle else self._deadline

    async def wait(self, receive: Receive) -> Message:
        """`receive()`, or TimeoutError once the wait outlasts its time."""
        now = self._loop.time()
        if self._task is None:
            self._task = asyncio.current_task()
            self._deadline = now + self._timeout
        elif not self._idle and now >= self._deadline:
            raise TimeoutError
        self._since = now
        if self._timer is None:
            self._timer = self._loop.call_at(self._due(now), self._fire)
        try:
            return await receive()
        except asyncio.CancelledError:
            cancelling, self._cancelling = self._cancelling, None
            if cancelling is not None and self._task is not None and self._task.uncancel() <= cancelling:
                raise TimeoutError from None
            raise  # someone else's cancellation
        finally:
            self._since = None

    def _fire(self) -> None:
        self._timer = None
        if self._since is None or self._task is None:
            return  # the app is busy with what came, not waiting: the next wait arms it again
        due = self._due(self._since)
        if self._loop.time() < due:
            self._timer = self._loop.call_at(due, self._fire)
            return
        self._cancelling = self._task.cancelling()
        self._task.cancel()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Exchange:
    """One request's body, read under its rule, and its answer."""

    def __init__(self, scope: Scope, receive: Receive, send: Send, rule: _Rule):
        self._scope = scope
        self._receive = receive
        self._send = send
        self._rule = rule
        self._watchdog = _Watchdog(rule.timeout, rule.idle)
        self.received = 0
        self.complete = False  # the whole body has arrived (or the client left)
        self.refused: BodyTooLarge | BodyTimeout | None = None
        self.started = False  # the app's answer has begun
        self.answered = False  # the refusal was answered here, the app's answer dropped

    async def receive(self) -> Message:
        if self.complete:
            return await self._receive()  # only the client's leaving can come now
        if self.refused is not None:
            raise self.refused
        try:
            return await self._next()
        except (BodyTooLarge, BodyTimeout) as error:
            self.refused = error
            raise

    async def _next(self) -> Message:
        """The next piece of the body, under the rule's limit and timeout."""
        rule = self._rule
        try:
            message = await self._watchdog.wait(self._receive)
        except TimeoutError:
            self._watchdog.stop()
            raise self._timed_out() from None
        if message["type"] != "http.request":
            self._end()  # http.disconnect
            return message
        self.received += len(message.get("body", b""))
        if not message.get("more_body", False):
            self._end()
        if rule.limit is not None and self.received > rule.limit:
            self._watchdog.stop()
            raise rule.too_large()
        return message

    def _end(self) -> None:
        self.complete = True
        self._watchdog.stop()

    def close(self) -> None:
        self._watchdog.stop()

    def _timed_out(self) -> BodyTimeout:
        seconds = f"{self._rule.timeout:g}"
        if self._rule.idle:
            text = f"no bytes of the request body arrived for {seconds} s (after {self.received}); cut off"
        else:
            text = f"the request body did not arrive within {seconds} s ({self.received} bytes came); cut off"
        return BodyTimeout(text, detail={"timeout_seconds": self._rule.timeout, "received": self.received})

    async def send(self, message: Message) -> None:
        if self.answered:
            return
        if message["type"] == "http.response.start":
            if self.refused is None and not self.complete:
                await self._drain()
            if self.refused is not None:
                await self.answer(self.refused)
                return
            self.started = True
        await self._send(message)

    async def _drain(self) -> None:
        """Read on (dropping the bytes) until the body has arrived, up to a bound; a body
        that passes its limit or stalls meanwhile is left, and the answer goes as it is."""
        start = self.received
        while not self.complete and self.received - start <= _DRAIN_LIMIT:
            try:
                await self._next()
            except (BodyTooLarge, BodyTimeout):
                return

    async def answer(self, error: RegistryError) -> None:
        self.answered = True
        await _render(self._scope["path"], error)(self._scope, self._receive, self._send)


def _render(path: str, error: RegistryError) -> Response:
    if path.startswith(_HARBOR_PREFIXES):
        return error_response(error.status, error.text, error.headers)
    return render_error(error)
