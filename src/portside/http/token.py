"""`/service/token`: Docker token authentication's token endpoint.

GET with optional Basic credentials and `scope` parameters (docker, podman, skopeo), and
the OAuth2 POST form (`grant_type=password` or `refresh_token`) that docker and
containerd use. Unknown or refused scopes are left out of the token, not errors: the
registry refuses the request that needed them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portside.auth.access import Access
from portside.auth.controller import AccessController
from portside.auth.principal import ANONYMOUS, Principal
from portside.errors import RegistryError, Unauthorized, Unsupported
from portside.http.v2.common import render_error

__all__ = ["token_endpoint"]


class UnsupportedGrant(Unsupported):
    """OAuth2 (RFC 6749 §5.2) answers an unknown grant type as a client error."""

    status = 400


def _parse_scopes(values: Iterable[str]) -> list[Access]:
    wanted: list[Access] = []
    for value in values:
        for scope in value.split():
            resource_type, sep, rest = scope.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not sep or not sep2 or not name or not actions:
                raise Unsupported(f"invalid scope {scope!r}")
            # "repository(plugin):name" carries a class; the class does not change access.
            resource_type = resource_type.split("(", 1)[0]
            wanted.extend(Access(resource_type, name, action) for action in actions.split(",") if action)
    return wanted


def _controller(request: Request) -> AccessController:
    return request.app.state.services.token_issuer  # type: ignore[no-any-return]


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


async def _answer(controller: AccessController, who: Principal, wanted: list[Access], refresh: bool) -> Response:
    grant = await controller.grant(who, wanted)
    issued = controller.tokens.issue(who, grant.granted, grant.project_ids or {})
    body: dict[str, object] = {
        "token": issued.token,
        "access_token": issued.token,
        "expires_in": issued.expires_in,
        "issued_at": datetime.fromtimestamp(issued.issued_at, UTC).isoformat().replace("+00:00", "Z"),
    }
    if refresh and who.authenticated:
        body["refresh_token"] = controller.tokens.issue_refresh(who).token
    return JSONResponse(body, headers={"cache-control": "no-store"})


async def token_endpoint(request: Request) -> Response:
    controller = _controller(request)
    try:
        if request.method == "POST":
            # The OAuth2 token request is always urlencoded; no multipart parser needed.
            form = ImmutableMultiDict(
                parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
            )
            wanted = _parse_scopes(form.getlist("scope"))
            grant_type = form.get("grant_type")
            offline = form.get("access_type") == "offline"
            if grant_type == "password":
                who = await controller.authenticate(
                    str(form.get("username", "")), str(form.get("password", "")), _client(request)
                )
            elif grant_type == "refresh_token":
                who = await controller.account_of(controller.tokens.verify_refresh(str(form.get("refresh_token", ""))))
                offline = True  # the client keeps using its refresh token
            else:
                raise UnsupportedGrant(f"unsupported grant_type {grant_type!r}")
            return await _answer(controller, who, wanted, offline)
        wanted = _parse_scopes(request.query_params.getlist("scope"))
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "basic" and value:
            who = await controller.principal_from_basic(value.strip(), _client(request), audit=True)
        elif header:
            raise Unauthorized("the token endpoint takes Basic credentials")
        else:
            who = ANONYMOUS
        offline = request.query_params.get("offline_token", "").lower() == "true"
        return await _answer(controller, who, wanted, offline)
    except RegistryError as error:
        return render_error(error)
