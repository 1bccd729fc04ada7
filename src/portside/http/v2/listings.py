"""Tags list and catalog, with `n`/`last` pagination and the `Link` header."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portside.digits import parse_decimal
from portside.errors import PaginationInvalid
from portside.http.v2.common import repo_name, services
from portside.registry.catalog import Page

# Larger pages are cut to this size; the Link header leads on.
MAX_PAGE = 10_000


def _page_params(request: Request) -> tuple[str | None, int | None]:
    last = request.query_params.get("last")
    if last is not None and "\0" in last:
        # No name holds NUL, and PostgreSQL will not compare text that does.
        raise PaginationInvalid("last must not contain NUL characters", detail={"last": last})
    n = request.query_params.get("n")
    if n is None or n == "":
        return last, None
    count = parse_decimal(n)
    if count is None:
        raise PaginationInvalid(f"n must be a non-negative integer, not {n!r}", detail={"n": n})
    return last, min(count, MAX_PAGE)


def _link(path: str, page: Page, n: int | None) -> dict[str, str]:
    if not page.more or n is None or page.last is None:
        return {}
    return {"link": f'<{path}?{urlencode({"n": n, "last": page.last})}>; rel="next"'}


async def list_tags(request: Request) -> Response:
    repo = repo_name(request)
    last, n = _page_params(request)
    page = await services(request).catalog.tags(repo, last, n)
    return JSONResponse({"name": repo, "tags": page.items}, headers=_link(f"/v2/{repo}/tags/list", page, n))


async def catalog(request: Request) -> Response:
    last, n = _page_params(request)
    visible = request.state.grant.visible_projects
    page = await services(request).catalog.repositories(last, n, visible)
    return JSONResponse({"repositories": page.items}, headers=_link("/v2/_catalog", page, n))
