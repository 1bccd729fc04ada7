"""skopeo: OCI layout round trip, inspect, `copy --all` of a two-platform index, list-tags."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from tests.e2e.clients import RegistryHTTP, json_out, skopeo
from tests.e2e.images import OCI_INDEX, OCI_MANIFEST, OciLayout, busybox_layout, sha256_digest, two_platform_layout
from tests.servers import RegistryServer

pytestmark = pytest.mark.e2e

NO_TLS = "--tls-verify=false"


def test_skopeo_oci_layout_round_trip_and_inspect(
    registry: RegistryServer, registry_http: RegistryHTTP, repo: str, tmp_path: Path
) -> None:
    layout, image = busybox_layout(tmp_path / "src", tag="v1", marker="skopeo-round-trip")
    dest = f"docker://{registry.host}/{repo}:v1"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.root}:v1", dest)

    # the registry serves the very bytes of the manifest written to the layout
    assert registry_http.manifest_digest(repo, "v1") == image.manifest.digest
    assert registry_http.manifest(repo, "v1").content == image.manifest_bytes
    raw = skopeo("inspect", NO_TLS, "--raw", dest).stdout.encode()
    assert sha256_digest(raw) == image.manifest.digest

    info = json_out(skopeo("inspect", NO_TLS, dest))
    assert info["Digest"] == image.manifest.digest
    assert info["Layers"] == [d.digest for d in image.layers]
    assert info["Architecture"] == "amd64" and info["Os"] == "linux"
    assert info["Labels"] == {"org.example.marker": "skopeo-round-trip"}
    config = json_out(skopeo("inspect", NO_TLS, "--config", "--raw", dest))
    assert config["rootfs"]["diff_ids"] and config["config"]["Cmd"] == ["/bin/sh"]

    # and back to a new layout: same manifest, same blobs, bit for bit
    out_dir = tmp_path / "out"
    skopeo("copy", "--src-tls-verify=false", dest, f"oci:{out_dir}:copied")
    index = OciLayout.read_index(out_dir)
    [desc] = index["manifests"]
    assert desc["digest"] == image.manifest.digest
    assert desc["annotations"]["org.opencontainers.image.ref.name"] == "copied"
    for d in [image.manifest, image.config, *image.layers]:
        copied = (out_dir / "blobs" / "sha256" / d.digest.split(":")[1]).read_bytes()
        assert sha256_digest(copied) == d.digest and len(copied) == d.size

    # copy by digest between two repositories of the registry
    other = f"docker://{registry.host}/{repo}-copy:v1"
    skopeo(
        "copy",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        f"docker://{registry.host}/{repo}@{image.manifest.digest}",
        other,
    )
    assert registry_http.manifest_digest(f"{repo}-copy", "v1") == image.manifest.digest

    # skopeo delete removes the manifest (by digest, so every tag of it goes)
    skopeo("delete", NO_TLS, f"docker://{registry.host}/{repo}-copy@{image.manifest.digest}")
    assert registry_http.head_manifest(f"{repo}-copy", "v1").status_code == 404
    assert registry_http.head_manifest(f"{repo}-copy", image.manifest.digest).status_code == 404
    gone = skopeo("inspect", NO_TLS, f"docker://{registry.host}/{repo}-copy:v1", check=False)
    assert gone.returncode != 0 and "manifest unknown" in gone.stderr.lower(), gone.stderr
    # the first repository is untouched
    assert registry_http.manifest_digest(repo, "v1") == image.manifest.digest


def test_skopeo_copy_all_two_platform_index(
    registry: RegistryServer, registry_http: RegistryHTTP, repo: str, tmp_path: Path
) -> None:
    layout, index_desc, index_bytes, images = two_platform_layout(tmp_path / "src", tag="multi", name=repo)
    dest = f"docker://{registry.host}/{repo}:multi"
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{layout.root}:multi", dest)

    resp = registry_http.manifest(repo, "multi")
    assert resp.headers["content-type"].split(";")[0] == OCI_INDEX
    assert resp.content == index_bytes
    assert registry_http.manifest_digest(repo, "multi") == index_desc.digest
    raw = skopeo("inspect", NO_TLS, "--raw", dest).stdout.encode()
    assert sha256_digest(raw) == index_desc.digest
    listed = json.loads(raw)["manifests"]
    assert [(m["digest"], m["platform"]["architecture"]) for m in listed] == [
        (img.manifest.digest, img.manifest.platform["architecture"]) for img in images
    ]

    for img in images:
        child = registry_http.manifest(repo, img.manifest.digest)
        assert child.headers["content-type"].split(";")[0] == OCI_MANIFEST
        assert child.content == img.manifest_bytes
        for d in [img.config, *img.layers]:
            assert sha256_digest(registry_http.blob(repo, d.digest)) == d.digest

    # skopeo resolves each platform through the index
    for img in images:
        arch = img.manifest.platform["architecture"]
        info = json_out(skopeo("inspect", NO_TLS, "--override-os", "linux", "--override-arch", arch, dest))
        assert info["Architecture"] == arch
        assert info["Layers"] == [d.digest for d in img.layers]
        assert info["Labels"]["org.example.platform"].startswith(f"linux/{arch}")

    # and the whole index comes back into a layout unchanged
    out_dir = tmp_path / "out"
    skopeo("copy", "--all", "--src-tls-verify=false", dest, f"oci:{out_dir}:multi")
    [desc] = OciLayout.read_index(out_dir)["manifests"]
    assert desc["digest"] == index_desc.digest
    for img in images:
        assert (out_dir / "blobs" / "sha256" / img.manifest.digest.split(":")[1]).read_bytes() == img.manifest_bytes


def test_skopeo_list_tags(registry: RegistryServer, registry_http: RegistryHTTP, repo: str, tmp_path: Path) -> None:
    layout, image = busybox_layout(tmp_path / "src", tag="v1", marker="list-tags")
    tags = ["v1", "v1.0", "latest", "2024-01-01", "a_b"]
    for tag in tags:
        skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.root}:v1", f"docker://{registry.host}/{repo}:{tag}")

    listed = json_out(skopeo("list-tags", NO_TLS, f"docker://{registry.host}/{repo}"))
    assert listed["Repository"] == f"{registry.host}/{repo}"
    assert sorted(listed["Tags"]) == sorted(tags)
    assert sorted(registry_http.tags(repo)) == sorted(tags)
    for tag in tags:
        assert registry_http.manifest_digest(repo, tag) == image.manifest.digest


def test_skopeo_round_trip_of_a_layer_larger_than_the_write_batches(
    registry: RegistryServer, registry_http: RegistryHTTP, repo: str, tmp_path: Path
) -> None:
    """A 24 MiB layer of random bytes streams in one upload request: the registry writes and
    hashes it in 4 MiB batches, one in flight while the next bytes arrive."""
    random_file = _tar_member("data.bin", os.urandom(24 * 1024 * 1024))
    layout = OciLayout(tmp_path / "src")
    image = layout.add_image([random_file], cmd=["/bin/true"])
    layout.tag(image.manifest, "big")
    dest = f"docker://{registry.host}/{repo}:big"
    skopeo("copy", "--dest-tls-verify=false", f"oci:{layout.root}:big", dest)

    [layer] = image.layers
    assert layer.size > 20 * 1024 * 1024
    pulled = registry_http.blob(repo, layer.digest)
    assert sha256_digest(pulled) == layer.digest and len(pulled) == layer.size
    out_dir = tmp_path / "out"
    skopeo("copy", "--src-tls-verify=false", dest, f"oci:{out_dir}:big")
    copied = (out_dir / "blobs" / "sha256" / layer.digest.split(":")[1]).read_bytes()
    assert copied == layout.blob(layer.digest)


def _tar_member(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = len(data), 1_700_000_000
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
