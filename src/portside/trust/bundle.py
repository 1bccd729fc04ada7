"""Sigstore bundles attached to an image as referrers (cosign's bundle format).

The referrer is a manifest with `artifactType` `application/vnd.dev.sigstore.bundle.
v0.3+json`, `subject` = the image, and one layer of that type whose blob is the bundle
(`verify_referrer`). The bundle (`verify`) holds:

- content: a DSSE envelope with exactly one signature over an in-toto statement whose
  `subject` digests include the image's, the signature over the envelope's PAE; or a
  message signature whose `messageDigest` is the image digest, the signature over the
  manifest's SHA-256 (checked prehashed, so Ed25519 keys cannot make one);
- verification material: a key hint (`publicKey.hint`, the base64 SHA-256 of the key's
  DER), tried first among the project's keys and then the rest (and, with no Rekor
  entry, what tells an altered signature from an untrusted one); or a Fulcio
  certificate (`certificate`, or `x509CertificateChain`'s first) for keyless checks,
  as in `portside.trust.signers`;
- `tlogEntries`: Rekor entries, checked against the trusted root when one is given
  (`portside.trust.rekor`; required with `require_tlog`);
- `timestampVerificationData.rfc3161Timestamps`: TSA timestamps over the signature
  bytes, verified (`portside.trust.timestamps`) when the trusted root names timestamp
  authorities: each must come from one of them (its chain, leaf first and root last,
  and its validity window holding the time), and a bundle carrying one that does not
  verify fails. A keyless certificate must have been valid at Rekor's integration
  time and at each timestamp's time, and needs at least one of them. Without a
  trusted root, or one naming no timestamp authority, timestamps are not read.
Accepted media types: v0.3 and the older `application/vnd.dev.sigstore.bundle+json;
version=0.1|0.2|0.3`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from cryptography import x509

from portside.trust import dsse, keyless, rekor, signers, timestamps
from portside.trust.keys import PublicKey
from portside.trust.results import Verification
from portside.trust.roots import TrustedRoot

__all__ = ["MEDIA_TYPE", "MEDIA_TYPES", "verify", "verify_referrer"]

MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
MEDIA_TYPES = (
    MEDIA_TYPE,
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
)
_DIGEST_ALGORITHMS = {"SHA2_256": "sha256", "SHA2_384": "sha384", "SHA2_512": "sha512"}


def _failed(reason: str, signer: str | None = None) -> Verification:
    return Verification.failed("cosign-bundle", reason, signer)


def verify_referrer(
    manifest: Mapping[str, Any],
    blob: Callable[[str], bytes | None],
    image_digest: str,
    keys: Sequence[PublicKey] = (),
    *,
    identities: Sequence[keyless.Identity] = (),
    root: TrustedRoot | None = None,
    require_tlog: bool = False,
) -> Verification:
    """A bundle referrer manifest: about this image, one bundle layer, the bundle verified."""
    subject = manifest.get("subject")
    about = subject.get("digest") if isinstance(subject, Mapping) else None
    if about != image_digest:
        return _failed(f"the bundle's manifest is about {about or 'no subject'}, not this image {image_digest}")
    layers = [layer for layer in manifest.get("layers") or [] if isinstance(layer, Mapping)]
    bundles = [layer for layer in layers if layer.get("mediaType") in MEDIA_TYPES]
    if len(bundles) != 1:
        return _failed(f"the bundle's manifest has {len(bundles)} bundle layers, not one")
    digest = str(bundles[0].get("digest", ""))
    data = blob(digest)
    if data is None:
        return _failed(f"the bundle blob {digest} is missing")
    if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
        return _failed(f"the bundle blob is not {digest}: it was altered")
    return verify(data, image_digest, keys, identities=identities, root=root, require_tlog=require_tlog)


def verify(
    bundle: bytes,
    image_digest: str,
    keys: Sequence[PublicKey] = (),
    *,
    identities: Sequence[keyless.Identity] = (),
    root: TrustedRoot | None = None,
    require_tlog: bool = False,
) -> Verification:
    """One sigstore bundle for the image `image_digest`; see the module's docstring."""
    try:
        document = json.loads(bundle)
    except (UnicodeDecodeError, ValueError):
        return _failed("the bundle is not JSON")
    if not isinstance(document, Mapping):
        return _failed("the bundle is not a JSON object")
    media_type = document.get("mediaType")
    if media_type not in MEDIA_TYPES:
        return _failed(f"not a sigstore bundle this registry reads (media type {media_type!r})")
    material = document.get("verificationMaterial")
    if not isinstance(material, Mapping):
        return _failed("the bundle has no verification material")
    try:
        entries = [rekor.LogEntry.from_tlog_entry(e) for e in material.get("tlogEntries") or []]
    except ValueError as error:
        return _failed(f"a Rekor entry of the bundle is unreadable: {error}")
    entry = entries[0] if entries else None

    content = _content(document, image_digest)
    if isinstance(content, str):
        return _failed(content)
    check, payload_sha256, signature, keyid = content

    hint = _dig(material, "publicKey", "hint")
    if isinstance(hint, str) and hint and keyid and keyid != hint:
        return _failed("the envelope's key id and the bundle's key hint differ")
    certificate = _certificate(material)
    if isinstance(certificate, str):
        return _failed(certificate)
    stamps = _timestamps(material, signature, root)
    if isinstance(stamps, str):
        return _failed(stamps)
    if certificate is not None:
        moments = [stamp.time for stamp in stamps]
        signer = signers.by_certificate(certificate, check, keys, entry, identities, root, moments)
    else:
        hinted = sorted(keys, key=lambda k: k.hint != hint)
        signer = signers.by_key(check, hinted, entry, hint=hint if isinstance(hint, str) else None)
    if isinstance(signer, str):
        return _failed(signer)

    signed_at: datetime | None = None
    if entry is not None and root is not None:
        problem = None if signer.entry is entry else rekor.verify_entry(entry, root)
        if problem is None:
            problem = rekor.check_body(entry, payload_sha256=payload_sha256, signature=signature, key=signer.key)
        if problem is not None:
            return _failed(problem, signer.name)
        signed_at = entry.integrated_at
    elif require_tlog:
        reason = "the bundle has no Rekor entry" if entry is None else "no trusted root to check Rekor"
        return _failed(f"{reason}, and the policy requires one", signer.name)
    if signed_at is None and stamps:
        signed_at = stamps[0].time
    return Verification.passed("cosign-bundle", signer.name, signed_at)


def _timestamps(
    material: Mapping[str, Any], signature: bytes, root: TrustedRoot | None
) -> list[timestamps.Timestamp] | str:
    """The bundle's RFC 3161 timestamps, each verified against the trusted root's
    timestamp authorities; or why one does not count."""
    listed = _dig(material, "timestampVerificationData", "rfc3161Timestamps") or []
    if root is None or not root.timestamp_authorities or not listed:
        return []
    if not isinstance(listed, list):
        return "the bundle's rfc3161Timestamps is not a list"
    verified: list[timestamps.Timestamp] = []
    for index, item in enumerate(listed):
        try:
            data = base64.b64decode(str(_dig(item, "signedTimestamp")), validate=True)
        except (ValueError, binascii.Error):
            return f"the bundle's RFC 3161 timestamp {index} is not base64"
        reasons: list[str] = []
        for authority in root.timestamp_authorities:
            stamp = timestamps.verify(data, signature, authority.chain[-1:], intermediates=authority.chain[:-1])
            if isinstance(stamp, str):
                reasons.append(stamp)
            elif not authority.window.holds(stamp.time):
                reasons.append(
                    f"{stamp.authority} was not a trusted timestamp authority at {stamp.time:%Y-%m-%dT%H:%M:%SZ}"
                )
            else:
                verified.append(stamp)
                break
        else:
            why = "; ".join(dict.fromkeys(reasons))
            return f"the bundle's RFC 3161 timestamp {index} does not verify with the trusted root's authorities: {why}"
    return verified


def _content(document: Mapping[str, Any], image_digest: str) -> tuple[signers.Check, str, bytes, str] | str:
    """How to check the bundle's signature with a key, the payload hash Rekor logs, the
    signature bytes and the envelope's key id; or why the content does not qualify."""
    if "dsseEnvelope" in document:
        try:
            envelope = dsse.Envelope.parse(document["dsseEnvelope"])
        except ValueError as error:
            return str(error)
        if len(envelope.signatures) != 1:
            return f"a bundle's DSSE envelope must carry one signature; this one has {len(envelope.signatures)}"
        if envelope.payload_type != dsse.IN_TOTO:
            return f"the envelope's payload type is {envelope.payload_type!r}, not an in-toto statement"
        named = dsse.subjects(envelope.payload)
        if isinstance(named, str):
            return named
        if image_digest.lower() not in named:
            return f"the statement's subjects name {', '.join(named) or 'nothing'}, not this image {image_digest}"
        signature = envelope.signatures[0]
        signed = envelope.signed_bytes()

        def check_envelope(key: PublicKey) -> bool:
            return key.verify(signature.sig, signed)

        return check_envelope, hashlib.sha256(envelope.payload).hexdigest(), signature.sig, signature.keyid
    message = document.get("messageSignature")
    if isinstance(message, Mapping):
        try:
            algorithm = _DIGEST_ALGORITHMS[message["messageDigest"]["algorithm"]]
            digest = base64.b64decode(message["messageDigest"]["digest"], validate=True)
            raw = base64.b64decode(message["signature"], validate=True)
        except (KeyError, TypeError, binascii.Error) as error:
            return f"the message signature is malformed: {error}"
        named = f"{algorithm}:{digest.hex()}"
        if named != image_digest.lower():
            return f"the message signature names {named} not this image {image_digest}"

        def check_message(key: PublicKey) -> bool:
            return key.verify_digest(raw, digest, algorithm)

        return check_message, digest.hex(), raw, ""
    return "the bundle has neither a DSSE envelope nor a message signature"


def _certificate(material: Mapping[str, Any]) -> x509.Certificate | None | str:
    raw = _dig(material, "certificate", "rawBytes")
    if raw is None:
        chain = _dig(material, "x509CertificateChain", "certificates")
        if isinstance(chain, list) and chain:
            raw = _dig(chain[0], "rawBytes")
    if raw is None:
        return None
    try:
        return x509.load_der_x509_certificate(base64.b64decode(str(raw), validate=True))
    except (ValueError, binascii.Error):
        return "the bundle's certificate is unreadable"


def _dig(document: object, *names: str) -> object:
    for name in names:
        if not isinstance(document, Mapping):
            return None
        document = document.get(name)
    return document
