"""Fixtures of the HTTP conformance suite.

The suite runs against the shared live Portside server. For comparing behaviour it can
run against the CNCF Distribution registry instead: `PORTSIDE_API_TARGET=distribution`.
Cases marked `portside_only` (referrers, v1.1 additions, Portside's own endpoints) are
skipped there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.api import oci
from tests.servers import RegistryServer

TARGET = os.environ.get("PORTSIDE_API_TARGET", "portside")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "portside_only: behaviour the CNCF Distribution registry 2.8 lacks (skipped against it)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if TARGET == "portside":
        return
    skip = pytest.mark.skip(reason=f"not checked against {TARGET}")
    for item in items:
        if "portside_only" in item.keywords and "tests/api" in str(item.path):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def registry(request: pytest.FixtureRequest, stack: str) -> RegistryServer:
    """The server under test: Portside on each stack, unless PORTSIDE_API_TARGET says otherwise."""
    return request.getfixturevalue(TARGET)


@pytest.fixture
def client(registry: RegistryServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=registry.url, timeout=30.0) as c:
        yield c


@pytest.fixture
def repo(request: pytest.FixtureRequest) -> str:
    """A repository name no other test uses, two components deep."""
    stem = "".join(ch for ch in request.node.name.lower() if ch.isalnum())[:30] or "t"
    return f"conf/{oci.unique(stem)}"
