"""What every management handler shares: the caller, paging, headers, time format.

The caller signs in with HTTP Basic (users and robots, throttled by the authenticator)
or the web session cookie. A cookie alone never authorizes a change: unsafe methods also
need the session's CSRF token in X-Harbor-CSRF-Token, which GET answers carry.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Header, Query, Request, Response
from pydantic import Field

from portside.auth.principal import ANONYMOUS, Principal
from portside.digits import parse_decimal
from portside.errors import Forbidden, Unauthorized
from portside.http.api.services import ManagementServices
from portside.meta.accounts import Page
from portside.mgmt.limits import MAX_ID, is_id
from portside.mgmt.paging import MAX_PAGE, MAX_PAGE_SIZE, Paging

__all__ = [
    "API_PREFIX",
    "SESSION_COOKIE",
    "CSRF_HEADER",
    "Caller",
    "Pages",
    "services",
    "client_address",
    "from_session",
    "iso",
    "paged",
    "project_key",
    "IsResourceName",
    "Id",
]

API_PREFIX = "/api/v2.0"
SESSION_COOKIE = "sid"
CSRF_HEADER = "X-Harbor-CSRF-Token"
_SAFE = frozenset({"GET", "HEAD", "OPTIONS"})


def services(request: Request) -> ManagementServices:
    # /c/login runs on the outer app, which hands the services over per request.
    found = getattr(request.state, "management", None)
    return found if found is not None else request.app.state.management  # type: ignore[no-any-return]


def client_address(request: Request) -> str:
    return request.client.host if request.client else ""


async def caller(request: Request, response: Response) -> Principal:
    svc = services(request)
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            username, sep, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise Unauthorized("malformed Basic credentials") from None
        if not sep:
            raise Unauthorized("malformed Basic credentials")
        return await svc.authenticator.login(username, password, client_address(request))
    if header:
        raise Unauthorized(f"unsupported authorization scheme {scheme!r}; use Basic or a session")
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        signed = await svc.sessions.resolve(session_id)
        if signed is not None:
            if request.method not in _SAFE and not svc.sessions.csrf_matches(
                signed.csrf_token, request.headers.get(CSRF_HEADER)
            ):
                raise Forbidden("CSRF token invalid")
            response.headers[CSRF_HEADER] = signed.csrf_token
            request.state.via_session = True
            return signed.principal
    return ANONYMOUS


def from_session(request: Request) -> bool:
    """Whether the caller signed in through a web session (not Basic credentials)."""
    return bool(getattr(request.state, "via_session", False))


Caller = Annotated[Principal, Depends(caller)]


def _paging(
    page: Annotated[int, Query(ge=1, le=MAX_PAGE, description="page number, from 1")] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description="items per page")] = 10,
) -> Paging:
    return Paging(page, page_size)


Pages = Annotated[Paging, Depends(_paging)]
IsResourceName = Annotated[bool, Header(alias="X-Is-Resource-Name")]
# Every id in a path or a body: what the id columns of both databases hold.
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


def project_key(value: str, is_name: bool = False) -> int | str:
    """Harbor's `project_name_or_id`: an id when it is ASCII digits that an id can be, unless
    X-Is-Resource-Name says otherwise; else a name (which a number too large for an id, as
    in Harbor, is looked up as)."""
    number = None if is_name else parse_decimal(value)
    return number if number is not None and is_id(number) else value


def iso(when: datetime | None) -> str | None:
    if when is None:
        return None
    if when.tzinfo is None:  # SQLite hands back naive UTC
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def paged(request: Request, response: Response, page: Page[Any], paging: Paging) -> None:
    """X-Total-Count and Link (rel prev/next), as Harbor sends them."""
    response.headers["X-Total-Count"] = str(page.total)
    links = []
    params = dict(request.query_params)

    def link(number: int, rel: str) -> str:
        query = urlencode({**params, "page": number, "page_size": paging.page_size})
        return f'<{request.url.path}?{query}>; rel="{rel}"'

    if paging.page > 1:
        links.append(link(paging.page - 1, "prev"))
    if paging.page * paging.page_size < page.total:
        links.append(link(paging.page + 1, "next"))
    if links:
        response.headers["Link"] = " , ".join(links)


def without_none(document: dict[str, Any]) -> dict[str, Any]:
    """Harbor omits absent fields rather than sending null."""
    return {k: v for k, v in document.items() if v is not None}


def many(items: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [without_none(i) for i in items]
