from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import Distribution, Portside


@pytest.fixture(scope="session")
def portside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    """One Portside server shared by the session; tests use distinct repository names."""
    server = Portside(data_dir=tmp_path_factory.mktemp("portside") / "data").start()
    yield server
    server.stop()


@pytest.fixture
def fresh_portside(tmp_path: Path) -> Iterator[Portside]:
    """A Portside server of the test's own, for tests that restart or kill it."""
    server = Portside(data_dir=tmp_path / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    server = Distribution(data_dir=tmp_path_factory.mktemp("distribution") / "data").start()
    yield server
    server.stop()
