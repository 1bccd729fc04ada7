"""Helpers for the HTTP-level conformance suite: content, manifests and push steps.

Everything here speaks plain HTTP through httpx, the way a registry client would;
nothing reaches into the server's code or storage.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

# Media types -----------------------------------------------------------------------------

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_NONDIST = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

ALL_MANIFEST_TYPES = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST]
ACCEPT_ALL = ", ".join(ALL_MANIFEST_TYPES)

# The OCI empty descriptor: the two bytes `{}`.
EMPTY_JSON = b"{}"
EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

# Every code the OCI Distribution Specification allows in an error body.
SPEC_ERROR_CODES = {
    "BLOB_UNKNOWN",
    "BLOB_UPLOAD_INVALID",
    "BLOB_UPLOAD_UNKNOWN",
    "DIGEST_INVALID",
    "MANIFEST_BLOB_UNKNOWN",
    "MANIFEST_INVALID",
    "MANIFEST_UNKNOWN",
    "NAME_INVALID",
    "NAME_UNKNOWN",
    "SIZE_INVALID",
    "UNAUTHORIZED",
    "DENIED",
    "UNSUPPORTED",
    "TOOMANYREQUESTS",
}


# Content ---------------------------------------------------------------------------------


def digest(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


def random_bytes(size: int) -> bytes:
    return os.urandom(size)


def unique(prefix: str = "t") -> str:
    """A repository-name component no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=False).encode()


@dataclass
class Blob:
    data: bytes
    media_type: str = OCI_LAYER
    algorithm: str = "sha256"

    @property
    def digest(self) -> str:
        return digest(self.data, self.algorithm)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def layer(size: int = 512, media_type: str = OCI_LAYER) -> Blob:
    return Blob(random_bytes(size), media_type)


def config_blob(media_type: str = OCI_CONFIG, platform: tuple[str, str] = ("linux", "amd64")) -> Blob:
    cfg = {
        "architecture": platform[1],
        "os": platform[0],
        "rootfs": {"type": "layers", "diff_ids": []},
        "config": {"Labels": {"nonce": uuid.uuid4().hex}},
    }
    return Blob(canonical(cfg), media_type)


def empty_config() -> Blob:
    return Blob(EMPTY_JSON, OCI_EMPTY)


@dataclass
class Manifest:
    """A manifest as bytes, exactly as it is pushed, with its media type."""

    body: bytes
    media_type: str
    blobs: list[Blob] = field(default_factory=list)
    children: list[Manifest] = field(default_factory=list)

    @property
    def digest(self) -> str:
        return digest(self.body)

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


def image_manifest(
    config: Blob | None = None,
    layers: list[Blob] | None = None,
    *,
    media_type: str = OCI_MANIFEST,
    artifact_type: str | None = None,
    subject: Manifest | dict[str, Any] | None = None,
    annotations: dict[str, str] | None = None,
    include_media_type: bool = True,
) -> Manifest:
    if config is None:
        config = config_blob(DOCKER_CONFIG if media_type == DOCKER_MANIFEST else OCI_CONFIG)
    if layers is None:
        layers = [layer(media_type=DOCKER_LAYER if media_type == DOCKER_MANIFEST else OCI_LAYER)]
    doc: dict[str, Any] = {"schemaVersion": 2}
    if include_media_type:
        doc["mediaType"] = media_type
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    doc["config"] = config.descriptor()
    doc["layers"] = [b.descriptor() for b in layers]
    if subject is not None:
        doc["subject"] = subject.descriptor() if isinstance(subject, Manifest) else subject
    if annotations:
        doc["annotations"] = annotations
    return Manifest(json.dumps(doc, indent=2).encode(), media_type, [config, *layers])


def artifact_manifest(
    artifact_type: str,
    *,
    subject: Manifest | None = None,
    layers: list[Blob] | None = None,
    annotations: dict[str, str] | None = None,
) -> Manifest:
    """An OCI artifact in the v1.1 style: image manifest, artifactType, empty config."""
    if layers is None:
        layers = [Blob(os.urandom(64), "application/vnd.example.payload")]
    return image_manifest(empty_config(), layers, artifact_type=artifact_type, subject=subject, annotations=annotations)


def index_manifest(
    children: list[Manifest],
    *,
    media_type: str = OCI_INDEX,
    platforms: list[tuple[str, str]] | None = None,
    artifact_type: str | None = None,
    subject: Manifest | None = None,
    annotations: dict[str, str] | None = None,
) -> Manifest:
    known = [("linux", "amd64"), ("linux", "arm64"), ("linux", "s390x")]
    platforms = platforms or [known[i] if i < len(known) else ("linux", f"arch{i}") for i in range(len(children))]
    entries = []
    for child, (os_, arch) in zip(children, platforms, strict=True):
        entries.append(child.descriptor(platform={"architecture": arch, "os": os_}))
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type}
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    doc["manifests"] = entries
    if subject is not None:
        doc["subject"] = subject.descriptor()
    if annotations:
        doc["annotations"] = annotations
    return Manifest(json.dumps(doc, indent=3).encode(), media_type, [], list(children))


def schema1_manifest(name: str, tag: str) -> Manifest:
    doc = {
        "schemaVersion": 1,
        "name": name,
        "tag": tag,
        "architecture": "amd64",
        "fsLayers": [{"blobSum": digest(b"")}],
        "history": [{"v1Compatibility": json.dumps({"id": uuid.uuid4().hex * 2})}],
    }
    return Manifest(json.dumps(doc, indent=3).encode(), DOCKER_SCHEMA1)


# HTTP steps ------------------------------------------------------------------------------


def location(response: httpx.Response) -> httpx.URL:
    """The response's Location made absolute (the spec allows relative ones)."""
    value = response.headers.get("location")
    assert value, f"no Location header in {response.status_code} answer: {dict(response.headers)}"
    return response.request.url.join(value)


def with_params(url: httpx.URL, **params: str) -> httpx.URL:
    """`url` plus query parameters, keeping the ones the registry put there."""
    return url.copy_merge_params(params)


def start_upload(client: httpx.Client, repo: str) -> httpx.URL:
    r = client.post(f"/v2/{repo}/blobs/uploads/", headers={"content-length": "0"})
    assert r.status_code == 202, error_text(r)
    return location(r)


def push_blob(client: httpx.Client, repo: str, blob: Blob | bytes) -> str:
    """POST then PUT, the upload every registry supports. Returns the digest."""
    data = blob.data if isinstance(blob, Blob) else blob
    algorithm = blob.algorithm if isinstance(blob, Blob) else "sha256"
    d = digest(data, algorithm)
    url = start_upload(client, repo)
    r = client.put(with_params(url, digest=d), content=data, headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, error_text(r)
    return d


def put_manifest(
    client: httpx.Client, repo: str, reference: str, manifest: Manifest, content_type: str | None = None
) -> httpx.Response:
    return client.put(
        f"/v2/{repo}/manifests/{reference}",
        content=manifest.body,
        headers={"content-type": content_type or manifest.media_type},
    )


def push_manifest(client: httpx.Client, repo: str, manifest: Manifest, reference: str | None = None) -> str:
    """Pushes the manifest's blobs and children (recursively), then the manifest."""
    for child in manifest.children:
        push_manifest(client, repo, child)
    for blob in manifest.blobs:
        push_blob(client, repo, blob)
    r = put_manifest(client, repo, reference or manifest.digest, manifest)
    assert r.status_code == 201, error_text(r)
    return manifest.digest


def push_image(client: httpx.Client, repo: str, tag: str | None = None, **kwargs: Any) -> Manifest:
    manifest = image_manifest(**kwargs)
    push_manifest(client, repo, manifest, tag)
    return manifest


# Answers ---------------------------------------------------------------------------------


def error_text(response: httpx.Response) -> str:
    return (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        f"{dict(response.headers)} {response.text[:2000]!r}"
    )


def errors(response: httpx.Response) -> list[dict[str, Any]]:
    """The error list of a spec error body, checked for shape."""
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"error answer is not JSON: {error_text(response)}") from None
    assert isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"], error_text(response)
    for item in body["errors"]:
        assert isinstance(item, dict), error_text(response)
        assert isinstance(item.get("code"), str) and item["code"], error_text(response)
        assert item["code"] in SPEC_ERROR_CODES, (
            f"code {item['code']!r} is not one of the spec's: {error_text(response)}"
        )
        assert "message" in item and isinstance(item["message"], str), error_text(response)
    return body["errors"]


def assert_error(response: httpx.Response, status: int | set[int], *codes: str) -> dict[str, Any]:
    """The answer has this status and a spec error body whose first error has one of `codes`."""
    statuses = {status} if isinstance(status, int) else status
    assert response.status_code in statuses, error_text(response)
    found = errors(response)
    if codes:
        assert any(e["code"] in codes for e in found), f"wanted {codes}: {error_text(response)}"
    return found[0]


def assert_detail_present(response: httpx.Response) -> None:
    """Portside promises all three keys, `detail` included (it may be null)."""
    for item in response.json()["errors"]:
        assert set(item) >= {"code", "message", "detail"}, error_text(response)
