"""Brute force: failed logins are throttled per account and per client address.

A server of this module's own allows 3 failures per 3-second window. Each test speaks
from loopback addresses of its own (127.0.0.x, 127.0.1.x), so one test's failures never
throttle another's address. The limit holds exactly across the worker processes of one
server and across instances (`spread`): counted before each password is checked, in what
they share.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.access.accounts import create_user
from tests.access.conftest import start_portside
from tests.access.flow import client, describe, error_codes
from tests.scale.conftest import start_cluster
from tests.servers import ADMIN_PASSWORD, Portside
from tests.stacks import STACKS, Backing

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


# --- the limit is shared: every worker process, every instance --------------------------

SHARED_LIMIT = 5
ATTEMPTS = 16


@dataclass
class Spread:
    """Servers whose workers (fs: three processes of one server) or instances (scaled:
    two over one PostgreSQL and Redis, with two workers each) must count as one. Every
    request goes on a connection of its own, to the next URL in turn."""

    urls: list[str]
    turn: itertools.count[int] = field(default_factory=itertools.count)

    def url(self) -> str:
        return self.urls[next(self.turn) % len(self.urls)]

    def token(self, address: str, username: str, password: str) -> httpx.Response:
        with client(self.url(), address, headers={"Connection": "close"}) as c:
            return _token(c, username, password)

    def create_user(self, name: str) -> str:
        r = httpx.post(
            f"{self.urls[0]}/api/v2.0/users",
            json={"username": name, "password": PASSWORD, "email": f"{name}@example.com", "realname": name},
            auth=("admin", ADMIN_PASSWORD),
            timeout=30.0,
        )
        assert r.status_code == 201, describe(r)
        return name


@pytest.fixture(scope="module", params=[s for s in ("fs", "scaled") if s in STACKS])
def spread(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Spread]:
    env = {
        "PORTSIDE_LOGIN_FAILURE_LIMIT": str(SHARED_LIMIT),
        "PORTSIDE_LOGIN_FAILURE_WINDOW_SECONDS": "3600",
    }
    root = tmp_path_factory.mktemp(f"spread-{request.param}")
    if request.param == "fs":
        server = start_portside(root / "data", {**env, "PORTSIDE_WORKERS": "3"})
        yield Spread([server.url])
        server.stop()
        return
    backing: Backing = request.getfixturevalue("backing")
    cluster = start_cluster(root, backing, size=2, env={**env, "PORTSIDE_WORKERS": "2"})
    yield Spread([instance.url for instance in cluster.instances])
    cluster.stop()


def _statuses(responses: Iterable[httpx.Response]) -> list[int]:
    return [r.status_code for r in responses]


def test_wrong_passwords_on_new_connections_meet_the_limit_exactly(spread: Spread) -> None:
    name = spread.create_user("spread-serial")
    statuses = _statuses(spread.token("127.0.1.1", name, f"Wrong-{n}") for n in range(ATTEMPTS))
    assert statuses == [401] * SHARED_LIMIT + [429] * (ATTEMPTS - SHARED_LIMIT)
    # the right password too, through every worker and instance, with the time to wait
    for _ in range(4):
        r = spread.token("127.0.1.2", name, PASSWORD)
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 3000, describe(r)


def test_parallel_wrong_passwords_meet_the_limit_exactly(spread: Spread) -> None:
    """All at once: each attempt is counted before its password is checked, so those that
    arrive while the others are being checked find the limit reached."""
    name = spread.create_user("spread-parallel")
    with ThreadPoolExecutor(ATTEMPTS) as pool:
        statuses = list(pool.map(lambda n: spread.token("127.0.1.3", name, f"Wrong-{n}").status_code, range(ATTEMPTS)))
    assert sorted(statuses) == [401] * SHARED_LIMIT + [429] * (ATTEMPTS - SHARED_LIMIT), statuses
    assert spread.token("127.0.1.4", name, PASSWORD).status_code == 429


def test_parallel_right_passwords_all_pass(spread: Spread) -> None:
    """Right passwords are counted while they are checked, then taken back: many at once
    (a client's parallel requests) do not throttle each other."""
    name = spread.create_user("spread-right")
    with ThreadPoolExecutor(ATTEMPTS) as pool:
        statuses = list(pool.map(lambda _: spread.token("127.0.1.5", name, PASSWORD).status_code, range(ATTEMPTS)))
    assert statuses == [200] * ATTEMPTS


def test_a_success_forgets_the_account_not_the_address(spread: Spread) -> None:
    name = spread.create_user("spread-forgets")
    first, second = "127.0.1.6", "127.0.1.7"
    assert _statuses(spread.token(first, name, "Wrong") for _ in range(SHARED_LIMIT - 1)) == [401] * 4
    assert spread.token(first, name, PASSWORD).status_code == 200
    # the account starts again from nothing, wherever the next attempts land
    assert _statuses(spread.token(second, name, "Wrong") for _ in range(SHARED_LIMIT - 1)) == [401] * 4
    # the first address kept its four: one more, and it is refused even the right password
    assert spread.token(first, name, "Wrong").status_code == 401
    assert spread.token(first, name, PASSWORD).status_code == 429
    assert spread.token(second, name, PASSWORD).status_code == 429  # and so is the account, at five
