"""Finding an image's signatures in the registry and verifying them against a project's
trust material (mgmt/trust_policy.py), with the pure checks of `portside.trust`.

Where signatures live, per image `sha256:<hex>` of a repository:
- cosign's tag scheme: the manifest tagged `sha256-<hex>.sig`, one signature a layer;
- referrers (`subject` = the image): cosign's OCI 1.1 signatures (artifactType
  `application/vnd.dev.cosign.artifact.sig.v1+json`, laid out as a `.sig` manifest),
  sigstore bundles (`application/vnd.dev.sigstore.bundle.v0.3+json`) and Notation
  signatures (`application/vnd.cncf.notary.signature`).

Signature manifests and their blobs are addressed by digest, so what one says about an
image never changes: each signature manifest's results are kept per (trust material, the
manifest, the image) and a pull of a verified image reads only the tag and the referrers
to learn which signatures there are. At most MAX_SIGNATURES manifests of an image are
read, and blobs of at most MAX_BLOB bytes: a registry full of junk referrers does not make
a pull read without end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from portside.errors import BlobUnknown, DigestInvalid, ManifestUnknown
from portside.mgmt.artifacts import json_object
from portside.mgmt.lru import Lru
from portside.mgmt.trust_policy import TrustMaterial
from portside.oci.digest import Digest
from portside.registry.blobs import BlobService
from portside.registry.manifests import ManifestService
from portside.trust import bundle, cosign, notation
from portside.trust.results import Kind, Verification

__all__ = [
    "COSIGN_REFERRER",
    "MAX_BLOB",
    "MAX_SIGNATURES",
    "SignatureManifest",
    "SignatureService",
    "accessory_type",
]

COSIGN_REFERRER = "application/vnd.dev.cosign.artifact.sig.v1+json"
MAX_SIGNATURES = 32
MAX_BLOB = 1 << 20
_KINDS: Mapping[str, Kind] = {
    COSIGN_REFERRER: "cosign",
    bundle.MEDIA_TYPE: "cosign-bundle",
    notation.ARTIFACT_TYPE: "notation",
}
# Harbor's accessory types, by what Portside found.
_ACCESSORY_TYPES = {"cosign": "signature.cosign", "cosign-bundle": "signature.cosign", "notation": "signature.notation"}


def accessory_type(artifact_type: str | None, tag: str | None = None) -> str:
    """Harbor's accessory `type` of a referrer (or of a cosign scheme tag's manifest)."""
    if tag is not None:
        return {"sig": "signature.cosign", "sbom": "sbom.harbor"}.get(tag.rpartition(".")[2], "subject.accessory")
    kind = _KINDS.get(artifact_type or "")
    if kind is not None:
        return _ACCESSORY_TYPES[kind]
    if artifact_type and "sbom" in artifact_type:
        return "sbom.harbor"
    return "subject.accessory"


@dataclass(frozen=True, slots=True)
class SignatureManifest:
    """One manifest holding signatures of an image, and what checking them found."""

    kind: Kind
    digest: str  # the signature manifest's
    subject: str  # the image (or index) it signs
    size: int
    tag: str | None  # the scheme tag it was found by; None: a referrer
    results: tuple[Verification, ...]
    created: datetime | None = None

    @property
    def verified(self) -> bool:
        return any(r.verified for r in self.results)


def _blob_digests(kind: Kind, document: Mapping[str, Any]) -> list[str]:
    layers = [layer for layer in document.get("layers") or [] if isinstance(layer, Mapping)]
    if kind == "notation":
        layers = layers[:1]
    return [str(layer.get("digest", "")) for layer in layers][:MAX_SIGNATURES]


def _certified(data: bytes | None) -> bool:
    """Whether a sigstore bundle carries a signing certificate (a keyless signature)."""
    material = json_object(data or b"").get("verificationMaterial")
    return isinstance(material, Mapping) and bool(material.get("certificate") or material.get("x509CertificateChain"))


class SignatureService:
    def __init__(self, manifests: ManifestService, blobs: BlobService, entries: int = 8192):
        self._manifests = manifests
        self._blobs = blobs
        # (the material's fingerprint, signature manifest, image) -> results
        self._results: Lru[tuple[str, str, str], tuple[Verification, ...]] = Lru(entries)

    async def listed(self, repository: str, image: Digest) -> list[tuple[Kind, str, int, str | None]]:
        """The signature manifests of `image` in `repository`: (kind, digest, size, tag)."""
        found: list[tuple[Kind, str, int, str | None]] = []
        tag = cosign.signature_tag(str(image))
        try:
            record = await self._manifests.get(repository, tag)
            found.append(("cosign", str(record.digest), len(record.payload), tag))
        except ManifestUnknown:
            pass
        for descriptor in await self._manifests.referrers(repository, image, None):
            kind = _KINDS.get(descriptor.artifact_type or "")
            if kind is not None:
                found.append((kind, str(descriptor.digest), descriptor.size, None))
        return found[:MAX_SIGNATURES]

    async def verify(
        self, repository: str, image: Digest, material: TrustMaterial, *, scope: str | None = None
    ) -> list[SignatureManifest]:
        """Every signature manifest of `image`, each checked against `material`. `scope`:
        the `registry/repository` a Notation statement is selected by (its one statement
        covers everything, so only the messages use it)."""
        out = []
        for kind, digest, size, tag in await self.listed(repository, image):
            key = (material.fingerprint, digest, str(image))
            results = self._results.get(key)
            if results is None:
                results = await self._check(repository, image, kind, digest, material, scope or repository)
                self._results.put(key, results)
            out.append(SignatureManifest(kind, digest, str(image), size, tag, results))
        return out

    async def _check(
        self, repository: str, image: Digest, kind: Kind, digest: str, material: TrustMaterial, scope: str
    ) -> tuple[Verification, ...]:
        try:
            record = await self._manifests.get(repository, Digest.parse(digest))
        except ManifestUnknown:
            return (Verification.failed(kind, f"the signature manifest {digest} is gone"),)
        document = json_object(record.payload)
        blobs = {d: await self._blob(repository, d) for d in _blob_digests(kind, document)}

        def blob(wanted: str) -> bytes | None:
            return blobs.get(wanted)

        subject = str(image)
        if kind == "cosign":
            results = []
            for layer in cosign.signature_layers(document):
                payload = blob(layer.digest)
                if payload is None:
                    results.append(Verification.failed("cosign", f"the payload blob {layer.digest} is missing"))
                    continue
                # A key stands for itself; a Fulcio certificate only within the log's time.
                keyless = cosign.CERTIFICATE_ANNOTATION in layer.annotations
                results.append(
                    cosign.verify(
                        layer,
                        payload,
                        subject,
                        material.keys,
                        identities=material.identities,
                        root=material.root,
                        require_tlog=keyless and material.require_tlog,
                    )
                )
            return tuple(results) or (Verification.failed("cosign", "the signature manifest holds no signature"),)
        if kind == "cosign-bundle":
            digests = _blob_digests(kind, document)
            keyless = any(_certified(blobs.get(d)) for d in digests)
            return (
                bundle.verify_referrer(
                    document,
                    blob,
                    subject,
                    material.keys,
                    identities=material.identities,
                    root=material.root,
                    require_tlog=keyless and material.require_tlog,
                ),
            )
        envelope = notation.signature_blob(document, blob, subject)
        if isinstance(envelope, str):
            return (Verification.failed("notation", envelope),)
        if material.notation_policy is None:
            return (Verification.failed("notation", "this project trusts no Notation certificate"),)
        verdict, results = notation.verify_artifact(
            [envelope], subject, scope, material.notation_policy, material.notation_store
        )
        return tuple(results) or (verdict,)

    async def _blob(self, repository: str, digest: str) -> bytes | None:
        try:
            handle = await self._blobs.open(repository, Digest.parse(digest))
        except (BlobUnknown, DigestInvalid):
            return None
        if handle.size > MAX_BLOB:
            return None
        return b"".join([chunk async for chunk in handle.read()])


def summary(found: Sequence[SignatureManifest]) -> str:
    """How many signatures there are and why those that do not count fail, for a refusal."""
    results = [r for manifest in found for r in manifest.results]
    if not results:
        return "signatures found: 0"
    failing = [r for r in results if not r.verified]
    reasons = "; ".join(dict.fromkeys(f"{r.kind}: {r.reason}" for r in failing))[:600]
    return f"signatures found: {len(results)}" + (f", none verifies ({reasons})" if reasons else "")
