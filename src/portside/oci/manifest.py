"""Parse and validate manifests and indexes into what the registry needs to know.

A `Manifest` lists the blobs it needs (config and layers), the manifests it
needs (an index's children), its subject (referrers API) and artifact type.

A manifest is stored and served back byte for byte, so what is accepted must read the same
in every client: strict RFC 8259 JSON (`load_json`), and the image spec's types in every
field Portside reads (descriptors' mediaType, digest, size, urls, annotations, platform).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

from portside.errors import DigestInvalid, ManifestInvalid
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest

__all__ = ["Descriptor", "Manifest", "parse_manifest", "load_json"]


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


# Real manifests nest four or five levels; this leaves room for any extension while keeping
# every later reading of a stored manifest far from Python's recursion limit.
MAX_DEPTH = 64
_INT64 = range(-(2**63), 2**63)
_INT64_DIGITS = len(str(2**63))
_SIZES = range(2**63)  # a descriptor's size is an int64 that is not negative
_BOM = b"\xef\xbb\xbf"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def load_json(payload: bytes) -> Any:
    """`payload` as JSON the way RFC 8259 says to exchange it, and every client can read it:
    UTF-8 with no byte order mark, numbers that are finite and integers that fit in 64 bits
    (no NaN or Infinity, which are not JSON), no object with the same key twice (parsers
    disagree on which one counts), no lone surrogates, at most `MAX_DEPTH` levels deep."""
    if payload.startswith(_BOM):
        raise ManifestInvalid("manifest must not start with a byte order mark")
    try:
        text = payload.decode("utf-8")  # strict: no UTF-16 or UTF-32, no encoded surrogates
    except UnicodeDecodeError as exc:
        raise ManifestInvalid(f"manifest is not UTF-8: {exc}") from None
    try:
        doc = json.loads(
            text,
            parse_constant=_not_a_number,
            parse_int=_integer,
            parse_float=_finite,
            object_pairs_hook=_object,
        )
    except RecursionError:
        raise ManifestInvalid(f"manifest nests deeper than {MAX_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise ManifestInvalid(f"manifest is not valid JSON: {exc}") from None
    # Walked only when it can matter (most manifests need neither): strictly decoded UTF-8
    # holds no surrogates, only an escape from \uD800 to \uDFFF makes one; and a document
    # with no more brackets than MAX_DEPTH cannot nest deeper.
    strings = _SURROGATE_ESCAPE.search(text) is not None
    if isinstance(doc, dict | list) and (strings or text.count("[") + text.count("{") > MAX_DEPTH):
        _check_values(doc, strings)
    return doc


def _not_a_number(text: str) -> Any:
    raise ManifestInvalid(f"{text} is not a JSON number")


def _integer(text: str) -> int:
    # The length first: `int` refuses to read more than 4,300 digits.
    if len(text.lstrip("-")) > _INT64_DIGITS or int(text) not in _INT64:
        raise ManifestInvalid(f"integer {_shortened(text)} does not fit in 64 bits")
    return int(text)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ManifestInvalid(f"number {_shortened(text)} is out of range")
    return value


def _shortened(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:40]}… ({len(text)} characters)"


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ManifestInvalid(f"manifest has the key {_shortened(key)!r} twice in one object")
            seen.add(key)
    return found


def _check_values(doc: dict[str, Any] | list[Any], strings: bool) -> None:
    """Depth (and, when `strings`, every string) of a parsed document, walked without recursion."""
    pending: list[tuple[Any, int]] = [(doc, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise ManifestInvalid(f"manifest nests deeper than {MAX_DEPTH} levels")
        items = value.values() if isinstance(value, dict) else value
        if strings:
            for text in (*value, *items) if isinstance(value, dict) else items:
                if isinstance(text, str):
                    _check_string(text)
        pending.extend((item, depth + 1) for item in items if isinstance(item, dict | list))


def _check_string(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ManifestInvalid("manifest holds a lone surrogate (U+D800 to U+DFFF), which is no character") from None


def _media_type(value: Any, where: str) -> str:
    if not isinstance(value, str) or not mt.is_media_type(value):
        shown = repr(_shortened(value)) if isinstance(value, str) else f"a value of type {type(value).__name__}"
        raise ManifestInvalid(f"{where} must be a media type (type/subtype, RFC 6838), not {shown}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ManifestInvalid(f"{where} must be an array of strings")
    return tuple(value)


def _annotations(value: Any, where: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
        raise ManifestInvalid(f"{where} must be an object of strings")
    return value


# The platform fields the image spec defines, and their types.
_PLATFORM_STRINGS = ("architecture", "os", "os.version", "variant")
_PLATFORM_LISTS = ("os.features", "features")


def _platform(value: Any, where: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ManifestInvalid(f"{where} must be an object")
    for key in _PLATFORM_STRINGS:
        if key in value and not isinstance(value[key], str):
            raise ManifestInvalid(f"{where}.{key} must be a string")
    for key in _PLATFORM_LISTS:
        if key in value:
            _strings(value[key], f"{where}.{key}")
    return value


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestInvalid(f"{where}: descriptor must be an object")
    media_type, digest, size = raw.get("mediaType"), raw.get("digest"), raw.get("size")
    if media_type is None:
        raise ManifestInvalid(f"{where}: descriptor lacks mediaType")
    _media_type(media_type, f"{where}.mediaType")
    if not isinstance(digest, str):
        raise ManifestInvalid(f"{where}: descriptor lacks digest")
    if type(size) is not int or size not in _SIZES:
        raise ManifestInvalid(f"{where}: descriptor size must be a non-negative 64-bit integer")
    try:
        parsed = Digest.parse(digest)
    except DigestInvalid as exc:
        raise ManifestInvalid(f"{where}: {exc}") from exc
    artifact_type = raw.get("artifactType")
    if artifact_type is not None:
        _media_type(artifact_type, f"{where}.artifactType")
    if raw.get("data") is not None and not isinstance(raw["data"], str):
        raise ManifestInvalid(f"{where}.data must be a string (base64)")
    return Descriptor(
        media_type,
        parsed,
        size,
        artifact_type,
        _annotations(raw.get("annotations"), f"{where}.annotations"),
        _platform(raw.get("platform"), f"{where}.platform"),
        () if raw.get("urls") is None else _strings(raw["urls"], f"{where}.urls"),
    )


def parse_manifest(payload: bytes, content_type: str | None, digest: Digest) -> Manifest:
    """Validate `payload` as a manifest of `content_type` (or of its own `mediaType`)."""
    doc = load_json(payload)
    if not isinstance(doc, dict):
        raise ManifestInvalid("manifest must be a JSON object")

    declared = doc.get("mediaType")
    header_type = (content_type or "").split(";")[0].strip() or None
    if declared is not None and not isinstance(declared, str):
        raise ManifestInvalid("mediaType must be a string")
    if doc.get("schemaVersion") == 1 or declared in mt.SCHEMA1 or header_type in mt.SCHEMA1:
        raise ManifestInvalid("Docker schema1 manifests are not supported; push a schema2 or OCI manifest")
    if type(doc.get("schemaVersion")) is not int or doc["schemaVersion"] != 2:
        raise ManifestInvalid("schemaVersion must be 2")
    if declared and header_type and declared != header_type and header_type in mt.MANIFESTS:
        raise ManifestInvalid(f"mediaType {declared!r} does not match Content-Type {header_type!r}")
    media_type = declared or (header_type if header_type in mt.MANIFESTS else None) or _guess(doc)
    if media_type not in mt.MANIFESTS:
        raise ManifestInvalid(f"unsupported manifest media type {media_type!r}")

    subject = _descriptor(doc["subject"], "subject") if doc.get("subject") is not None else None
    artifact_type = doc.get("artifactType")
    if artifact_type is not None:
        _media_type(artifact_type, "artifactType")
    annotations = _annotations(doc.get("annotations"), "annotations")

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
