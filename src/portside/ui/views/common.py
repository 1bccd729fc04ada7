"""What every page's view needs: numbers and text from the query string, the paging the
services take, the URLs of projects and repositories, and what the policy lets the visitor
do in a scope (to decide which controls a page offers; the services still decide).
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request

from portside.errors import BadRequest
from portside.mgmt.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Paging
from portside.ui.visitor import Visitor, management

__all__ = ["number", "paging", "query_text", "project_url", "repository_url", "project_tabs", "permissions"]


def number(request: Request, key: str, default: int) -> int:
    text = request.query_params.get(key, "").strip()
    if not text:
        return default
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise BadRequest(f"{key} must be a positive whole number")
    return int(text)


def paging(request: Request, size: int = DEFAULT_PAGE_SIZE) -> Paging:
    return Paging(number(request, "page", 1), min(number(request, "page_size", size), MAX_PAGE_SIZE))


def query_text(request: Request, key: str) -> str:
    return request.query_params.get(key, "").strip()


def project_url(name: str, tab: str = "") -> str:
    return f"/projects/{quote(name, safe='')}" + (f"/{tab}" if tab else "")


def repository_url(project: str, full_name: str) -> str:
    """The repository's page; its name is relative to the project, as in the API."""
    relative = full_name.split("/", 1)[1] if "/" in full_name else full_name
    return f"{project_url(project)}/repositories/{quote(relative, safe='/')}"


def project_tabs(name: str) -> list[tuple[str, str, str]]:
    return [
        ("summary", "Summary", project_url(name)),
        ("repositories", "Repositories", project_url(name, "repositories")),
        ("members", "Members", project_url(name, "members")),
        ("robots", "Robots", project_url(name, "robots")),
        ("logs", "Logs", project_url(name, "logs")),
        ("preheat", "P2P preheat", project_url(name, "preheat")),
        ("settings", "Settings", project_url(name, "settings")),
    ]


async def permissions(request: Request, who: Visitor, scope: str) -> set[tuple[str, str]]:
    """What the policy lets the visitor do in `scope` (nothing for anonymous visitors)."""
    if not who.signed_in:
        return set()
    held = await management(request).permissions.of(who.principal, scope, relative=True)
    return {(h.resource, h.action) for h in held}
