"""cosign's simple-signing signatures, stored under the tag scheme.

A signed image `sha256:<hex>` has a manifest tagged `sha256-<hex>.sig` (`signature_tag`)
beside it; each of its layers is one signature: the layer's blob is the payload, a
simple-signing JSON document naming the image, and the annotation
`dev.cosignproject.cosign/signature` holds the base64 signature over exactly those
bytes. A keyless signature adds the signing certificate (`dev.sigstore.cosign/
certificate`, with `…/chain`), and a signature logged in Rekor adds the log's promise
(`dev.sigstore.cosign/bundle`).

`verify` checks one layer: the payload is the blob the layer names, parsed as stored
(never re-serialised), of type `cosign container image signature`, naming this image's
digest, and the signature verifies with one of the project's keys, or, for a keyless
signature, with a certificate a trusted Fulcio issued to a trusted identity at the time
Rekor logged it (`portside.trust.keyless`). `critical.identity.docker-reference` is not
compared, as cosign does not by default: a signature follows its image under any name.
When a trusted root is given, a Rekor entry that comes with the signature must check out
against it; `require_tlog` makes one necessary. Key ids come from `portside.trust.keys`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509

from portside.trust import keyless, rekor, signers
from portside.trust.keys import PublicKey
from portside.trust.results import Verification
from portside.trust.roots import TrustedRoot

__all__ = [
    "SIMPLE_SIGNING",
    "SIGNATURE_TYPE",
    "SIGNATURE_ANNOTATION",
    "CERTIFICATE_ANNOTATION",
    "CHAIN_ANNOTATION",
    "BUNDLE_ANNOTATION",
    "SignatureLayer",
    "signature_tag",
    "signature_layers",
    "verify",
    "verify_manifest",
]

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_TYPE = "cosign container image signature"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"


def signature_tag(image_digest: str) -> str:
    """`sha256:ab…` → `sha256-ab….sig`, the tag cosign stores an image's signatures under."""
    algorithm, _, hexpart = image_digest.partition(":")
    if not hexpart:
        raise ValueError(f"not a digest: {image_digest!r}")
    return f"{algorithm}-{hexpart}.sig"


@dataclass(frozen=True, slots=True)
class SignatureLayer:
    """One layer of a `.sig` manifest: the payload's descriptor and its annotations."""

    digest: str
    media_type: str = SIMPLE_SIGNING
    annotations: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_descriptor(cls, descriptor: Mapping[str, Any]) -> SignatureLayer:
        annotations = descriptor.get("annotations") or {}
        return cls(
            digest=str(descriptor.get("digest", "")),
            media_type=str(descriptor.get("mediaType", "")),
            annotations={str(k): str(v) for k, v in annotations.items()},
        )


def signature_layers(manifest: Mapping[str, Any]) -> list[SignatureLayer]:
    """The signature layers of a `.sig` manifest (or of a cosign OCI 1.1 referrer)."""
    layers = manifest.get("layers") or []
    return [SignatureLayer.from_descriptor(layer) for layer in layers if isinstance(layer, Mapping)]


def verify_manifest(
    manifest: Mapping[str, Any],
    blob: Callable[[str], bytes | None],
    image_digest: str,
    keys: Sequence[PublicKey] = (),
    *,
    identities: Sequence[keyless.Identity] = (),
    root: TrustedRoot | None = None,
    require_tlog: bool = False,
) -> list[Verification]:
    """Every signature of a `.sig` manifest; `blob(digest)` gives a payload's bytes (None: absent)."""
    results = []
    for layer in signature_layers(manifest):
        payload = blob(layer.digest)
        if payload is None:
            results.append(Verification.failed("cosign", f"the payload blob {layer.digest} is missing"))
            continue
        results.append(
            verify(layer, payload, image_digest, keys, identities=identities, root=root, require_tlog=require_tlog)
        )
    return results


def verify(
    layer: SignatureLayer,
    payload: bytes,
    image_digest: str,
    keys: Sequence[PublicKey] = (),
    *,
    identities: Sequence[keyless.Identity] = (),
    root: TrustedRoot | None = None,
    require_tlog: bool = False,
) -> Verification:
    """One signature layer against the image `image_digest`; see the module's docstring."""
    algorithm = layer.digest.partition(":")[0] if ":" in layer.digest else "sha256"
    if algorithm not in ("sha256", "sha384", "sha512"):
        return _failed(f"the signature layer's digest {layer.digest} uses an algorithm this registry does not hash")
    stored = f"{algorithm}:{hashlib.new(algorithm, payload).hexdigest()}"
    if layer.digest and stored != layer.digest:
        return _failed(f"the payload was altered: its digest is {stored}, the signature layer names {layer.digest}")
    if layer.media_type and layer.media_type != SIMPLE_SIGNING:
        return _failed(f"not a simple-signing layer ({layer.media_type})")
    claims = _read_payload(payload)
    if isinstance(claims, str):
        return _failed(claims)
    named, claimed_time = claims
    if named.lower() != image_digest.lower():
        return _failed(f"payload names {named} not this image {image_digest}")
    encoded = layer.annotations.get(SIGNATURE_ANNOTATION)
    if not encoded:
        return _failed(f"the layer has no {SIGNATURE_ANNOTATION} annotation")
    try:
        signature = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return _failed("the signature annotation is not base64")

    entry: rekor.LogEntry | None = None
    bundle = layer.annotations.get(BUNDLE_ANNOTATION)
    if bundle:
        try:
            entry = rekor.LogEntry.from_cosign_bundle(bundle)
        except ValueError as error:
            return _failed(f"the Rekor bundle annotation is unreadable: {error}")

    def check(key: PublicKey) -> bool:
        return key.verify(signature, payload)

    certificate_pem = layer.annotations.get(CERTIFICATE_ANNOTATION)
    if certificate_pem:
        try:
            certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
        except ValueError:
            return _failed("the certificate annotation is not a PEM certificate")
        signer = signers.by_certificate(certificate, check, keys, entry, identities, root)
    else:
        signer = signers.by_key(check, keys, entry)
    if isinstance(signer, str):
        return _failed(signer)

    signed_at: datetime | None = None
    if entry is not None and root is not None:
        problem = rekor.verify_entry(entry, root)
        if problem is None:
            problem = rekor.check_body(
                entry, payload_sha256=hashlib.sha256(payload).hexdigest(), signature=signature, key=signer.key
            )
        if problem is not None:
            return _failed(problem, signer.name)
        signed_at = entry.integrated_at
    elif require_tlog:
        reason = "no Rekor entry comes with the signature" if entry is None else "no trusted root to check Rekor"
        return _failed(f"{reason}, and the policy requires one", signer.name)
    if signed_at is None and claimed_time is not None:
        signed_at = claimed_time
    return Verification.passed("cosign", signer.name, signed_at)


def _failed(reason: str, signer: str | None = None) -> Verification:
    return Verification.failed("cosign", reason, signer)


def _read_payload(payload: bytes) -> tuple[str, datetime | None] | str:
    """The digest a simple-signing payload names and its claimed time, or why it is not one."""
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return "the payload is not simple-signing JSON"
    critical = _field(document, "critical")
    if not isinstance(critical, Mapping):
        return "the payload has no `critical` section"
    kind = _field(critical, "type")
    if kind != SIGNATURE_TYPE:
        return f"the payload's type is {kind!r}, not {SIGNATURE_TYPE!r}"
    image = _field(critical, "image")
    named = _field(image, "docker-manifest-digest") if isinstance(image, Mapping) else None
    if not isinstance(named, str) or not named:
        return "the payload names no image digest"
    claimed: datetime | None = None
    optional = _field(document, "optional")
    if isinstance(optional, Mapping):
        stamp = _field(optional, "timestamp")
        if isinstance(stamp, int) and not isinstance(stamp, bool) and 0 < stamp < 2**33:
            claimed = datetime.fromtimestamp(stamp, UTC)
    return named, claimed


def _field(document: object, name: str) -> object:
    """A member by name, matched without regard to case as cosign's decoder does
    (the format's own example spells `Docker-manifest-digest`)."""
    if not isinstance(document, Mapping):
        return None
    if name in document:
        return document[name]
    lowered = name.lower()
    for key, value in document.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None
