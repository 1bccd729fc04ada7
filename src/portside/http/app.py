"""Build the ASGI application from wired services."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portside.errors import NameUnknown, RegistryError, Unsupported
from portside.http.assets import asset_routes
from portside.http.bodies import BodyLimits
from portside.http.health import healthz, readyz
from portside.http.mirrors import MirrorRoutes
from portside.http.requestlog import RequestLog
from portside.http.services import Services
from portside.http.token import token_endpoint
from portside.http.v2.common import API_VERSION_HEADER, render_error
from portside.http.v2.fastpath import FastReads
from portside.http.v2.routes import v2_routes

__all__ = ["build_app"]

log = logging.getLogger("portside.http")


class _ApiVersionHeader:
    """Every `/v2` answer says which API it speaks, as Distribution's clients check."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.header = (API_VERSION_HEADER[0].encode(), API_VERSION_HEADER[1].encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v2"):
            await self.app(scope, receive, send)
            return

        async def add_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), self.header]
            await send(message)

        await self.app(scope, receive, add_header)


# How long a periodic task's round in progress at shutdown may take to finish before it is
# cut off.
_ROUND_GRACE_SECONDS = 10.0


async def _every(interval: float, task: Callable[[], Awaitable[object]], stopping: asyncio.Event) -> None:
    while not stopping.is_set():
        try:
            await task()
        except Exception:  # a failed round is logged; the next one may succeed
            log.exception("periodic task %s failed", getattr(task, "__name__", task))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    head = request.method == "HEAD"
    if exc.status_code == 405:
        return render_error(Unsupported(f"{request.method} is not supported on {request.url.path}"), head)
    if exc.status_code == 404:
        return render_error(NameUnknown(f"no such endpoint {request.url.path}"), head)
    return render_error(RegistryError(str(exc.detail)), head)


# Paths of the APIs: what no route of theirs takes is their own error (JSON), not a page.
_API_PATHS = ("/v2", "/api/", "/service/", "/c/", "/static/vendor/", "/healthz", "/readyz")


def _pages_or_api_miss(pages: ASGIApp, api_miss: ASGIApp) -> ASGIApp:
    async def default(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope["path"].startswith(_API_PATHS):
            await pages(scope, receive, send)
        else:
            await api_miss(scope, receive, send)

    return default


def build_app(
    services: Services,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    periodic: Sequence[tuple[float, Callable[[], Awaitable[object]]]] = (),
    pages: ASGIApp | None = None,
    mirrors: tuple[Mapping[str, str], Mapping[str, str]] = ({}, {}),
) -> ASGIApp:
    """The whole application; `extra_routes` are other APIs served beside `/v2` (management),
    `periodic` are (interval in seconds, task) pairs run while the server runs, `pages` the
    web UI, which answers the paths no route takes outside the APIs; `mirrors` the
    (namespaces, hosts) whose requests name proxy projects (http/mirrors.py)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        stopping = asyncio.Event()
        tasks = [asyncio.create_task(_every(interval, task, stopping)) for interval, task in periodic]
        yield
        # A round in progress is let finish: one cut off inside a database call can leave
        # its connection to the garbage collector, whose clean-up then reaches a driver
        # thread after the event loop has closed. Only a round that overstays is cut off.
        stopping.set()
        _, overstaying = await asyncio.wait(tasks, timeout=_ROUND_GRACE_SECONDS) if tasks else ((), ())
        for running in overstaying:
            running.cancel()
        # Wait until they have stopped: one cut off inside a database call must be done with
        # its connection before the engine is disposed, or it waits forever.
        await asyncio.gather(*tasks, return_exceptions=True)
        if services.trail is not None:
            await services.trail.close()
        if on_shutdown is not None:
            await on_shutdown()

    routes: list[BaseRoute] = [*v2_routes(), Route("/healthz", healthz), Route("/readyz", readyz), *asset_routes()]
    if services.token_issuer is not None:
        routes.append(Route("/service/token", token_endpoint, methods=["GET", "POST"]))
    routes.extend(extra_routes)
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: _http_error},
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.services = services
    if pages is not None:
        app.router.default = _pages_or_api_miss(pages, app.router.not_found)
    bounded = BodyLimits(
        app,
        max_body_bytes=services.max_body_bytes,
        max_manifest_bytes=services.manifests.max_manifest_bytes,
        timeout_seconds=services.body_timeout_seconds,
    )
    # The fast reads go first: they are GETs and HEADs, whose bodies nobody reads.
    wrapped: ASGIApp = _ApiVersionHeader(FastReads(bounded, services))
    if any(mirrors):
        wrapped = MirrorRoutes(wrapped, *mirrors)
    if services.log_requests:
        wrapped = RequestLog(wrapped)
    return wrapped
