"""`/service/token`: Docker token authentication's token endpoint.

GET with optional Basic credentials and `scope` parameters (docker, podman, skopeo), and
the OAuth2 POST form (`grant_type=password` or `refresh_token`) that docker and
containerd use. Unknown or refused scopes are left out of the token, not errors: the
registry refuses the request that needed them. A request that is malformed (a scope
outside the grammar of docker/distribution's scope.md) or asks for another `service`'s
token is refused with 400 before any credentials are looked at.

Tokens are also issued for one foreign service, Notary (`notary_service`): its scopes name
GUNs, `<registry host:port>/<repository>`; the grant is computed for the repository
exactly as for a registry token, and given back under the GUN, in a token whose audience
is Notary's service.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from portside.auth.access import Access
from portside.auth.controller import AccessController
from portside.auth.principal import ANONYMOUS, Principal
from portside.auth.tokens import ForeignService
from portside.errors import RegistryError, Unauthorized, Unsupported
from portside.http.v2.common import render_error

__all__ = ["token_endpoint"]


class UnsupportedGrant(Unsupported):
    """OAuth2 (RFC 6749 §5.2) answers an unknown grant type as a client error."""

    status = 400


class InvalidTokenRequest(Unsupported):
    """A malformed scope, or a token asked for another service: OAuth2's invalid_request
    (RFC 6749 §5.2), a 400 with the spec's code for an invalid set of parameters."""

    status = 400


# scope.md: resourcetype [ "(" class ")" ] ":" resourcename ":" action [ "," action ]*, the
# name a reference's (an optional host[:port] first). "*" is the catalog's action.
_TYPE = re.compile(r"[a-z0-9]+(?:\([a-z0-9]+\))?")
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_NAME = re.compile(rf"(?:{_HOST_PART}(?:\.{_HOST_PART})*(?::[0-9]+)?/)?{_COMPONENT}(?:/{_COMPONENT})*")
_ACTION = re.compile(r"[a-z]+|\*")


def _parse_scopes(values: Iterable[str]) -> list[Access]:
    wanted: list[Access] = []
    for value in values:
        for scope in value.split():
            resource_type, sep, rest = scope.partition(":")
            name, sep2, actions_text = rest.rpartition(":")
            # An empty action between commas ("pull,") is tolerated; no action at all is not.
            actions = [action for action in actions_text.split(",") if action]
            if (
                not sep
                or not sep2
                or not _TYPE.fullmatch(resource_type)
                or not _NAME.fullmatch(name)
                or not actions
                or not all(_ACTION.fullmatch(action) for action in actions)
            ):
                raise InvalidTokenRequest(
                    f"invalid scope {scope[:200]!r}: expected TYPE:NAME:ACTION[,ACTION...], as in"
                    " repository:library/alpine:pull,push"
                )
            # "repository(plugin):name" carries a class; the class does not change access.
            resource_type = resource_type.split("(", 1)[0]
            wanted.extend(Access(resource_type, name, action) for action in actions)
    return wanted


def _check_service(controller: AccessController, service: str | None) -> ForeignService | None:
    """A request may leave `service` out; one that names a service names this one or the
    foreign service (returned)."""
    foreign = controller.tokens.foreign
    if foreign is not None and service == foreign.name:
        return foreign
    if service is not None and service != controller.tokens.service:
        raise InvalidTokenRequest(
            f"this token endpoint issues tokens for service {controller.tokens.service!r}, not {service[:200]!r}"
        )
    return None


def _controller(request: Request) -> AccessController:
    return request.app.state.services.token_issuer  # type: ignore[no-any-return]


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


async def _answer(
    controller: AccessController,
    who: Principal,
    wanted: list[Access],
    refresh: bool,
    foreign: ForeignService | None = None,
) -> Response:
    if foreign is None:
        grant = await controller.grant(who, wanted)
        issued = controller.tokens.issue(who, grant.granted, grant.project_ids or {})
    else:
        # The foreign service's names, as Portside's repositories; others are left out.
        local = [
            Access(a.resource_type, name, a.action)
            for a in wanted
            if a.resource_type == "repository" and (name := foreign.local(a.name)) is not None
        ]
        grant = await controller.grant(who, local, creating=False)
        granted = [Access(a.resource_type, foreign.foreign(a.name), a.action) for a in grant.granted]
        issued = controller.tokens.issue(who, granted, grant.project_ids or {}, audience=foreign.name)
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
            foreign = _check_service(controller, form.get("service"))
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
            return await _answer(controller, who, wanted, offline, foreign)
        foreign = _check_service(controller, request.query_params.get("service"))
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
        return await _answer(controller, who, wanted, offline, foreign)
    except RegistryError as error:
        return render_error(error)
