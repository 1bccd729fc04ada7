"""Fixtures for the real-client tests.

`registry` is the server under test: Portside by default. Set PORTSIDE_E2E_TARGET=distribution
to run the same tests against the CNCF Distribution registry (to tell a client problem from
a server one). Clients' daemons (dockerd, containerd) are started only when none answers,
once per session, and stopped at the end of it.
"""

from __future__ import annotations

import os
import uuid

import pytest

from tests.e2e.clients import RegistryHTTP
from tests.servers import RegistryServer

TARGETS = ("portside", "distribution")


@pytest.fixture(scope="session")
def registry(request: pytest.FixtureRequest, stack: str) -> RegistryServer:
    """Portside on each stack (tests/stacks.py), or the target PORTSIDE_E2E_TARGET names."""
    target = os.environ.get("PORTSIDE_E2E_TARGET", "portside")
    if target not in TARGETS:
        pytest.fail(f"PORTSIDE_E2E_TARGET must be one of {TARGETS}, not {target!r}", pytrace=False)
    return request.getfixturevalue(target)


@pytest.fixture(scope="session")
def registry_http(registry: RegistryServer) -> RegistryHTTP:
    return RegistryHTTP(registry.url)


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name of this test's own (the registry is shared by the session)."""
    name = request.node.name.removeprefix("test_").lower()
    name = "".join(ch if ch.isalnum() else "-" for ch in name).strip("-")[:40].strip("-")
    return f"e2e/{name}-{uuid.uuid4().hex[:6]}"
