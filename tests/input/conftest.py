"""Fixtures of the bad-input suite: what clients may send, and what they are told when it is
wrong (4xx with each API's error body, never a 500).

`server` is one Portside with access control on, per stack and shared by the session: the
bounds checked here are the databases' (PostgreSQL's integers are 32 bits, its text holds
no NUL), so every case runs on both. Tests use names of their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Portside
from tests.stacks import Backing

ADMIN = ("admin", ADMIN_PASSWORD)
API = "/api/v2.0"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, stack: str, backing: Backing) -> Iterator[Portside]:
    env = {**backing.env(stack), "PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"}
    portside = Portside(data_dir=tmp_path_factory.mktemp(f"input-{stack}") / "data", env=env, open_registry=False)
    portside.start()
    yield portside
    portside.stop()


@pytest.fixture
def server_url(server: Portside) -> str:
    return server.url


@pytest.fixture
def admin(server: Portside) -> Iterator[httpx.Client]:
    """The admin with Basic credentials, on /v2 and (through `API`) the management API."""
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60.0) as client:
        yield client


@pytest.fixture
def anonymous(server: Portside) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60.0) as client:
        yield client


@pytest.fixture
def project(admin: httpx.Client) -> str:
    """A private project of the test's own."""
    name = oci.unique("p")
    r = admin.post(f"{API}/projects", json={"project_name": name})
    assert r.status_code == 201, r.text
    return name


def harbor_error(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The first error of a Harbor error body, after checking the status is one of `statuses`."""
    assert response.status_code in statuses, f"{response.request.method} {response.request.url}: {response.text}"
    if response.request.method == "HEAD":
        return {}
    body = response.json()
    assert list(body) == ["errors"], response.text
    error = body["errors"][0]
    assert set(error) == {"code", "message"} and error["message"], response.text
    return error  # type: ignore[no-any-return]
