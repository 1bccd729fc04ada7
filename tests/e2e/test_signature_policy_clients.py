"""The signature pull policy against real clients: in projects that ask for a cosign
signature, docker (its daemon) and podman (runc) pull an image Portside signed on push, and
get the policy's refusal, with its reason, for one nobody signed (skopeo's side is in
tests/mgmt/test_signature_policy.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.clients import DockerDaemon, Podman
from tests.e2e.images import busybox_rootfs_tar
from tests.servers import ADMIN_PASSWORD, Portside

pytestmark = pytest.mark.e2e
ACCEPT = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")


@pytest.fixture(scope="module")
def portside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    server = Portside(data_dir=tmp_path_factory.mktemp("signature-clients") / "data", open_registry=False).start()
    try:
        with httpx.Client(base_url=f"{server.url}/api/v2.0", auth=("admin", ADMIN_PASSWORD), timeout=60) as api:
            for name, metadata in {
                "signs": {"enable_content_trust_cosign": "true", "sign_on_push": "true"},
                "unsigned": {"enable_content_trust_cosign": "true"},
            }.items():
                r = api.post("/projects", json={"project_name": name, "metadata": {"public": "false", **metadata}})
                assert r.status_code == 201, r.text
        yield server
    finally:
        server.stop()


def _wait_for_signature(server: Portside, repository: str, tag: str) -> None:
    with httpx.Client(base_url=server.url, auth=("admin", ADMIN_PASSWORD), timeout=30) as client:
        digest = client.head(
            f"/v2/{repository}/manifests/{tag}",
            headers={"Accept": ", ".join(ACCEPT)},
        ).headers["Docker-Content-Digest"]
        signature = digest.replace(":", "-") + ".sig"
        deadline = time.monotonic() + 30
        while client.head(f"/v2/{repository}/manifests/{signature}").status_code != 200:
            assert time.monotonic() < deadline, "Portside did not sign the push"
            time.sleep(0.1)


def test_podman_pulls_what_is_signed_and_is_refused_the_rest(
    portside: Portside, podman: Podman, tmp_path: Path
) -> None:
    rootfs = busybox_rootfs_tar(tmp_path / "rootfs.tar", {"etc/marker": b"signed-policy\n"})
    podman("import", "--change", 'CMD ["/bin/sh"]', rootfs, "localhost/policy:src")
    creds = f"--creds=admin:{ADMIN_PASSWORD}"
    for project in ("signs", "unsigned"):
        podman("push", "--tls-verify=false", creds, "localhost/policy:src", f"{portside.host}/{project}/app:v1")
    _wait_for_signature(portside, "signs/app", "v1")
    podman("rmi", "--force", "localhost/policy:src")

    podman("pull", "--tls-verify=false", creds, f"{portside.host}/signs/app:v1")
    out = podman("run", "--rm", "--network", "host", f"{portside.host}/signs/app:v1", "cat", "/etc/marker").stdout
    assert out.strip() == "signed-policy"
    refused = podman("pull", "--tls-verify=false", creds, f"{portside.host}/unsigned/app:v1", check=False)
    assert refused.returncode != 0
    assert "not signed by cosign" in refused.stderr, refused.stderr
    podman("rmi", "--force", f"{portside.host}/signs/app:v1", check=False)


def test_docker_pulls_what_is_signed_and_is_refused_the_rest(
    portside: Portside, docker_daemon: DockerDaemon, tmp_path: Path
) -> None:
    docker = docker_daemon.docker
    rootfs = busybox_rootfs_tar(tmp_path / "rootfs.tar", {"etc/marker": b"docker-policy\n"})
    docker("login", portside.host, "-u", "admin", "-p", ADMIN_PASSWORD)
    other = busybox_rootfs_tar(tmp_path / "other.tar", {"etc/marker": b"nobody-signed\n"})
    # Two images: a daemon that already holds an image's content asks only HEAD (which no
    # policy gates, as in Harbor: it gives no content) and would not meet the refusal.
    docker("import", "--change", 'CMD ["/bin/sh"]', str(rootfs), f"{portside.host}/signs/app:docker")
    docker("import", "--change", 'CMD ["/bin/sh"]', str(other), f"{portside.host}/unsigned/app:docker")
    docker("push", f"{portside.host}/signs/app:docker")
    docker("push", f"{portside.host}/unsigned/app:docker")
    _wait_for_signature(portside, "signs/app", "docker")
    docker("rmi", f"{portside.host}/signs/app:docker", f"{portside.host}/unsigned/app:docker")

    docker("pull", f"{portside.host}/signs/app:docker")
    out = docker("run", "--rm", f"{portside.host}/signs/app:docker", "cat", "/etc/marker").stdout
    assert out.strip() == "docker-policy"
    refused = docker("pull", f"{portside.host}/unsigned/app:docker", check=False)
    assert refused.returncode != 0
    assert "not signed by cosign" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    docker("rmi", f"{portside.host}/signs/app:docker", check=False)
    docker("logout", portside.host, check=False)
