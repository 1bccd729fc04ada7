"""Build the management API: a FastAPI app mounted at /api/v2.0, and /c/login, /c/log_out.

The OpenAPI document of the implemented subset is served at /api/v2.0/openapi.json and
browsable at /api/v2.0/docs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from portside.errors import BadRequest
from portside.http.api import (
    artifacts,
    audit,
    cve_allowlist,
    cve_export,
    login,
    members,
    preheat,
    projects,
    quotas,
    registries,
    registry_failover,
    replication,
    repositories,
    robots,
    scans,
    system,
    systeminfo,
    trust,
    users,
)
from portside.http.api.context import API_PREFIX
from portside.http.api.errors import install_error_handlers
from portside.http.api.services import ManagementServices
from portside.http.assets import asset_url

__all__ = ["API_PREFIX", "build_management_api", "management_routes"]

Endpoint = Callable[[Request], Awaitable[Response]]


def build_management_api(management: ManagementServices) -> FastAPI:
    api = FastAPI(
        title="Portside management API",
        version="2.0",
        description="A subset of Harbor's API v2.0. Authenticate with HTTP Basic (users and robots) "
        "or the session cookie from /c/login (then send X-Harbor-CSRF-Token on changes).",
        openapi_url="/openapi.json",
        docs_url=None,  # served below, from the package's own copy of Swagger UI
        redoc_url=None,
        dependencies=[Depends(_no_nul)],
    )
    install_error_handlers(api)
    api.add_api_route("/docs", _docs, methods=["GET"], include_in_schema=False)
    api.router.redirect_slashes = False
    # Artifacts before repositories: see http/api/artifacts.py; scans before artifacts: see
    # http/api/scans.py.
    routers = (
        users,
        projects,
        members,
        robots,
        scans,
        cve_export,
        cve_allowlist,
        trust,
        artifacts,
        repositories,
        audit,
        quotas,
        registries,
        registry_failover,
        preheat,
        replication,
        system,
        systeminfo,
    )
    for module in routers:
        api.include_router(module.router)
    api.state.management = management
    return api


async def _docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url=f"{API_PREFIX}/openapi.json",
        title="Portside management API",
        swagger_js_url=asset_url("swagger-ui-dist", "swagger-ui-bundle.js"),
        swagger_css_url=asset_url("swagger-ui-dist", "swagger-ui.css"),
        swagger_favicon_url=asset_url("swagger-ui-dist", "favicon-32x32.png"),
        # Swagger UI would show a badge from validator.swagger.io.
        swagger_ui_parameters={"validatorUrl": None},
    )


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
