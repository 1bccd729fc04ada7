"""The vulnerability database as an OCI artifact: the air-gap path, where one artifact is
carried across and pushed to this registry, and the database is imported from it.

The artifact is an OCI image manifest with `artifactType` `application/vnd.portside.vulndb.v1`,
the empty config (`application/vnd.oci.empty.v1+json`) and one layer, a bundle (bundle.py)
as a tar (`application/vnd.portside.vulndb.bundle.v1.tar`) or a gzipped tar (`….tar+gzip`).
Made by `portside vulndb export --oci DIR` or pushed with oras::

    oras push portside.example/security/vulndb:latest \\
        --artifact-type application/vnd.portside.vulndb.v1 \\
        bundle.tar.gz:application/vnd.portside.vulndb.bundle.v1.tar+gzip

It is read from this registry's own storage through the registry's services (no HTTP to
itself); the manifest's and the layer's digests and size are checked before anything is
imported, so a tampered or mistyped artifact changes nothing. The sources it fills record
`oci://<repository>@<digest>` as their origin: importing the same digest again is a no-op,
and the scheduled update (Settings.vulndb_artifact) imports when the tag moves.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from portside.errors import BlobUnknown, DigestInvalid, ManifestUnknown
from portside.meta.vulndb import ImportedSource, VulnerabilityStore
from portside.oci.digest import Digest
from portside.registry.blobs import BlobService
from portside.registry.manifests import ManifestService, read_reference
from portside.scan.vulndb.load import read_path
from portside.scan.vulndb.update import ImportOutcome

__all__ = [
    "ARTIFACT_TYPE",
    "BUNDLE_TAR",
    "BUNDLE_TAR_GZIP",
    "EMPTY_CONFIG",
    "ArtifactReference",
    "import_artifact",
    "parse_artifact_reference",
    "write_oci_layout",
    "resolve_artifact",
]

ARTIFACT_TYPE = "application/vnd.portside.vulndb.v1"
BUNDLE_TAR = "application/vnd.portside.vulndb.bundle.v1.tar"
BUNDLE_TAR_GZIP = "application/vnd.portside.vulndb.bundle.v1.tar+gzip"
EMPTY_CONFIG = "application/vnd.oci.empty.v1+json"
_LAYER_SUFFIXES = {BUNDLE_TAR: ".tar", BUNDLE_TAR_GZIP: ".tar.gz"}
_SCHEME = "oci://"


@dataclass(frozen=True, slots=True)
class ArtifactReference:
    repository: str  # <project>/<repo>
    reference: str  # a tag or a digest

    def __str__(self) -> str:
        joiner = "@" if Digest.is_digest(self.reference) else ":"
        return f"{_SCHEME}{self.repository}{joiner}{self.reference}"


def parse_artifact_reference(text: str) -> ArtifactReference:
    """`[oci://]<project>/<repo>:<tag>` or `…@<digest>`."""
    rest = text.removeprefix(_SCHEME)
    if "@" in rest:
        repository, reference = rest.split("@", 1)
    else:
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        if colon <= slash:
            raise ValueError(f"{text}: name a tag or a digest (<project>/<repo>:<tag> or <project>/<repo>@<digest>)")
        repository, reference = rest[:colon], rest[colon + 1 :]
    if "/" not in repository or not reference:
        raise ValueError(f"{text}: not <project>/<repo>:<tag> or <project>/<repo>@<digest>")
    return ArtifactReference(repository, reference)


def origin_of(repository: str, digest: str) -> str:
    return f"{_SCHEME}{repository}@{digest}"


async def resolve_artifact(manifests: ManifestService, where: ArtifactReference) -> str:
    """The digest of the manifest `where` names now (ManifestUnknown when none)."""
    return str((await manifests.get(where.repository, read_reference(where.reference))).digest)


def _bundle_layer(payload: bytes, where: ArtifactReference) -> dict[str, object]:
    """The bundle's descriptor, once the manifest is known to be a vulnerability database."""
    try:
        manifest = json.loads(payload)
    except ValueError:
        raise ValueError(f"{where}: the manifest is not JSON") from None
    if not isinstance(manifest, dict):
        raise ValueError(f"{where}: the manifest is not a JSON object")
    config = manifest.get("config") if isinstance(manifest.get("config"), dict) else {}
    # Older oras puts the type in the config's media type instead of artifactType.
    kind = manifest.get("artifactType") or (config or {}).get("mediaType")
    if kind != ARTIFACT_TYPE:
        raise ValueError(f"{where}: an artifact of type {kind!r}, not {ARTIFACT_TYPE}")
    layers = manifest.get("layers")
    if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict):
        raise ValueError(f"{where}: a vulnerability database artifact has exactly one layer, the bundle")
    layer: dict[str, object] = layers[0]
    if layer.get("mediaType") not in _LAYER_SUFFIXES:
        raise ValueError(f"{where}: the layer is a {layer.get('mediaType')!r}, not {BUNDLE_TAR_GZIP} or {BUNDLE_TAR}")
    try:
        Digest.parse(str(layer.get("digest")))
    except DigestInvalid:
        raise ValueError(f"{where}: the layer's digest {layer.get('digest')!r} is not one") from None
    if not isinstance(layer.get("size"), int):
        raise ValueError(f"{where}: the layer's descriptor lacks a size")
    return layer


async def _fetch_layer(blobs: BlobService, repository: str, layer: dict[str, object], into: Path) -> None:
    """Copy the layer to `into`, checking its digest and size as it streams."""
    expected = Digest.parse(str(layer["digest"]))
    if expected.algorithm != "sha256":
        raise ValueError(f"layer {expected}: only sha256 layers are read")
    handle = await blobs.open(repository, expected)
    hasher = hashlib.sha256()
    size = 0
    with into.open("wb") as out:
        async for chunk in handle.read():
            hasher.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if f"sha256:{hasher.hexdigest()}" != str(expected):
        raise ValueError(f"layer {expected}: its content has digest sha256:{hasher.hexdigest()}; tampered with")
    if size != layer["size"]:
        raise ValueError(f"layer {expected}: {size} bytes, the manifest says {layer['size']}")


async def import_artifact(
    store: VulnerabilityStore, manifests: ManifestService, blobs: BlobService, where: ArtifactReference
) -> ImportOutcome:
    """Import the bundle the artifact `where` carries; unchanged when its digest was imported last."""
    try:
        record = await manifests.get(where.repository, read_reference(where.reference))
    except ManifestUnknown:
        raise ValueError(f"{where}: no such artifact in this registry") from None
    actual = Digest.of(record.payload, record.digest.algorithm)
    if actual != record.digest:
        raise ValueError(f"{where}: the stored manifest has digest {actual}, not {record.digest}; tampered with")
    origin = origin_of(where.repository, str(record.digest))
    previous = [source for source in await store.sources() if source.origin == origin]
    if previous:
        return ImportOutcome(origin, tuple(previous), unchanged=True)
    layer = _bundle_layer(record.payload, where)
    with tempfile.TemporaryDirectory(prefix="portside-vulndb-") as scratch:
        target = Path(scratch) / f"bundle{_LAYER_SUFFIXES[str(layer['mediaType'])]}"
        try:
            await _fetch_layer(blobs, where.repository, layer, target)
        except BlobUnknown:
            raise ValueError(f"{where}: the layer {layer['digest']} is not in the registry") from None
        parsed = await asyncio.to_thread(read_path, target, origin)
    if not parsed:
        raise ValueError(f"{where}: the bundle holds no advisories")
    stored = [
        await store.replace_source(ImportedSource(source.name, source.origin, str(record.digest)), source.advisories)
        for source in parsed
    ]
    skipped = tuple(dict.fromkeys(note for source in parsed for note in source.skipped))
    return ImportOutcome(origin, tuple(stored), skipped=skipped)


def write_oci_layout(bundle: Path, target: Path, tag: str) -> str:
    """Write the artifact for `bundle` (a bundle directory, or its .tar/.tar.gz) as an OCI
    image layout at `target`, `tag` naming it; the manifest's digest. Carried across, it is
    pushed with `oras cp --from-oci-layout DIR:TAG …` or `skopeo copy oci:DIR:TAG …`."""
    if bundle.is_dir():
        packed = io.BytesIO()
        with tarfile.open(fileobj=packed, mode="w:gz") as archive:
            for item in sorted(bundle.iterdir()):
                archive.add(item, item.name)
        layer, layer_type = packed.getvalue(), BUNDLE_TAR_GZIP
    elif tarfile.is_tarfile(bundle):
        layer = bundle.read_bytes()
        layer_type = BUNDLE_TAR_GZIP if layer[:2] == b"\x1f\x8b" else BUNDLE_TAR
    else:
        raise ValueError(f"{bundle}: not a bundle directory or a tar of one")
    config = b"{}"
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_CONFIG, "digest": str(Digest.of(config)), "size": len(config)},
        "layers": [{"mediaType": layer_type, "digest": str(Digest.of(layer)), "size": len(layer)}],
    }
    payload = json.dumps(manifest, separators=(",", ":")).encode()
    blobs = target / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    for content in (config, layer, payload):
        (blobs / Digest.of(content).hex).write_bytes(content)
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "artifactType": ARTIFACT_TYPE,
                "digest": str(Digest.of(payload)),
                "size": len(payload),
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (target / "index.json").write_text(json.dumps(index, indent=2) + "\n")
    (target / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}) + "\n")
    return str(Digest.of(payload))
