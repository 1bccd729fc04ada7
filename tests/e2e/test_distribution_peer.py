"""The CNCF Distribution registry as a peer: copying from it to Portside keeps every digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.clients import RegistryHTTP, skopeo
from tests.e2e.images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    busybox_layout,
    sha256_digest,
    two_platform_layout,
)
from tests.servers import Distribution, RegistryServer

pytestmark = pytest.mark.e2e

NO_TLS = ("--src-tls-verify=false", "--dest-tls-verify=false")


def _raw_digest(ref: str) -> str:
    return sha256_digest(skopeo("inspect", "--tls-verify=false", "--raw", ref).stdout.encode())


def test_skopeo_copy_all_from_distribution(
    distribution: Distribution, registry: RegistryServer, registry_http: RegistryHTTP, repo: str, tmp_path: Path
) -> None:
    dist_http = RegistryHTTP(distribution.url)
    multi, index_desc, _, images = two_platform_layout(tmp_path / "multi", tag="multi", name=repo)
    plain, image = busybox_layout(tmp_path / "plain", tag="v1", marker="from-distribution")
    src = f"docker://{distribution.host}/{repo}"
    dst_repo = f"{repo}-copy"  # distinct even when the registry under test is Distribution itself
    dst = f"docker://{registry.host}/{dst_repo}"

    # fill the peer: an OCI index of two platforms, the same as a Docker manifest list,
    # and a plain image as a Docker schema2 manifest
    skopeo("copy", "--all", "--dest-tls-verify=false", f"oci:{multi.root}:multi", f"{src}:oci-index")
    skopeo(
        "copy", "--all", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{multi.root}:multi", f"{src}:docker-list"
    )
    skopeo("copy", "--format", "v2s2", "--dest-tls-verify=false", f"oci:{plain.root}:v1", f"{src}:plain")
    assert dist_http.manifest_digest(repo, "oci-index") == index_desc.digest
    expected_types = {"oci-index": OCI_INDEX, "docker-list": DOCKER_MANIFEST_LIST, "plain": DOCKER_MANIFEST}
    for tag, media_type in expected_types.items():
        assert dist_http.manifest(repo, tag).headers["content-type"].split(";")[0] == media_type

    # copy everything, every platform, from the peer to the registry under test
    for tag in expected_types:
        skopeo("copy", "--all", *NO_TLS, f"{src}:{tag}", f"{dst}:{tag}")

    for tag, media_type in expected_types.items():
        peer = dist_http.manifest(repo, tag)
        ours = registry_http.manifest(dst_repo, tag)
        assert ours.content == peer.content, f"{tag}: the manifest bytes differ"
        assert ours.headers["content-type"].split(";")[0] == media_type
        assert registry_http.manifest_digest(dst_repo, tag) == dist_http.manifest_digest(repo, tag)
        assert ours.headers["Docker-Content-Digest"] == peer.headers["Docker-Content-Digest"]
        assert _raw_digest(f"{dst}:{tag}") == _raw_digest(f"{src}:{tag}")
        # every child of an index came along, byte for byte, and so did each blob
        body = ours.json()
        children = [m["digest"] for m in body.get("manifests", [])]
        manifests = [registry_http.manifest(dst_repo, d) for d in children] or [ours]
        for child_digest in children:
            assert registry_http.manifest(dst_repo, child_digest).content == (
                dist_http.manifest(repo, child_digest).content
            )
        for m in manifests:
            m_json = m.json()
            for d in [m_json["config"], *m_json["layers"]]:
                assert registry_http.blob(dst_repo, d["digest"]) == dist_http.blob(repo, d["digest"])
        head = registry_http.head_manifest(dst_repo, tag)
        assert head.status_code == 200
        assert head.headers["Docker-Content-Digest"] == peer.headers["Docker-Content-Digest"]
        assert int(head.headers["Content-Length"]) == len(peer.content)

    # the children of the OCI index are the images written to the layout
    assert [m["digest"] for m in registry_http.manifest(dst_repo, "oci-index").json()["manifests"]] == [
        img.manifest.digest for img in images
    ]
    # the plain image kept its config and layers through the schema2 conversion
    plain_manifest = registry_http.manifest(dst_repo, "plain").json()
    assert plain_manifest["config"]["digest"] == image.config.digest
    assert [d["digest"] for d in plain_manifest["layers"]] == [d.digest for d in image.layers]
    assert sorted(registry_http.tags(dst_repo)) == sorted(expected_types)
