"""Parse and validate manifests and indexes into what the registry needs to know.

A `Manifest` lists the blobs it needs (config and layers), the manifests it
needs (an index's children), its subject (referrers API) and artifact type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from portside.errors import ManifestInvalid
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest

__all__ = ["Descriptor", "Manifest", "parse_manifest"]


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None
    urls: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.artifact_type:
            out["artifactType"] = self.artifact_type
        if self.annotations:
            out["annotations"] = self.annotations
        if self.platform:
            out["platform"] = self.platform
        return out


@dataclass(frozen=True, slots=True)
class Manifest:
    media_type: str
    digest: Digest
    payload: bytes
    blobs: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] | None = field(default=None)

    @property
    def is_index(self) -> bool:
        return self.media_type in mt.INDEXES


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestInvalid(f"{where}: descriptor must be an object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise ManifestInvalid(f"{where}: descriptor lacks mediaType")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}: descriptor lacks digest")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestInvalid(f"{where}: descriptor size must be a non-negative integer")
    try:
        parsed = Digest.parse(digest)
    except Exception as exc:
        raise ManifestInvalid(f"{where}: {exc}") from exc
    annotations = raw.get("annotations")
    if annotations is not None and not isinstance(annotations, dict):
        raise ManifestInvalid(f"{where}: annotations must be an object")
    urls = raw.get("urls") or ()
    platform = raw.get("platform")
    artifact_type = raw.get("artifactType")
    return Descriptor(
        media_type,
        parsed,
        size,
        artifact_type if isinstance(artifact_type, str) else None,
        annotations,
        platform if isinstance(platform, dict) else None,
        tuple(u for u in urls if isinstance(u, str)),
    )


def parse_manifest(payload: bytes, content_type: str | None, digest: Digest) -> Manifest:
    """Validate `payload` as a manifest of `content_type` (or of its own `mediaType`)."""
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest must be a JSON object")

    declared = doc.get("mediaType")
    header_type = (content_type or "").split(";")[0].strip() or None
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    if doc.get("schemaVersion") == 1 or declared in mt.SCHEMA1 or header_type in mt.SCHEMA1:
        raise ManifestInvalid("Docker schema1 manifests are not supported; push a schema2 or OCI manifest")
    if doc.get("schemaVersion") != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    if declared and header_type and declared != header_type and header_type in mt.MANIFESTS:
        raise ManifestInvalid(f"mediaType {declared!r} does not match Content-Type {header_type!r}")
    media_type = declared or (header_type if header_type in mt.MANIFESTS else None) or _guess(doc)
    if media_type not in mt.MANIFESTS:
        raise ManifestInvalid(f"unsupported manifest media type {media_type!r}")

    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise ManifestInvalid("artifactType must be a string")
    annotations = doc.get("annotations") if isinstance(doc.get("annotations"), dict) else None

    if media_type in mt.INDEXES:
        children = doc.get("manifests")
        if not isinstance(children, list):
            raise ManifestInvalid("an index must have a manifests list")
        return Manifest(
            media_type,
            digest,
            payload,
            children=tuple(_descriptor(c, f"manifests[{i}]") for i, c in enumerate(children)),
            subject=subject,
            artifact_type=artifact_type,
            annotations=annotations,
        )

    if "config" not in doc:
        raise ManifestInvalid("an image manifest must have a config")
    config = _descriptor(doc["config"], "config")
    layers = doc.get("layers", [])
    if not isinstance(layers, list):
        raise ManifestInvalid("layers must be a list")
    if media_type == mt.DOCKER_MANIFEST and not layers:
        raise ManifestInvalid("a Docker image manifest needs at least one layer")
    blobs = (config, *(_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)))
    # An artifact's type is its artifactType, else its config's media type (OCI image spec).
    return Manifest(
        media_type,
        digest,
        payload,
        blobs=blobs,
        subject=subject,
        artifact_type=artifact_type or config.media_type,
        annotations=annotations,
    )


def _guess(doc: dict[str, Any]) -> str | None:
    """OCI manifests may omit mediaType; tell an index from an image by its fields."""
    if "manifests" in doc:
        return mt.OCI_INDEX
    if "config" in doc:
        return mt.OCI_MANIFEST
    return None
