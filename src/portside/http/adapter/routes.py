"""The routes of the scanner adapter API (Harbor's pluggable scanner spec v1.2).

Every request carries the adapter's token, as Harbor sends it for the registration's auth
scheme: `Authorization: Bearer <token>`, `X-ScannerAdapter-API-Key: <token>`, or Basic with
the token as the password. Errors answer in the API's ErrorResponse shape and MIME type."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from portside.errors import RegistryError
from portside.scan.adapter.errors import RequestRefused
from portside.scan.adapter.server import AdapterServer
from portside.scan.adapter.wire import (
    ERROR_MIME,
    METADATA_MIMES,
    SCAN_RESPONSE_MIME,
    Pending,
    error_json,
    metadata_json,
    read_scan_request,
    report_mime,
)

__all__ = ["ADAPTER_PREFIX", "adapter_routes"]

ADAPTER_PREFIX = "/api/v1"


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(error_json(message), status_code=status, media_type=ERROR_MIME, headers=headers)


def _authorized(request: Request, token: bytes) -> bool:
    offered: list[str] = []
    key = request.headers.get("x-scanneradapter-api-key")
    if key:
        offered.append(key)
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        offered.append(value.strip())
    elif scheme.lower() == "basic":
        try:
            offered.append(base64.b64decode(value.strip(), validate=True).decode().partition(":")[2])
        except (binascii.Error, UnicodeDecodeError):
            pass
    # Each offered value is compared in full, in constant time.
    return any(hmac.compare_digest(candidate.encode(), token) for candidate in offered)


class _Guarded:
    """The API's router behind the token check."""

    def __init__(self, router: Router, token: bytes) -> None:
        self._router = router
        self._token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not _authorized(Request(scope), self._token):
            challenge = {"WWW-Authenticate": 'Bearer realm="portside-scanner-adapter"'}
            await _error(401, "a valid scanner adapter token is required", challenge)(scope, receive, send)
            return
        await self._router(scope, receive, send)


def adapter_routes(server: AdapterServer, token: str) -> list[BaseRoute]:
    async def metadata(request: Request) -> Response:
        found = await server.metadata()
        return JSONResponse(metadata_json(found), media_type=METADATA_MIMES[0])

    async def scan(request: Request) -> Response:
        try:
            body = await request.body()
        except RegistryError as error:  # too large, or too slow (the body limits)
            return _error(error.status, error.text)
        try:
            value: Any = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _error(400, "the scan request is no JSON")
        try:
            scan_id = await server.submit(read_scan_request(value))
        except RequestRefused as refused:
            return _error(refused.status, refused.message)
        return JSONResponse({"id": scan_id}, status_code=202, media_type=SCAN_RESPONSE_MIME)

    async def report(request: Request) -> Response:
        scan_id = request.path_params["scan_request_id"]
        try:
            answer = await server.report(
                scan_id, report_mime(request.headers.get("accept")), request.query_params.get("sbom_media_type")
            )
        except RequestRefused as refused:
            return _error(refused.status, refused.message)
        if isinstance(answer, Pending):
            return Response(
                status_code=302,
                headers={"Refresh-After": str(int(answer.retry_after)), "Location": str(request.url)},
            )
        return JSONResponse(answer.body, media_type=answer.mime_type)

    async def not_found(scope: Scope, receive: Receive, send: Send) -> None:
        await _error(404, f"no such endpoint {scope['path']}")(scope, receive, send)

    router = Router(
        routes=[
            Route("/metadata", metadata, methods=["GET"]),
            Route("/scan", scan, methods=["POST"]),
            Route("/scan/{scan_request_id}/report", report, methods=["GET"]),
        ],
        default=not_found,
    )
    router.redirect_slashes = False
    return [Mount(ADAPTER_PREFIX, app=_Guarded(router, token.encode()))]
