"""podman (runc, no TLS, host network): push, pull, run the pulled image."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.clients import Podman, RegistryHTTP
from tests.e2e.images import DOCKER_MANIFEST, OCI_MANIFEST, busybox_rootfs_tar
from tests.servers import RegistryServer

pytestmark = pytest.mark.e2e


def test_podman_push_pull_run(
    podman: Podman, registry: RegistryServer, registry_http: RegistryHTTP, repo: str, tmp_path: Path
) -> None:
    local = f"localhost/{repo}:src"
    ref = f"{registry.host}/{repo}:v1"
    ref_v2s2 = f"{registry.host}/{repo}:v2s2"
    rootfs = busybox_rootfs_tar(tmp_path / "rootfs.tar", {"etc/marker": b"pushed-by-podman\n"})
    podman("import", "--change", 'CMD ["/bin/sh"]', rootfs, local)

    # default format (OCI) and Docker schema2
    podman("push", "--tls-verify=false", "--digestfile", tmp_path / "digest", local, ref)
    digest = (tmp_path / "digest").read_text().strip()
    podman("push", "--tls-verify=false", "--format", "v2s2", "--digestfile", tmp_path / "digest2", local, ref_v2s2)
    digest_v2s2 = (tmp_path / "digest2").read_text().strip()

    assert registry_http.manifest_digest(repo, "v1") == digest
    assert registry_http.manifest(repo, "v1").headers["content-type"].split(";")[0] == OCI_MANIFEST
    assert registry_http.manifest_digest(repo, "v2s2") == digest_v2s2
    assert registry_http.manifest(repo, "v2s2").headers["content-type"].split(";")[0] == DOCKER_MANIFEST
    assert digest != digest_v2s2

    image_id = podman("image", "inspect", "--format", "{{.Id}}", local).stdout.strip()
    podman("rmi", "--force", local)
    assert podman("image", "exists", image_id, check=False).returncode != 0, "the image is still stored locally"

    podman("pull", "--tls-verify=false", ref)
    assert podman("image", "inspect", "--format", "{{.Digest}}", ref).stdout.strip() == digest
    out = podman(
        "run", "--rm", "--network", "host", ref, "/bin/sh", "-c", "echo podman-run-$((6*7)); cat /etc/marker"
    ).stdout
    assert out.splitlines() == ["podman-run-42", "pushed-by-podman"], out

    podman("pull", "--tls-verify=false", ref_v2s2)
    out = podman("run", "--rm", "--network", "host", ref_v2s2, "/bin/sh", "-c", "cat /etc/marker").stdout
    assert out.strip() == "pushed-by-podman"

    podman("rmi", "--force", ref, ref_v2s2, check=False)
