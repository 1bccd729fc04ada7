"""docker (daemon from Debian's docker.io): push, rmi, pull, run the pulled image."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.clients import DockerDaemon, RegistryHTTP, skopeo
from tests.e2e.images import DOCKER_MANIFEST, busybox_rootfs_tar, two_platform_layout
from tests.servers import RegistryServer

pytestmark = pytest.mark.e2e


def test_docker_push_pull_run(
    docker_daemon: DockerDaemon, registry: RegistryServer, registry_http: RegistryHTTP, repo: str, tmp_path: Path
) -> None:
    docker = docker_daemon.docker
    ref = f"{registry.host}/{repo}:v1"
    rootfs = busybox_rootfs_tar(tmp_path / "rootfs.tar", {"etc/marker": b"pushed-by-docker\n"})
    image_id = docker("import", "--change", 'CMD ["/bin/sh"]', rootfs, ref).stdout.strip()
    try:
        push = docker("push", ref)
        found = re.search(r"v1: digest: (sha256:[0-9a-f]{64}) size: (\d+)", push.stdout)
        assert found, f"no digest in docker push output:\n{push.stdout}"
        digest, size = found.group(1), int(found.group(2))

        # the registry holds exactly what docker pushed: a schema2 manifest with that digest
        resp = registry_http.manifest(repo, "v1", accept=[DOCKER_MANIFEST])
        assert resp.headers["content-type"].split(";")[0] == DOCKER_MANIFEST
        assert registry_http.manifest_digest(repo, "v1") == digest
        assert len(resp.content) == size
        manifest = resp.json()
        assert len(manifest["layers"]) == 1
        for desc in [manifest["config"], *manifest["layers"]]:
            assert len(registry_http.blob(repo, desc["digest"])) == desc["size"]

        # remove the only local reference so the pull really downloads it
        docker("rmi", ref)
        assert docker("image", "inspect", image_id, check=False).returncode != 0, "the image is still stored"

        pull = docker("pull", ref)
        assert f"Digest: {digest}" in pull.stdout, pull.stdout
        pulled_id = docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
        assert pulled_id == image_id, "the pulled image is not the pushed one (its config differs)"
        repo_digests = json.loads(docker("image", "inspect", "--format", "{{json .RepoDigests}}", ref).stdout)
        assert f"{registry.host}/{repo}@{digest}" in repo_digests

        out = docker(
            "run", "--rm", "--network", "host", ref, "/bin/sh", "-c", "echo docker-run-$((6*7)); cat /etc/marker"
        ).stdout
        assert out.splitlines() == ["docker-run-42", "pushed-by-docker"], out

        # pull by digest as well
        by_digest = f"{registry.host}/{repo}@{digest}"
        docker("rmi", ref)
        assert docker("image", "inspect", image_id, check=False).returncode != 0, "the image is still stored"
        docker("pull", by_digest)
        out = docker("run", "--rm", "--network", "host", by_digest, "/bin/sh", "-c", "echo by-digest").stdout
        assert out.strip() == "by-digest"

        # a push to a second repository mounts the layer from the first instead of uploading it
        other = f"{registry.host}/{repo}-other:v1"
        docker("tag", by_digest, other)
        push2 = docker("push", other)
        assert f"Mounted from {repo}" in push2.stdout, push2.stdout
        assert f"v1: digest: {digest}" in push2.stdout, push2.stdout
        assert registry_http.manifest_digest(f"{repo}-other", "v1") == digest
    finally:
        docker("rmi", "--force", image_id, check=False)


def test_docker_pull_and_run_from_two_platform_index(
    docker_daemon: DockerDaemon, registry: RegistryServer, registry_http: RegistryHTTP, repo: str, tmp_path: Path
) -> None:
    docker = docker_daemon.docker
    layout, index_desc, _, images = two_platform_layout(tmp_path / "multi", tag="multi", name=repo, runnable_amd64=True)
    skopeo(
        "copy", "--all", "--dest-tls-verify=false", f"oci:{layout.root}:multi", f"docker://{registry.host}/{repo}:multi"
    )
    ref = f"{registry.host}/{repo}:multi"
    try:
        pull = docker("pull", "--platform", "linux/amd64", ref)
        assert f"Digest: {index_desc.digest}" in pull.stdout, pull.stdout
        config_digest = docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()
        assert config_digest == images[0].config.digest  # the amd64 child was chosen
        out = docker("run", "--rm", "--network", "host", ref, "/bin/sh", "-c", "cat /etc/platform.txt").stdout
        assert out.strip() == f"{repo} linux/amd64"
    finally:
        docker("rmi", "--force", ref, check=False)
