"""Who is looking at a page: the principal of the web session's cookie, or nobody.

Changes made from a page need the session's CSRF token, in the form's `csrf_token` field
or (from htmx) in X-Harbor-CSRF-Token, compared in constant time. The sign-in form, sent
before there is a session, carries a token of its own that a cookie set with the form
repeats: a cross-site page can make a browser send the cookie but cannot read it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from portside.auth.principal import ANONYMOUS, Principal
from portside.errors import Forbidden
from portside.http.api.context import CSRF_HEADER, SESSION_COOKIE
from portside.http.api.services import ManagementServices
from portside.mgmt.sessions import SessionService

__all__ = ["Visitor", "SignInRequired", "visitor", "management", "check_csrf", "SIGN_IN_CSRF_COOKIE"]

SIGN_IN_CSRF_COOKIE = "sign_in_csrf"
CSRF_FIELD = "csrf_token"


class SignInRequired(Exception):
    """The page needs a signed-in user; the error handler sends the browser to sign in."""


@dataclass(frozen=True, slots=True)
class Visitor:
    principal: Principal
    csrf_token: str | None  # the session's; None when nobody is signed in

    @property
    def signed_in(self) -> bool:
        return self.principal.user is not None

    @property
    def sysadmin(self) -> bool:
        return self.principal.sysadmin


def management(request: Request) -> ManagementServices:
    return request.app.state.management  # type: ignore[no-any-return]


async def visitor(request: Request) -> Visitor:
    """The visitor of this request, resolved once and kept on the request."""
    known = getattr(request.state, "visitor", None)
    if isinstance(known, Visitor):
        return known
    found = Visitor(ANONYMOUS, None)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        signed = await management(request).sessions.resolve(session_id)
        if signed is not None:
            found = Visitor(signed.principal, signed.csrf_token)
    request.state.visitor = found
    return found


async def signed_in_user(request: Request) -> Visitor:
    """The visitor, who must be signed in (else `SignInRequired`)."""
    found = await visitor(request)
    if not found.signed_in:
        raise SignInRequired()
    return found


def check_csrf(request: Request, who: Visitor, form: Mapping[str, str]) -> None:
    """Refuse a change whose CSRF token is not the session's (403, as the API does)."""
    presented = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if who.csrf_token is None or not SessionService.csrf_matches(who.csrf_token, presented):
        raise Forbidden("this form has expired or did not come from Portside; reload the page and try again")


def new_sign_in_token() -> str:
    return secrets.token_urlsafe(32)


def check_sign_in_csrf(request: Request, form: Mapping[str, str]) -> None:
    expected = request.cookies.get(SIGN_IN_CSRF_COOKIE)
    if not expected or not SessionService.csrf_matches(expected, form.get(CSRF_FIELD)):
        raise Forbidden("the sign-in form has expired; reload the page and try again")
