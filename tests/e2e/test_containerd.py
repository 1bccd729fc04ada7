"""containerd: `ctr images pull --plain-http` of an image and of a two-platform index; `ctr images push`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.clients import ContainerdDaemon, RegistryHTTP, skopeo
from tests.e2e.images import busybox_layout, sha256_digest, two_platform_layout
from tests.servers import RegistryServer

pytestmark = pytest.mark.e2e


def _images(daemon: ContainerdDaemon) -> dict[str, tuple[str, str]]:
    """ctr images ls: ref -> (media type, digest)."""
    out = daemon.ctr("images", "ls").stdout.splitlines()
    rows = {}
    for line in out[1:]:
        cols = line.split()
        if len(cols) >= 3:
            rows[cols[0]] = (cols[1], cols[2])
    return rows


def _content(daemon: ContainerdDaemon) -> set[str]:
    return {line.split()[0] for line in daemon.ctr("content", "ls", "--quiet").stdout.splitlines() if line.strip()}


def test_ctr_pull_plain_http(
    containerd_daemon: ContainerdDaemon,
    registry: RegistryServer,
    registry_http: RegistryHTTP,
    repo: str,
    tmp_path: Path,
) -> None:
    layout, image = busybox_layout(tmp_path / "img", tag="v1", marker="containerd")
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.root}:v1", f"docker://{registry.host}/{repo}:v1")
    ref = f"{registry.host}/{repo}:v1"

    try:
        pull = containerd_daemon.ctr("images", "pull", "--plain-http", "--platform", "linux/amd64", ref)
        assert f"unpacking linux/amd64 {image.manifest.digest}" in pull.stdout, pull.stdout
        _, digest = _images(containerd_daemon)[ref]
        assert digest == image.manifest.digest == registry_http.manifest_digest(repo, "v1")
        content = _content(containerd_daemon)
        for d in [image.manifest, image.config, *image.layers]:
            assert d.digest in content, f"{d.digest} was not fetched"
        check = containerd_daemon.ctr("images", "check", f"name=={ref}").stdout
        assert "complete" in check and "incomplete" not in check, check

        # containerd's pusher (POST, then the whole blob in the closing PUT) into a new repository
        pushed = f"{registry.host}/{repo}-pushed:v1"
        containerd_daemon.ctr("images", "tag", ref, pushed)
        containerd_daemon.ctr("images", "push", "--plain-http", pushed)
        assert registry_http.manifest_digest(f"{repo}-pushed", "v1") == image.manifest.digest
        for d in [image.config, *image.layers]:
            assert sha256_digest(registry_http.blob(f"{repo}-pushed", d.digest)) == d.digest
    finally:
        containerd_daemon.ctr("images", "rm", ref, f"{registry.host}/{repo}-pushed:v1", check=False)


def test_ctr_pull_two_platform_index(
    containerd_daemon: ContainerdDaemon,
    registry: RegistryServer,
    registry_http: RegistryHTTP,
    repo: str,
    tmp_path: Path,
) -> None:
    layout, index_desc, _, images = two_platform_layout(tmp_path / "multi", tag="multi", name=repo)
    skopeo(
        "copy", "--all", "--dest-tls-verify=false", f"oci:{layout.root}:multi", f"docker://{registry.host}/{repo}:multi"
    )
    ref = f"{registry.host}/{repo}:multi"
    try:
        containerd_daemon.ctr("images", "pull", "--plain-http", "--all-platforms", ref)
        _, digest = _images(containerd_daemon)[ref]
        assert digest == index_desc.digest == registry_http.manifest_digest(repo, "multi")
        content = _content(containerd_daemon)
        for img in images:
            for d in [img.manifest, img.config, *img.layers]:
                assert d.digest in content, f"{d.digest} ({img.manifest.platform}) was not fetched"
    finally:
        containerd_daemon.ctr("images", "rm", ref, check=False)
