"""Brute force: failed logins are throttled per account and per client address.

A server of this module's own allows 3 failures per 3-second window. Each test speaks
from loopback addresses of its own (127.0.0.x), so one test's failures never throttle
another's address.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.access.accounts import create_user
from tests.access.conftest import start_portside
from tests.access.flow import client, describe, error_codes
from tests.servers import Portside

LIMIT, WINDOW = 3, 3
PASSWORD = "Passw0rd-brute"


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    server = start_portside(
        tmp_path_factory.mktemp("throttled") / "data",
        {
            "PORTSIDE_LOGIN_FAILURE_LIMIT": str(LIMIT),
            "PORTSIDE_LOGIN_FAILURE_WINDOW_SECONDS": str(WINDOW),
        },
    )
    try:
        yield server
    finally:
        server.stop()


def _user(server: Portside, name: str) -> str:
    create_user(Path(server.data_dir), name, PASSWORD)
    return name


def _token(c: httpx.Client, username: str, password: str) -> httpx.Response:
    return c.get(
        "/service/token",
        params={"service": "portside", "scope": "repository:library/x:pull"},
        auth=(username, password),
    )


def _assert_throttled(r: httpx.Response) -> int:
    assert r.status_code == 429, describe(r)
    assert "TOOMANYREQUESTS" in error_codes(r), describe(r)
    retry_after = int(r.headers["retry-after"])
    assert 1 <= retry_after <= WINDOW, describe(r)
    return retry_after


def test_account_is_throttled_after_repeated_failures(throttled: Portside) -> None:
    name = _user(throttled, "brute-account")
    with client(throttled.url, "127.0.0.2") as c, client(throttled.url, "127.0.0.3") as other:
        assert _token(c, name, PASSWORD).status_code == 200
        for _ in range(LIMIT):
            r = _token(c, name, "Wrong-Passw0rd")
            assert r.status_code == 401, describe(r)
        _assert_throttled(_token(c, name, "Wrong-Passw0rd"))
        # the right password is refused too while the account is throttled
        retry_after = _assert_throttled(_token(c, name, PASSWORD))
        # from another address as well: the limit is the account's
        _assert_throttled(_token(other, name, PASSWORD))
        # and on Basic directly on /v2
        _assert_throttled(other.get("/v2/library/x/tags/list", auth=(name, PASSWORD)))
        # another account from the second address is unaffected
        fine = _user(throttled, "brute-bystander")
        assert _token(other, fine, PASSWORD).status_code == 200

        time.sleep(retry_after + 0.2)
        r = _token(other, name, PASSWORD)
        assert r.status_code == 200, describe(r)


def test_client_address_is_throttled_across_accounts(throttled: Portside) -> None:
    names = [_user(throttled, f"spray-{i}") for i in range(LIMIT + 1)]
    with client(throttled.url, "127.0.0.4") as sprayer, client(throttled.url, "127.0.0.5") as honest:
        # one wrong password for each of several accounts (password spraying)
        for name in names[:LIMIT]:
            r = _token(sprayer, name, "Wrong-Passw0rd")
            assert r.status_code == 401, describe(r)
        # the address is now refused, even with a correct password for a fresh account
        retry_after = _assert_throttled(_token(sprayer, names[LIMIT], PASSWORD))
        _assert_throttled(sprayer.get("/v2/library/x/tags/list", auth=(names[LIMIT], PASSWORD)))
        # the same account from another address is fine: no account reached the limit
        for name in names:
            r = _token(honest, name, PASSWORD)
            assert r.status_code == 200, describe(r)

        time.sleep(retry_after + 0.2)
        assert _token(sprayer, names[LIMIT], PASSWORD).status_code == 200


def test_robot_secret_guessing_is_throttled(throttled: Portside) -> None:
    """Robots are accounts like users: unknown or not, guessing gets throttled."""
    with client(throttled.url, "127.0.0.6") as c:
        for _ in range(LIMIT):
            assert _token(c, "robot$library+ghost", "guess").status_code == 401
        _assert_throttled(_token(c, "robot$library+ghost", "guess"))


def test_oauth2_password_form_is_throttled(throttled: Portside) -> None:
    name = _user(throttled, "brute-oauth")

    def form(c: httpx.Client, password: str) -> httpx.Response:
        return c.post(
            "/service/token",
            data={"grant_type": "password", "username": name, "password": password, "service": "portside"},
        )

    with client(throttled.url, "127.0.0.7") as c, client(throttled.url, "127.0.0.8") as other:
        for _ in range(LIMIT):
            r = form(c, "Wrong-Passw0rd")
            assert r.status_code == 401, describe(r)
        _assert_throttled(form(c, PASSWORD))
        _assert_throttled(form(other, PASSWORD))
        _assert_throttled(_token(other, name, PASSWORD))
