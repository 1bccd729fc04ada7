"""/c/login and /c/log_out: Harbor's web sign-in with a session cookie.

The form carries `principal` and `password`, and `totp` when the user enabled TOTP.
The answer sets the `sid` cookie and gives the CSRF token in X-Harbor-CSRF-Token.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from portside.errors import BadRequest, RegistryError
from portside.http.api.context import CSRF_HEADER, SESSION_COOKIE, client_address, services
from portside.http.api.errors import error_response
from portside.mgmt.sessions import OpenSession

__all__ = ["login", "log_out", "set_session_cookie"]


async def _form(request: Request) -> dict[str, str]:
    # Its size and how long it may take to arrive are bounded before this (http/bodies.py).
    body = await request.body()
    return {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}


async def login(request: Request) -> Response:
    try:
        form = await _form(request)
        if not form.get("principal") or "password" not in form:
            raise BadRequest("principal and password are required")
        svc = services(request)
        opened = await svc.sessions.login(
            form["principal"], form["password"], form.get("totp"), client_address(request)
        )
    except RegistryError as error:
        return error_response(error.status, error.text, error.headers)
    response = Response(status_code=200, headers={CSRF_HEADER: opened.csrf_token})
    set_session_cookie(response, opened, secure=svc.secure_cookies)
    return response


def set_session_cookie(response: Response, opened: OpenSession, *, secure: bool) -> None:
    """The `sid` cookie of a session just opened (here and by the UI's sign-in page)."""
    response.set_cookie(
        SESSION_COOKIE,
        opened.session_id,
        max_age=opened.max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )


async def log_out(request: Request) -> Response:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id:
        await services(request).sessions.logout(session_id)
    response = Response(status_code=200)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
