"""What every `/v2` handler shares: services, parsed names, bodies, the error renderer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portside.auth.access import Credentials, Grant
from portside.digits import parse_decimal
from portside.errors import RegistryError, SizeInvalid
from portside.http.services import Services

__all__ = [
    "services",
    "repo_name",
    "granted_project",
    "content_length",
    "read_limited",
    "render_error",
    "credentials",
    "accepted_media_types",
    "API_VERSION_HEADER",
]

API_VERSION_HEADER = ("docker-distribution-api-version", "registry/2.0")


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


def repo_name(request: Request) -> str:
    """The repository, already checked against the spec's grammar by the router."""
    return str(request.path_params["name"])


def granted_project(request: Request) -> int | None:
    """The id of the repository's project the caller was granted access in (None without
    access control): writes are bound to it (meta/stores.py)."""
    grant: Grant = request.state.grant
    return grant.project_id(repo_name(request))


def credentials(authorization: str | None, client: str) -> Credentials:
    """What an Authorization header (if any) presents, from `client`'s address."""
    if not authorization:
        return Credentials(client=client)
    scheme, _, value = authorization.partition(" ")
    return Credentials(scheme.lower(), value.strip(), client)


def accepted_media_types(accept_headers: Iterable[str]) -> list[str]:
    """The media types that Accept headers list, parameters (q=…) left off."""
    values = []
    for header in accept_headers:
        for item in header.split(","):
            media_type = item.split(";")[0].strip()
            if media_type:
                values.append(media_type)
    return values


def content_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    length = parse_decimal(value)
    if length is None:
        raise SizeInvalid(f"invalid Content-Length {value!r}")
    return length


async def read_limited(request: Request, limit: int, too_large: RegistryError) -> bytes:
    """The whole body, refusing (without reading on) once it passes `limit` bytes."""
    length = content_length(request)
    if length is not None and length > limit:
        raise too_large
    parts: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise too_large
        parts.append(chunk)
    return b"".join(parts)


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


def render_error(error: RegistryError, head: bool = False) -> Response:
    headers: dict[str, Any] = dict(error.headers)
    if head:
        # HEAD answers carry no body; the status and headers say it all.
        return Response(status_code=error.status, headers=headers)
    return JSONResponse(error.body(), status_code=error.status, headers=headers)
