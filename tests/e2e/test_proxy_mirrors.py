"""The three daemons that expect a mirror pull `docker.io/library/tool:v1` through Portside:
docker with `registry-mirrors` (a dockerd of this test's own), containerd with a `hosts.toml`
(`?ns=docker.io`), podman with `[[registry.mirror]]`. The proxy project's upstream is a real
CNCF Distribution, standing in for Docker Hub (there is no network); after the first pull it
is stopped, and each daemon pulls again from the cache alone."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.clients import ContainerdDaemon, DockerDaemon, Podman, _stop_process, _wait_until, require, run
from tests.e2e.images import busybox_rootfs_tar
from tests.e2e.test_proxy_clients import proxy_project, wait_kept
from tests.servers import Distribution, Portside, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

MIRROR_HOST_PORT = free_port()


@pytest.fixture
def upstream(tmp_path: Path, docker_daemon: DockerDaemon) -> Iterator[Distribution]:
    """Distribution holding `library/tool:v1` (pushed by the suite's docker)."""
    server = Distribution(data_dir=tmp_path / "upstream").start()
    source = f"{server.host}/library/tool:v1"
    rootfs = busybox_rootfs_tar(tmp_path / "rootfs.tar", {"etc/marker": b"through-a-mirror\n"})
    docker_daemon.docker("import", "--change", 'CMD ["/bin/sh"]', rootfs, source)
    docker_daemon.docker("push", source)
    docker_daemon.docker("rmi", source)
    yield server
    server.stop()


@pytest.fixture
def portside(tmp_path: Path) -> Iterator[Portside]:
    server = Portside(
        data_dir=tmp_path / "portside",
        port=MIRROR_HOST_PORT,
        env={
            "PORTSIDE_PROXY_TIMEOUT_SECONDS": "3",
            "PORTSIDE_MIRROR_NAMESPACES": json.dumps({"docker.io": "hub"}),
            # docker's registry-mirrors: the mirror's host says what it mirrors.
            "PORTSIDE_MIRROR_HOSTS": json.dumps({f"localhost:{MIRROR_HOST_PORT}": "hub"}),
        },
    ).start()
    yield server
    server.stop()


@pytest.fixture
def mirrored_dockerd(e2e_root: Path) -> Iterator[DockerDaemon]:
    """A dockerd of its own whose registry-mirrors is Portside (the suite's has none)."""
    root = e2e_root / f"mirror-{uuid.uuid4().hex[:6]}"
    root.mkdir()
    sock, config = root / "d.sock", root / "daemon.json"
    mirror = f"localhost:{MIRROR_HOST_PORT}"
    config.write_text(json.dumps({"registry-mirrors": [f"http://{mirror}"], "insecure-registries": [mirror]}))
    log_path = root / "dockerd.log"
    command = [
        require("dockerd"),
        "--config-file", str(config),
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "dockerd.pid"),
        "--host", f"unix://{sock}",
        "--bridge", "none",
        "--iptables=false",
    ]  # fmt: skip
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    daemon = DockerDaemon(env={"DOCKER_HOST": f"unix://{sock}"}, proc=proc, root=root, log_path=log_path)
    try:
        _wait_until(
            lambda: sock.exists() and daemon.docker("info", check=False, timeout=20).returncode == 0,
            "dockerd",
            90,
            proc,
            log_path,
        )
        yield daemon
    finally:
        daemon.docker("rmi", "--force", "tool:v1", check=False)
        _stop_process(proc)


def _hub_project(portside: Portside, upstream: Distribution) -> None:
    proxy_project(portside, upstream, name="hub")


def test_docker_with_registry_mirrors(
    mirrored_dockerd: DockerDaemon, upstream: Distribution, portside: Portside
) -> None:
    _hub_project(portside, upstream)
    docker = mirrored_dockerd.docker
    docker("pull", "tool:v1")  # docker.io/library/tool:v1, asked of the mirror
    wait_kept(portside, "hub", "library/tool", "v1")
    docker("rmi", "tool:v1")
    upstream.stop()
    docker("pull", "tool:v1")
    out = docker("run", "--rm", "--network", "host", "tool:v1", "/bin/cat", "/etc/marker").stdout
    assert out.strip() == "through-a-mirror"


def test_containerd_with_hosts_toml(
    containerd_daemon: ContainerdDaemon, upstream: Distribution, portside: Portside, tmp_path: Path
) -> None:
    _hub_project(portside, upstream)
    hosts = tmp_path / "certs.d"
    (hosts / "docker.io").mkdir(parents=True)
    (hosts / "docker.io" / "hosts.toml").write_text(
        'server = "https://registry-1.docker.io"\n'
        f'[host."http://{portside.host}"]\n  capabilities = ["pull", "resolve"]\n'
    )
    ref = "docker.io/library/tool:v1"
    first = dataclasses.replace(containerd_daemon, namespace=f"mirror-{uuid.uuid4().hex[:6]}")
    first.ctr("images", "pull", "--hosts-dir", str(hosts), "--platform", "linux/amd64", ref)
    wait_kept(portside, "hub", "library/tool", "v1")
    upstream.stop()
    # Another namespace holds none of the content: all of it comes from the cache.
    second = dataclasses.replace(containerd_daemon, namespace=f"mirror-{uuid.uuid4().hex[:6]}")
    second.ctr("images", "pull", "--hosts-dir", str(hosts), "--platform", "linux/amd64", ref)
    assert ref in second.ctr("images", "ls", "--quiet").stdout
    for daemon in (first, second):
        daemon.ctr("images", "rm", ref, check=False)


def test_podman_with_a_registry_mirror(
    podman: Podman, upstream: Distribution, portside: Portside, tmp_path: Path
) -> None:
    _hub_project(portside, upstream)
    conf = tmp_path / "registries.conf"
    conf.write_text(
        'unqualified-search-registries = ["docker.io"]\n'
        '[[registry]]\nprefix = "docker.io"\nlocation = "registry-1.docker.io"\n'
        # The mirror's location names the project: nothing to configure in Portside.
        f'[[registry.mirror]]\nlocation = "{portside.host}/hub"\ninsecure = true\n'
    )
    env = {"CONTAINERS_REGISTRIES_CONF": str(conf)}
    ref = "docker.io/library/tool:v1"
    try:
        run([*podman.base(), "pull", ref], env=env)
        wait_kept(portside, "hub", "library/tool", "v1")
        run([*podman.base(), "rmi", "--force", ref], env=env)
        upstream.stop()
        run([*podman.base(), "pull", ref], env=env)
        out = run([*podman.base(), "run", "--rm", "--network", "host", ref, "/bin/cat", "/etc/marker"], env=env)
        assert out.stdout.strip() == "through-a-mirror"
    finally:
        run([*podman.base(), "rmi", "--force", ref], env=env, check=False)
    assert httpx.get(f"{portside.url}/v2/").status_code in (200, 401)
