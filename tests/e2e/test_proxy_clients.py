"""docker and podman pulling through a proxy project of a live Portside, whose upstream is a
real CNCF Distribution registry: the first pull fetches, the upstream is stopped, and the
pull (and a run of what it pulled) still works from the cache."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.clients import DockerDaemon, Podman
from tests.e2e.images import busybox_rootfs_tar
from tests.servers import ADMIN_PASSWORD, Distribution, Portside

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def upstream(tmp_path: Path) -> Iterator[Distribution]:
    server = Distribution(data_dir=tmp_path / "upstream").start()
    yield server
    server.stop()


@pytest.fixture
def portside(tmp_path: Path) -> Iterator[Portside]:
    server = Portside(data_dir=tmp_path / "portside", env={"PORTSIDE_PROXY_TIMEOUT_SECONDS": "3"}).start()
    yield server
    server.stop()


def proxy_project(portside: Portside, upstream: Distribution, name: str = "cache") -> None:
    with httpx.Client(base_url=f"{portside.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD)) as api:
        r = api.post("/registries", json={"name": "upstream", "type": "docker-registry", "url": upstream.url})
        assert r.status_code == 201, r.text
        registry_id = int(r.headers["Location"].rsplit("/", 1)[1])
        r = api.post(
            "/projects", json={"project_name": name, "registry_id": registry_id, "metadata": {"public": "true"}}
        )
        assert r.status_code == 201, r.text


def wait_kept(portside: Portside, project: str, repo: str, tag: str, timeout: float = 30.0) -> None:
    """Until the cache stored the tagged manifest (its blobs are in)."""
    path = f"/api/v2.0/projects/{project}/repositories/{repo.replace('/', '%252F')}/artifacts/{tag}"
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=portside.url, auth=("admin", ADMIN_PASSWORD)) as api:
        while time.monotonic() < deadline:
            if api.get(path).status_code == 200:
                return
            time.sleep(0.2)
    raise AssertionError(f"{project}/{repo}:{tag} was not kept")


def test_docker_pulls_through_the_cache_with_the_upstream_stopped(
    docker_daemon: DockerDaemon, upstream: Distribution, portside: Portside, tmp_path: Path
) -> None:
    docker = docker_daemon.docker
    source = f"{upstream.host}/lib/tool:v1"
    cached = f"{portside.host}/cache/lib/tool:v1"
    rootfs = busybox_rootfs_tar(tmp_path / "rootfs.tar", {"etc/marker": b"from-the-upstream\n"})
    docker("import", "--change", 'CMD ["/bin/sh"]', rootfs, source)
    try:
        docker("push", source)
        docker("rmi", source)
        proxy_project(portside, upstream)
        docker("pull", cached)
        wait_kept(portside, "cache", "lib/tool", "v1")
        docker("rmi", cached)

        upstream.stop()
        docker("pull", cached)
        out = docker("run", "--rm", "--network", "host", cached, "/bin/cat", "/etc/marker").stdout
        assert out.strip() == "from-the-upstream"
        # A push into the proxy project is refused.
        refused = docker("push", cached, check=False)
        assert refused.returncode != 0 and "denied" in (refused.stdout + refused.stderr).lower()
    finally:
        docker("rmi", "--force", source, cached, check=False)


def test_podman_pulls_through_the_cache_with_the_upstream_stopped(
    podman: Podman, upstream: Distribution, portside: Portside, tmp_path: Path
) -> None:
    source = f"{upstream.host}/lib/tool:v1"
    cached = f"{portside.host}/cache/lib/tool:v1"
    rootfs = busybox_rootfs_tar(tmp_path / "rootfs.tar", {"etc/marker": b"podman-upstream\n"})
    podman("import", "--change", 'CMD ["/bin/sh"]', rootfs, "localhost/tool:v1")
    try:
        podman("push", "--tls-verify=false", "localhost/tool:v1", source)
        proxy_project(portside, upstream)
        podman("pull", "--tls-verify=false", cached)
        wait_kept(portside, "cache", "lib/tool", "v1")
        podman("rmi", "--force", cached)

        upstream.stop()
        podman("pull", "--tls-verify=false", cached)
        out = podman("run", "--rm", "--network", "host", cached, "/bin/cat", "/etc/marker").stdout
        assert out.strip() == "podman-upstream"
    finally:
        podman("rmi", "--force", "localhost/tool:v1", cached, check=False)
