"""The UI's Starlette app. It answers every path no API route takes (`http.app` hands it
the router's misses), so `/` and the pages live beside `/v2` and `/api/v2.0`.

Every answer carries a strict Content-Security-Policy (no inline script or style, nothing
from another origin, no framing) and `nosniff`. Errors are pages that say what happened
in words, with the status the API would answer.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portside.errors import RegistryError
from portside.http.api.services import ManagementServices
from portside.http.services import Services
from portside.ui.assets import ui_asset_routes
from portside.ui.render import page
from portside.ui.views import (
    account,
    admin,
    admin_preheat,
    admin_registries,
    admin_replication,
    admin_scanners,
    admin_security,
    admin_trust,
    artifacts,
    cve_exports,
    home,
    preheat,
    projects,
    repositories,
    robots,
    search,
)
from portside.ui.visitor import SignInRequired

__all__ = ["build_pages", "CONTENT_SECURITY_POLICY"]

log = logging.getLogger("portside.ui")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"same-origin"),
]
_PAGES_NOT_CACHED = (b"cache-control", b"no-store")

_TITLES = {
    400: "That did not work",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not possible here",
    408: "Too slow",
    409: "Already there",
    412: "Not allowed now",
    413: "Too large",
    429: "Too many attempts",
    503: "Try again shortly",
    507: "Storage is full",
}


class _SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ()), *_HEADERS]
                # Pages show what one visitor may see: no shared cache may keep them.
                if not any(name == b"cache-control" for name, _ in headers):
                    headers.append(_PAGES_NOT_CACHED)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


async def error_page(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    response = await page(
        request,
        "error.html",
        {"status": status, "title": _TITLES.get(status, "Something went wrong"), "message": message},
        status=status,
    )
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            response.headers[name] = value
    return response


async def _registry_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RegistryError)
    if exc.status == 401:
        return _to_sign_in(request)
    return await error_page(request, exc.status, exc.text, exc.headers)


def _to_sign_in(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    url = f"/sign-in?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


async def _sign_in_required(request: Request, exc: Exception) -> Response:
    return _to_sign_in(request)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    messages = {404: f"There is no page at {request.url.path}.", 405: "This page does not take that request."}
    return await error_page(request, exc.status_code, messages.get(exc.status_code, str(exc.detail)))


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error in %s %s", request.method, request.url.path, exc_info=exc)
    return await error_page(request, 500, "Portside could not answer this page. The error is in its log.")


def build_pages(management: ManagementServices, registry: Services) -> ASGIApp:
    routes: list[BaseRoute] = [*ui_asset_routes()]
    for area in (
        home,
        account,
        projects,
        preheat,
        robots,
        repositories,
        artifacts,
        search,
        admin,
        admin_scanners,
        admin_registries,
        admin_replication,
        admin_preheat,
        admin_security,
        admin_trust,
        cve_exports,
    ):
        routes.extend(area.routes)
    app = Starlette(
        routes=routes,
        exception_handlers={
            RegistryError: _registry_error,
            SignInRequired: _sign_in_required,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
    app.router.redirect_slashes = False
    app.state.management = management
    app.state.registry = registry
    return _SecurityHeaders(app)
