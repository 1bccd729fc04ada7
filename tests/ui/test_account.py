"""The account pages on a live server: signing in (with its own CSRF token, a safe `next`,
the TOTP step, throttling), signing out, the profile, the password and two-factor set-up."""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pyotp
import pytest

from tests.access.flow import client
from tests.servers import ADMIN_PASSWORD, Portside

API = "/api/v2.0"
LIMIT = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    running = Portside(
        data_dir=tmp_path_factory.mktemp("ui-account") / "data",
        open_registry=False,
        env={"PORTSIDE_LOGIN_FAILURE_LIMIT": str(LIMIT), "PORTSIDE_LOGIN_FAILURE_WINDOW_SECONDS": "300"},
    )
    running.start()
    yield running
    running.stop()


@pytest.fixture
def browser(server: Portside) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def _new_user(server: Portside, password: str = "Account-Page-1") -> tuple[str, str]:
    name = f"ui{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url, auth=("admin", ADMIN_PASSWORD), timeout=30) as admin:
        r = admin.post(
            f"{API}/users",
            json={"username": name, "password": password, "email": f"{name}@example.com", "realname": "Ada Page"},
        )
        assert r.status_code == 201, r.text
    return name, password


def _token(text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]*)"', text)
    assert found and found.group(1), "no csrf field"
    return html.unescape(found.group(1))


def _sign_in(c: httpx.Client, name: str, password: str, code: str | None = None, next_url: str = "") -> httpx.Response:
    form_page = c.get("/sign-in", params={"next": next_url} if next_url else None)
    assert form_page.status_code == 200, form_page.text
    form = {"csrf_token": _token(form_page.text), "username": name, "password": password, "next": next_url}
    if code is not None:
        form["code"] = code
    return c.post("/sign-in", data=form)


def _enrol_by_api(server: Portside, name: str, password: str) -> str:
    with httpx.Client(base_url=server.url, auth=(name, password), timeout=30) as me:
        secret = me.post(f"{API}/users/current/totp").json()["secret"]
        r = me.put(f"{API}/users/current/totp", json={"code": pyotp.TOTP(secret).at(time.time() - 30)})
        assert r.status_code == 200, r.text
    return str(secret)


def _change(c: httpx.Client, token: str | None, old: str, new: str, repeat: str) -> httpx.Response:
    form = {"old_password": old, "new_password": new, "repeat_password": repeat}
    if token is not None:
        form["csrf_token"] = token
    return c.post("/account/password", data=form)


def _current(server: Portside, sid: str) -> httpx.Response:
    with httpx.Client(base_url=server.url, timeout=30, cookies={"sid": sid}) as c:
        return c.get(f"{API}/users/current")


def test_the_sign_in_form_sets_its_own_csrf_cookie(browser: httpx.Client) -> None:
    answer = browser.get("/sign-in")
    assert answer.status_code == 200
    cookie = answer.headers["set-cookie"].lower()
    assert cookie.startswith("sign_in_csrf=")
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/sign-in" in cookie
    for field in ('for="username"', 'for="password"', 'for="code"', "Authentication code"):
        assert field in answer.text
    assert 'hx-boost="false"' in answer.text
    assert " style=" not in answer.text and "<style" not in answer.text


def test_signing_in_opens_a_session_and_goes_to_the_projects(server: Portside, browser: httpx.Client) -> None:
    name, password = _new_user(server)
    answer = _sign_in(browser, name, password)
    assert answer.status_code == 303 and answer.headers["location"] == "/projects"
    cookie = next(v for v in answer.headers.get_list("set-cookie") if v.startswith("sid="))
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower() and "path=/" in cookie.lower()
    sid = browser.cookies["sid"]
    current = _current(server, sid)
    assert current.status_code == 200 and current.json()["username"] == name
    # Signed in, the form sends one on.
    again = browser.get("/sign-in", params={"next": "/account"})
    assert again.status_code == 303 and again.headers["location"] == "/account"


def test_sign_in_goes_back_where_it_was_asked_from(server: Portside, browser: httpx.Client) -> None:
    asked = browser.get("/account")
    assert asked.status_code == 303 and asked.headers["location"] == "/sign-in?next=%2Faccount"
    name, password = _new_user(server)
    answer = _sign_in(browser, name, password, next_url="/account?tab=x")
    assert answer.headers["location"] == "/account?tab=x"


@pytest.mark.parametrize(
    "target", ["//evil.example", "https://evil.example/", "/\\evil.example", "evil.example", "/\t/evil.example"]
)
def test_next_never_leaves_the_site(server: Portside, browser: httpx.Client, target: str) -> None:
    name, password = _new_user(server)
    answer = _sign_in(browser, name, password, next_url=target)
    assert answer.status_code == 303 and answer.headers["location"] == "/projects"


def test_a_wrong_password_shows_the_form_again(server: Portside) -> None:
    name, _ = _new_user(server)
    with client(server.url, local_address="127.0.0.41") as c:
        answer = _sign_in(c, name, "Not-The-Password-1")
    assert answer.status_code == 401
    assert "The username or password is not right." in answer.text
    assert f'value="{name}"' in answer.text
    password_input = re.search(r'<input id="password"[^>]*>', answer.text)
    assert password_input and "value=" not in password_input.group(0)
    assert 'aria-describedby="sign-in-error"' in answer.text
    assert "sid" not in c.cookies


def test_a_forged_sign_in_is_refused(server: Portside, browser: httpx.Client) -> None:
    name, password = _new_user(server)
    # A cross-site form: a token of its own, but not the cookie the sign-in form set.
    forged = browser.post("/sign-in", data={"csrf_token": "x" * 43, "username": name, "password": password})
    assert forged.status_code == 403
    assert "sid" not in browser.cookies
    # The cookie with another token fails as well.
    browser.get("/sign-in")
    mismatched = browser.post("/sign-in", data={"csrf_token": "y" * 43, "username": name, "password": password})
    assert mismatched.status_code == 403


def test_a_user_with_two_factor_sign_in_needs_the_code(server: Portside) -> None:
    name, password = _new_user(server)
    secret = _enrol_by_api(server, name, password)
    with client(server.url, local_address="127.0.0.42") as c:
        without = _sign_in(c, name, password)
        assert without.status_code == 401
        assert "asks for an authentication code" in without.text
        assert re.search(r'<input id="code"[^>]*\brequired', without.text)
        assert "sid" not in c.cookies
        wrong = _sign_in(c, name, password, code="000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
        assert wrong.status_code == 401 and "authentication code is not right" in wrong.text
        right = _sign_in(c, name, password, code=pyotp.TOTP(secret).now())
        assert right.status_code == 303 and right.headers["location"] == "/projects"
        assert _current(server, c.cookies["sid"]).json()["username"] == name


def test_too_many_attempts_are_refused_with_429(server: Portside) -> None:
    name, _ = _new_user(server)
    with client(server.url, local_address="127.0.0.43") as c:
        statuses = [_sign_in(c, name, "Wrong-Password-9").status_code for _ in range(LIMIT)]
        assert statuses == [401] * LIMIT
        refused = _sign_in(c, name, "Wrong-Password-9")
    assert refused.status_code == 429
    assert "Too many failed attempts" in refused.text and int(refused.headers["retry-after"]) > 0


def test_signing_out_ends_the_session(server: Portside, browser: httpx.Client) -> None:
    name, password = _new_user(server)
    assert _sign_in(browser, name, password).status_code == 303
    sid = browser.cookies["sid"]
    profile = browser.get("/account")
    assert profile.status_code == 200
    # Without the token the session stays.
    assert browser.post("/sign-out", data={}).status_code == 403
    assert _current(server, sid).status_code == 200
    answer = browser.post("/sign-out", data={"csrf_token": _token(profile.text)})
    assert answer.status_code == 303 and answer.headers["location"] == "/sign-in"
    assert "sid" not in browser.cookies
    assert _current(server, sid).status_code == 401


def test_the_profile_shows_the_account(server: Portside, browser: httpx.Client) -> None:
    name, password = _new_user(server)
    _sign_in(browser, name, password)
    text = browser.get("/account").text
    assert name in text and f"{name}@example.com" in text and "Ada Page" in text
    assert re.search(r"<dt>Administrator</dt><dd>No</dd>", text)
    assert re.search(r"<dt>Two-factor sign-in</dt><dd><span class=\"badge\">Off</span>", text)


def test_changing_the_password(server: Portside, browser: httpx.Client) -> None:
    name, password = _new_user(server)
    _sign_in(browser, name, password)
    form = browser.get("/account/password")
    token = _token(form.text)
    for field in ("old_password", "new_password", "repeat_password"):
        assert f'<label for="{field}">' in form.text
    # Errors are shown beside the field they are about.
    differ = _change(browser, token, password, "New-Pass-1", "x")
    assert differ.status_code == 400 and 'id="repeat_password-error"' in differ.text
    assert 'aria-describedby="repeat_password-error"' in differ.text
    wrong_old = _change(browser, token, "Wrong-Old-1", "New-Pass-1", "New-Pass-1")
    assert wrong_old.status_code == 403 and 'id="old_password-error"' in wrong_old.text
    weak = _change(browser, token, password, "short", "short")
    assert weak.status_code == 400 and 'id="new_password-error"' in weak.text
    changed = _change(browser, token, password, "New-Pass-1", "New-Pass-1")
    assert changed.status_code == 303 and changed.headers["location"] == "/sign-in"
    with client(server.url, local_address="127.0.0.44") as c:
        assert c.get(f"{API}/users/current", auth=(name, password)).status_code == 401
        assert c.get(f"{API}/users/current", auth=(name, "New-Pass-1")).status_code == 200


def test_a_password_change_without_the_csrf_token_is_refused(server: Portside, browser: httpx.Client) -> None:
    name, password = _new_user(server)
    _sign_in(browser, name, password)
    assert _change(browser, None, password, "New-Pass-2", "New-Pass-2").status_code == 403
    assert _change(browser, "not-it", password, "New-Pass-2", "New-Pass-2").status_code == 403
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert c.get(f"{API}/users/current", auth=(name, password)).status_code == 200


def test_setting_up_and_turning_off_two_factor_sign_in(server: Portside, browser: httpx.Client) -> None:
    name, password = _new_user(server)
    _sign_in(browser, name, password)
    page = browser.get("/account/two-factor")
    assert page.status_code == 200 and "Two-factor sign-in is off" in page.text
    token = _token(page.text)
    started = browser.post("/account/two-factor", data={"csrf_token": token, "action": "start"})
    assert started.status_code == 200
    assert '<svg viewBox="' in started.text and 'class="qr"' in started.text
    assert " style=" not in started.text and "<style" not in started.text
    uri = html.unescape(re.search(r'name="uri" value="([^"]+)"', started.text).group(1))  # type: ignore[union-attr]
    assert uri.startswith("otpauth://totp/")
    secret = pyotp.parse_uri(uri).secret
    assert secret in started.text
    wrong = browser.post(
        "/account/two-factor",
        data={"csrf_token": token, "action": "confirm", "code": "12", "secret": secret, "uri": uri},
    )
    assert wrong.status_code == 400 and 'id="code-error"' in wrong.text and '<svg viewBox="' in wrong.text
    confirmed = browser.post(
        "/account/two-factor",
        data={"csrf_token": token, "action": "confirm", "code": pyotp.TOTP(secret).at(time.time() - 30)},
    )
    assert confirmed.status_code == 303 and confirmed.headers["location"] == "/account/two-factor"
    on = browser.get("/account/two-factor")
    assert "Two-factor sign-in is on" in on.text and "Two-factor sign-in is on:" in on.text  # the notice
    with httpx.Client(base_url=server.url, auth=(name, password), timeout=30) as me:
        assert me.get(f"{API}/users/current/totp").json() == {"enabled": True}
    # Turning it off takes a current code.
    refused = browser.post("/account/two-factor", data={"csrf_token": token, "action": "disable", "code": ""})
    assert refused.status_code == 401 and 'id="disable_code-error"' in refused.text
    off = browser.post(
        "/account/two-factor", data={"csrf_token": token, "action": "disable", "code": pyotp.TOTP(secret).now()}
    )
    assert off.status_code == 303
    with httpx.Client(base_url=server.url, auth=(name, password), timeout=30) as me:
        assert me.get(f"{API}/users/current/totp").json() == {"enabled": False}
