"""Build the management API: a FastAPI app mounted at /api/v2.0, and /c/login, /c/log_out.

The OpenAPI document of the implemented subset is served at /api/v2.0/openapi.json and
browsable at /api/v2.0/docs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from portside.errors import BadRequest
from portside.http.api import (
    artifacts,
    audit,
    login,
    members,
    projects,
    quotas,
    repositories,
    robots,
    system,
    users,
)
from portside.http.api.errors import install_error_handlers
from portside.http.api.services import ManagementServices

__all__ = ["API_PREFIX", "build_management_api", "management_routes"]

API_PREFIX = "/api/v2.0"
Endpoint = Callable[[Request], Awaitable[Response]]


def build_management_api(management: ManagementServices) -> FastAPI:
    api = FastAPI(
        title="Portside management API",
        version="2.0",
        description="A subset of Harbor's API v2.0. Authenticate with HTTP Basic (users and robots) "
        "or the session cookie from /c/login (then send X-Harbor-CSRF-Token on changes).",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
        dependencies=[Depends(_no_nul)],
    )
    install_error_handlers(api)
    api.router.redirect_slashes = False
    # Artifacts before repositories: see http/api/artifacts.py.
    for module in (users, projects, members, robots, artifacts, repositories, audit, quotas, system):
        api.include_router(module.router)
    api.state.management = management
    return api


def _no_nul(request: Request) -> None:
    """No name, id or query this API takes may hold NUL (no stored text does, and PostgreSQL
    refuses it in any text it is asked to compare): refused once, here, for every route."""
    query = request.query_params.multi_items()
    if "\0" in request.scope["path"] or any("\0" in key or "\0" in value for key, value in query):
        raise BadRequest("NUL characters are not allowed in paths or query parameters")


def management_routes(management: ManagementServices) -> list[BaseRoute]:
    api = build_management_api(management)
    return [
        Mount(API_PREFIX, app=api),
        Route("/c/login", _with(management, login.login), methods=["POST"]),
        Route("/c/log_out", _with(management, login.log_out), methods=["GET", "POST"]),
    ]


def _with(management: ManagementServices, endpoint: Endpoint) -> Endpoint:
    """The /c routes run on the outer app; hand them the services the same way."""

    async def wrapped(request: Request) -> Response:
        request.state.management = management
        return await endpoint(request)

    return wrapped
