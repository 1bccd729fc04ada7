"""Two-factor sign-in (TOTP) against a live server: codes are throttled like passwords, each
code signs in once, and turning it off takes a current code from a signed-in session."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pyotp
import pytest

from tests.access.conftest import start_portside
from tests.access.flow import client, describe
from tests.servers import ADMIN_PASSWORD, Portside

API = "/api/v2.0"
LIMIT = 5


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    portside = start_portside(
        tmp_path_factory.mktemp("totp") / "data",
        {"PORTSIDE_LOGIN_FAILURE_LIMIT": str(LIMIT), "PORTSIDE_LOGIN_FAILURE_WINDOW_SECONDS": "300"},
    )
    yield portside
    portside.stop()


def _enrolled(server: Portside) -> tuple[str, str, str, str]:
    """A new user with TOTP on: (username, password, secret, the code that confirmed it).
    It is the previous time step's code (within the drift allowed), so the current one is
    still unused."""
    name, password = f"tf{uuid.uuid4().hex[:6]}", "Two-Factor-1"
    with httpx.Client(base_url=server.url, auth=("admin", ADMIN_PASSWORD), timeout=30) as admin:
        r = admin.post(f"{API}/users", json={"username": name, "password": password, "email": f"{name}@example.com"})
        assert r.status_code == 201, describe(r)
    with httpx.Client(base_url=server.url, auth=(name, password), timeout=30) as me:
        secret = me.post(f"{API}/users/current/totp").json()["secret"]
        confirmed = pyotp.TOTP(secret).at(time.time() - 30)
        r = me.put(f"{API}/users/current/totp", json={"code": confirmed})
        assert r.status_code == 200, describe(r)
    return name, password, secret, confirmed


def _login(c: httpx.Client, name: str, password: str, code: str | None) -> httpx.Response:
    form = {"principal": name, "password": password}
    if code is not None:
        form["totp"] = code
    return c.post("/c/login", data=form)


def _next_code(secret: str) -> str:
    """A code of the next time step: valid (within the drift allowed), and unused yet."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def _wrong(secret: str) -> str:
    right = {pyotp.TOTP(secret).at(time.time() + d) for d in (-30, 0, 30)}
    return next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in right)


def test_wrong_codes_are_throttled_like_passwords(server: Portside) -> None:
    name, password, secret, _ = _enrolled(server)
    # From an address of its own: the address is throttled too, and others share 127.0.0.1.
    with client(server.url, local_address="127.0.0.21") as attacker:
        answers = [_login(attacker, name, password, _wrong(secret)).status_code for _ in range(40)]
        assert answers[:LIMIT] == [401] * LIMIT, answers
        assert set(answers[LIMIT:]) == {429}, answers
        # Once throttled, the right code does not get through either, and the answer says when to retry.
        r = _login(attacker, name, password, _next_code(secret))
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0, describe(r)
    # The account's codes are throttled wherever they come from.
    with client(server.url, local_address="127.0.0.22") as elsewhere:
        assert _login(elsewhere, name, password, _next_code(secret)).status_code == 429


def test_a_code_signs_in_once(server: Portside) -> None:
    name, password, secret, _ = _enrolled(server)
    code = _next_code(secret)
    with client(server.url, local_address="127.0.0.23") as c:
        assert _login(c, name, password, None).status_code == 401
        r = _login(c, name, password, code)
        assert r.status_code == 200, describe(r)
    with client(server.url, local_address="127.0.0.23") as replay:
        r = _login(replay, name, password, code)
        assert r.status_code == 401 and "totp" in r.text.lower(), describe(r)
    # Nor does the code that confirmed the enrolment sign in.
    other, other_password, _, confirmed = _enrolled(server)
    with client(server.url, local_address="127.0.0.24") as c:
        assert _login(c, other, other_password, confirmed).status_code == 401


def test_turning_two_factor_off_takes_a_code_from_a_session(server: Portside) -> None:
    name, password, secret, _ = _enrolled(server)
    # The password alone, over Basic auth, does not turn it off.
    with httpx.Client(base_url=server.url, auth=(name, password), timeout=30) as basic:
        r = basic.request("DELETE", f"{API}/users/current/totp", json={"code": _next_code(secret)})
        assert r.status_code == 403, describe(r)
        assert basic.get(f"{API}/users/current/totp").json() == {"enabled": True}
    with client(server.url, local_address="127.0.0.25") as web:
        r = _login(web, name, password, pyotp.TOTP(secret).now())
        assert r.status_code == 200, describe(r)
        csrf = {"X-Harbor-CSRF-Token": r.headers["X-Harbor-CSRF-Token"]}
        r = web.request("DELETE", f"{API}/users/current/totp", headers=csrf)
        assert r.status_code == 401, describe(r)
        r = web.request("DELETE", f"{API}/users/current/totp", headers=csrf, json={"code": _wrong(secret)})
        assert r.status_code == 401, describe(r)
        r = web.request("DELETE", f"{API}/users/current/totp", headers=csrf, json={"code": _next_code(secret)})
        assert r.status_code == 200, describe(r)
        assert web.get(f"{API}/users/current/totp").json() == {"enabled": False}
    with client(server.url, local_address="127.0.0.25") as c:
        assert _login(c, name, password, None).status_code == 200


def test_the_operator_turns_two_factor_off_for_a_lost_device(server: Portside) -> None:
    name, password, _, _ = _enrolled(server)
    done = subprocess.run(
        [sys.executable, "-m", "portside", "user", "reset-totp", name, "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with client(server.url, local_address="127.0.0.26") as c:
        assert _login(c, name, password, None).status_code == 200
