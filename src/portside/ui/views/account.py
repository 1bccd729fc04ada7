"""Pages: signing in and out, and one's own account (profile, password, two-factor sign-in).

Sign-in opens the same web session as `/c/login` (`SessionService.login`, throttled, with
the TOTP code when the user turned it on) and sets the same `sid` cookie. The form is sent
before there is a session, so it carries a token of its own, repeated by a cookie
(`visitor.check_sign_in_csrf`). The account pages call the services `/api/v2.0/users`
calls; the rules (old password, password strength, codes, throttling) are theirs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import segno
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.errors import BadRequest, Forbidden, TooManyRequests, Unauthorized
from portside.http.api.context import SESSION_COOKIE, client_address
from portside.http.api.login import set_session_cookie
from portside.mgmt.totp import totp_enabled
from portside.ui.render import page, read_form, redirect
from portside.ui.visitor import (
    SIGN_IN_CSRF_COOKIE,
    check_csrf,
    check_sign_in_csrf,
    management,
    new_sign_in_token,
    signed_in_user,
    visitor,
)

__all__ = ["routes", "safe_next"]

DEFAULT_NEXT = "/projects"
_SIGN_IN_PATH = "/sign-in"
_SIGN_IN_TOKEN_SECONDS = 3600


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this site (one leading "/"), else the projects."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return DEFAULT_NEXT
    if any(ch < " " or ch == "\x7f" or ch == "\\" for ch in target):
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return DEFAULT_NEXT
    return target


# --- signing in and out -------------------------------------------------------------


async def _sign_in_form(
    request: Request,
    *,
    next_url: str,
    username: str = "",
    message: str | None = None,
    need_code: bool = False,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    token = new_sign_in_token()
    response = await page(
        request,
        "account/sign_in.html",
        {
            "sign_in_token": token,
            "next_url": next_url,
            "username": username,
            "message": message,
            "need_code": need_code,
        },
        status=status,
    )
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE,
        token,
        max_age=_SIGN_IN_TOKEN_SECONDS,
        path=_SIGN_IN_PATH,
        httponly=True,
        samesite="strict",
        secure=management(request).secure_cookies,
    )
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            response.headers[name] = value
    return response


async def sign_in(request: Request) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    if (await visitor(request)).signed_in:
        return redirect(next_url)
    return await _sign_in_form(request, next_url=next_url)


async def sign_in_submit(request: Request) -> Response:
    form = await read_form(request)
    check_sign_in_csrf(request, form)
    next_url = safe_next(form.get("next"))
    username = form.get("username", "")
    password = form.get("password", "")
    code = form.get("code", "").strip() or None
    if not username or not password:
        return await _sign_in_form(
            request, next_url=next_url, username=username, message="Enter your username and password.", status=400
        )
    services = management(request)
    try:
        opened = await services.sessions.login(username, password, code, client_address(request))
    except TooManyRequests as error:
        return await _sign_in_form(
            request,
            next_url=next_url,
            username=username,
            message=_sentence(error.text),
            status=429,
            headers=error.headers,
        )
    except Unauthorized as error:
        code_needed = isinstance(error.detail, dict) and error.detail.get("totp") == "required"
        if code_needed and code is None:
            message = "This account asks for an authentication code: enter your password and the code from your app."
        elif code_needed:
            message = "The authentication code is not right (or was used already). Enter your password and a new code."
        else:
            message = "The username or password is not right."
        return await _sign_in_form(
            request, next_url=next_url, username=username, message=message, need_code=code_needed, status=401
        )
    previous = request.cookies.get(SESSION_COOKIE)
    if previous:  # a session this browser had before is not carried on
        await services.sessions.logout(previous)
    response = redirect(next_url)
    set_session_cookie(response, opened, secure=services.secure_cookies)
    response.delete_cookie(SIGN_IN_CSRF_COOKIE, path=_SIGN_IN_PATH)
    return response


async def sign_out(request: Request) -> Response:
    form = await read_form(request)
    who = await visitor(request)
    if who.signed_in:
        check_csrf(request, who, form)
        session_id = request.cookies.get(SESSION_COOKIE)
        if session_id:
            await management(request).sessions.logout(session_id)
    response = redirect(_SIGN_IN_PATH, notice="You are signed out." if who.signed_in else None)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- the account --------------------------------------------------------------------


async def profile(request: Request) -> Response:
    who = await signed_in_user(request)
    user = await management(request).users.current(who.principal)
    return await page(request, "account/profile.html", {"user": user, "two_factor": totp_enabled(user)})


async def _password_form(request: Request, errors: Mapping[str, str] | None = None, status: int = 200) -> Response:
    return await page(request, "account/password.html", {"errors": dict(errors or {})}, status=status)


async def password(request: Request) -> Response:
    await signed_in_user(request)
    return await _password_form(request)


async def password_submit(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    old, new, repeated = form.get("old_password", ""), form.get("new_password", ""), form.get("repeat_password", "")
    if new != repeated:
        return await _password_form(request, {"repeat_password": "The two new passwords are not the same."}, 400)
    user_id = who.principal.user_id
    assert user_id is not None  # signed in: a user
    try:
        await management(request).users.change_password(who.principal, user_id, old, new)
    except Forbidden as error:
        return await _password_form(request, {"old_password": _sentence(error.text)}, error.status)
    except BadRequest as error:
        return await _password_form(request, {"new_password": _sentence(error.text)}, error.status)
    # A new password ends the user's web sessions (UserService.set_password), this one too.
    response = redirect(_SIGN_IN_PATH, notice="Your password is changed. Sign in with the new one.")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _qr_svg(uri: str) -> str:
    """The otpauth:// URI as an SVG QR code, with no style (the CSP allows none inline)."""
    return str(
        segno.make(uri, error="m").svg_inline(
            scale=5, border=4, dark="#000", light="#fff", omitsize=True, svgclass="qr", lineclass=None
        )
    )


async def _two_factor_page(
    request: Request,
    *,
    enabled: bool,
    enrolment: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "enabled": enabled,
        "enrolment": None,
        "errors": dict(errors or {}),
    }
    if enrolment:
        context["enrolment"] = {**enrolment, "qr": _qr_svg(enrolment["uri"])}
    return await page(request, "account/two_factor.html", context, status=status)


async def two_factor(request: Request) -> Response:
    who = await signed_in_user(request)
    user = await management(request).users.current(who.principal)
    return await _two_factor_page(request, enabled=totp_enabled(user))


async def two_factor_submit(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    totp = management(request).totp
    action = form.get("action", "")
    code = form.get("code", "").strip()
    if action == "start":
        try:
            started = await totp.start(who.principal)
        except BadRequest as error:
            return await _two_factor_page(request, enabled=True, errors={"start": _sentence(error.text)}, status=400)
        return await _two_factor_page(request, enabled=False, enrolment={"secret": started.secret, "uri": started.uri})
    if action == "confirm":
        try:
            await totp.confirm(who.principal, code)
        except BadRequest as error:
            # Shown again as it was sent (the pending secret stays the one stored).
            secret, uri = form.get("secret", ""), form.get("uri", "")
            enrolment = {"secret": secret, "uri": uri} if uri.startswith("otpauth://") and secret else None
            return await _two_factor_page(
                request, enabled=False, enrolment=enrolment, errors={"code": _sentence(error.text)}, status=400
            )
        return redirect("/account/two-factor", notice="Two-factor sign-in is on: signing in now asks for a code.")
    if action == "disable":
        try:
            await totp.disable(who.principal, code or None, from_session=True, client=client_address(request))
        except (Unauthorized, TooManyRequests) as error:
            message = "The code is not right (or was used already)." if isinstance(error, Unauthorized) else error.text
            response = await _two_factor_page(
                request, enabled=True, errors={"disable_code": _sentence(message)}, status=error.status
            )
            if "Retry-After" in error.headers:
                response.headers["Retry-After"] = error.headers["Retry-After"]
            return response
        return redirect("/account/two-factor", notice="Two-factor sign-in is off.")
    raise BadRequest("this form asks for nothing Portside knows")


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


routes: list[BaseRoute] = [
    Route("/sign-in", sign_in, methods=["GET"]),
    Route("/sign-in", sign_in_submit, methods=["POST"]),
    Route("/sign-out", sign_out, methods=["POST"]),
    Route("/account", profile, methods=["GET"]),
    Route("/account/password", password, methods=["GET"]),
    Route("/account/password", password_submit, methods=["POST"]),
    Route("/account/two-factor", two_factor, methods=["GET"]),
    Route("/account/two-factor", two_factor_submit, methods=["POST"]),
]
