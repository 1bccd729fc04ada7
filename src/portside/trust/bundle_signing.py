"""Making the sigstore bundle `portside sign --bundle` attaches: what cosign's
`sign --new-bundle-format` writes with a key pair, laid out as `portside.trust.bundle`
reads it back.

- `statement`: the in-toto statement (v1) a signature is, with predicate type
  `https://sigstore.dev/cosign/sign/v1`; its subject names the image and its digest;
- `sign_bundle`: a bundle v0.3 whose content is a DSSE envelope over that statement, the
  ECDSA signature over the envelope's PAE, and whose verification material is only the
  key's hint (the base64 SHA-256 of its DER, `PublicKey.hint`). Nothing is sent to a
  transparency log, so the bundle has no `tlogEntries`: a verifier that insists on Rekor
  (a keyless policy, `cosign verify` without `--insecure-ignore-tlog`) refuses it;
- `referrer_manifest`: the OCI 1.1 manifest that carries the bundle as its one layer,
  `subject` = the signed manifest, config the empty `{}` blob (`EMPTY_CONFIG`, push it
  too), with cosign's annotations saying what the bundle holds and when it was made.

The JSON is compact and its keys in the order cosign writes them, so the bytes look
like cosign's to anyone comparing (the fixture in ../shared, made by the real cosign).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from portside.trust import dsse
from portside.trust.bundle import MEDIA_TYPE
from portside.trust.keys import PublicKey
from portside.trust.signing import OCI_MANIFEST, sign

__all__ = [
    "EMPTY_CONFIG",
    "EMPTY_MEDIA_TYPE",
    "PREDICATE_TYPE",
    "CONTENT_ANNOTATION",
    "PREDICATE_ANNOTATION",
    "CREATED_ANNOTATION",
    "statement",
    "sign_bundle",
    "referrer_manifest",
]

PREDICATE_TYPE = "https://sigstore.dev/cosign/sign/v1"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_CONFIG = b"{}"
CONTENT_ANNOTATION = "dev.sigstore.bundle.content"
PREDICATE_ANNOTATION = "dev.sigstore.bundle.predicateType"
CREATED_ANNOTATION = "org.opencontainers.image.created"


def _compact(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def statement(digest: str) -> bytes:
    """The in-toto statement that the manifest at `digest` is signed, as cosign writes it:
    the subject is the digest alone (a name would tie the signature to one registry, which
    copying breaks) and there is no predicate."""
    algorithm, _, hex_digest = digest.partition(":")
    document = {
        "_type": STATEMENT_TYPE,
        "subject": [{"digest": {algorithm: hex_digest}}],
        "predicateType": PREDICATE_TYPE,
    }
    return _compact(document)


def sign_bundle(private_key: ec.EllipticCurvePrivateKey, digest: str) -> bytes:
    """A sigstore bundle v0.3 signing the manifest at `digest` with this key."""
    payload = statement(digest)
    signature = sign(private_key, dsse.pae(dsse.IN_TOTO, payload))
    hint = PublicKey.of(private_key.public_key()).hint
    document = {
        "mediaType": MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": hint}},
        # cosign leaves the DSSE key id empty; the key hint above names the key.
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode(),
            "payloadType": dsse.IN_TOTO,
            "signatures": [{"sig": signature}],
        },
    }
    return _compact(document)


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "size": len(data), "digest": "sha256:" + hashlib.sha256(data).hexdigest()}


def referrer_manifest(bundle: bytes, subject: Mapping[str, Any], created: datetime | None = None) -> bytes:
    """The referrer carrying `bundle` for the manifest `subject` (its `mediaType`, `size` and
    `digest`); `created` defaults to now, written to the second in UTC."""
    when = (created or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        # cosign repeats the artifact type inside the config descriptor; kept for parity.
        "config": {**_descriptor(EMPTY_MEDIA_TYPE, EMPTY_CONFIG), "artifactType": MEDIA_TYPE},
        "layers": [_descriptor(MEDIA_TYPE, bundle)],
        "annotations": {
            CONTENT_ANNOTATION: "dsse-envelope",
            PREDICATE_ANNOTATION: PREDICATE_TYPE,
            CREATED_ANNOTATION: when,
        },
        "subject": {"mediaType": subject["mediaType"], "size": subject["size"], "digest": subject["digest"]},
        "artifactType": MEDIA_TYPE,
    }
    return _compact(document)
