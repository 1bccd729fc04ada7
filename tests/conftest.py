from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.clients import ContainerdDaemon, DockerDaemon, Podman, unmount_under
from tests.servers import Distribution, Portside
from tests.stacks import STACKS, Backing


@pytest.fixture(scope="session")
def backing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backing]:
    """PostgreSQL, Redis and S3 for the scaled stack, started when first needed."""
    services = Backing(tmp_path_factory.mktemp("backing"))
    yield services
    services.stop()


@pytest.fixture(scope="session", params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    """Which stack the registry-level test runs on: `fs` or `scaled` (see tests/stacks.py)."""
    return str(request.param)


@pytest.fixture(scope="session")
def portside(tmp_path_factory: pytest.TempPathFactory, stack: str, backing: Backing) -> Iterator[Portside]:
    """One Portside server per stack shared by the session; tests use distinct repository names."""
    server = Portside(data_dir=tmp_path_factory.mktemp(f"portside-{stack}") / "data", env=backing.env(stack)).start()
    yield server
    server.stop()


@pytest.fixture
def fresh_portside(tmp_path: Path, stack: str, backing: Backing) -> Iterator[Portside]:
    """A Portside server of the test's own, for tests that restart or kill it."""
    server = Portside(data_dir=tmp_path / "data", env=backing.env(stack)).start()
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


# With `--dist loadgroup` (scripts/test runs the suite on two workers), a module's cases stay
# on one worker, so its module-scoped servers start once; every case that drives a real
# client daemon runs on one worker, so one docker, one containerd and one podman serve them.
_DAEMONS = frozenset({"docker_daemon", "containerd_daemon", "podman", "e2e_root"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        uses = set(getattr(item, "fixturenames", ()))
        group = "daemons" if uses & _DAEMONS else item.nodeid.split("::", 1)[0]
        item.add_marker(pytest.mark.xdist_group(group))
