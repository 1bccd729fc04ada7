from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.clients import ContainerdDaemon, DockerDaemon, Podman, unmount_under
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


# Real-client daemons, shared by every suite that drives docker, containerd or podman
# (one of each per test session).
@pytest.fixture(scope="session")
def e2e_root() -> Iterator[Path]:
    """A short private directory for daemons' state (unix socket paths must stay short)."""
    root = Path(tempfile.mkdtemp(prefix="pse2e-", dir="/tmp"))
    yield root
    unmount_under(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def e2e_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Daemons' logs, kept after the session (pytest's temporary directory) for post-mortems."""
    return tmp_path_factory.mktemp("e2e-logs")


@pytest.fixture(scope="session")
def docker_daemon(e2e_root: Path, e2e_logs: Path) -> Iterator[DockerDaemon]:
    daemon = DockerDaemon.ensure(e2e_root / "docker", e2e_logs)
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def containerd_daemon(e2e_root: Path, e2e_logs: Path) -> Iterator[ContainerdDaemon]:
    daemon = ContainerdDaemon.ensure(e2e_root / "containerd", e2e_logs)
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def podman(e2e_root: Path) -> Iterator[Podman]:
    client = Podman(e2e_root / "podman")
    yield client
    client.cleanup()
