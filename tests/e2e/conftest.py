"""Fixtures for the real-client tests.

`registry` is the server under test: Portside by default. Set PORTSIDE_E2E_TARGET=distribution
to run the same tests against the CNCF Distribution registry (to tell a client problem from
a server one). Clients' daemons (dockerd, containerd) are started only when none answers,
once per session, and stopped at the end of it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.clients import ContainerdDaemon, DockerDaemon, Podman, RegistryHTTP, unmount_under
from tests.servers import RegistryServer

TARGETS = ("portside", "distribution")


@pytest.fixture(scope="session")
def registry(request: pytest.FixtureRequest) -> RegistryServer:
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
