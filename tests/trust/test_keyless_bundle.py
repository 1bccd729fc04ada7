"""A keyless sigstore bundle against a trusted root made here (no real keyless bundle is in
the fixtures): a Fulcio-style CA, a Rekor key, a leaf certificate for a CI identity."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portside.trust import bundle, dsse, keyless
from portside.trust.keyless import Identity
from portside.trust.roots import CertificateAuthority, TrustedRoot, Window
from tests.trust import tsa

IMAGE = "sha256:" + "cd" * 32
SIGNED_AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/heads/main"
ACTIONS = "https://token.actions.githubusercontent.com"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _utf8_string(text: str) -> bytes:
    raw = text.encode()
    return b"\x0c" + bytes([len(raw)]) + raw


class Sigstore:
    def __init__(self, *, v1_issuer: bool = False) -> None:
        self.ca_key = ec.generate_private_key(ec.SECP384R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "test fulcio")])
        self.ca = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(1)
            .not_valid_before(SIGNED_AT - timedelta(days=365))
            .not_valid_after(SIGNED_AT + timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
            .sign(self.ca_key, hashes.SHA384())
        )
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        oid, value = (keyless.ISSUER_V1, ACTIONS.encode()) if v1_issuer else (keyless.ISSUER_V2, _utf8_string(ACTIONS))
        self.leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(name)
            .public_key(self.leaf_key.public_key())
            .serial_number(2)
            .not_valid_before(SIGNED_AT - timedelta(minutes=1))
            .not_valid_after(SIGNED_AT + timedelta(minutes=9))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectAlternativeName([x509.UniformResourceIdentifier(WORKFLOW)]), critical=True)
            .add_extension(x509.UnrecognizedExtension(oid, value), critical=False)
            .sign(self.ca_key, hashes.SHA384())
        )
        self.rekor_key = ec.generate_private_key(ec.SECP256R1())
        rekor_der = self.rekor_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        self.log_id = hashlib.sha256(rekor_der).digest()
        self.root = TrustedRoot.parse(
            json.dumps(
                {
                    "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
                    "tlogs": [
                        {
                            "publicKey": {"rawBytes": _b64(rekor_der), "validFor": {"start": "2026-01-01T00:00:00Z"}},
                            "logId": {"keyId": _b64(self.log_id)},
                        }
                    ],
                    "certificateAuthorities": [
                        {
                            "certChain": {"certificates": [{"rawBytes": _b64(self.ca.public_bytes(Encoding.DER))}]},
                            "validFor": {"start": "2026-01-01T00:00:00Z"},
                        }
                    ],
                }
            )
        )

    def bundle(self, *, integrated: datetime = SIGNED_AT) -> dict[str, Any]:
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"digest": {"sha256": IMAGE[7:]}}],
            "predicateType": "https://sigstore.dev/cosign/sign/v1",
        }
        payload = json.dumps(statement).encode()
        signature = self.leaf_key.sign(dsse.pae(dsse.IN_TOTO, payload), ec.ECDSA(hashes.SHA256()))
        body = {
            "apiVersion": "0.0.1",
            "kind": "dsse",
            "spec": {
                "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
                "signatures": [{"signature": _b64(signature), "verifier": _b64(self.leaf.public_bytes(Encoding.PEM))}],
            },
        }
        body_b64 = _b64(json.dumps(body).encode())
        promise = {
            "body": body_b64,
            "integratedTime": int(integrated.timestamp()),
            "logID": self.log_id.hex(),
            "logIndex": 7,
        }
        canonical = json.dumps(promise, sort_keys=True, separators=(",", ":")).encode()
        return {
            "mediaType": bundle.MEDIA_TYPE,
            "verificationMaterial": {
                "certificate": {"rawBytes": _b64(self.leaf.public_bytes(Encoding.DER))},
                "tlogEntries": [
                    {
                        "logIndex": "7",
                        "logId": {"keyId": _b64(self.log_id)},
                        "kindVersion": {"kind": "dsse", "version": "0.0.1"},
                        "integratedTime": str(int(integrated.timestamp())),
                        "inclusionPromise": {
                            "signedEntryTimestamp": _b64(self.rekor_key.sign(canonical, ec.ECDSA(hashes.SHA256())))
                        },
                        "canonicalizedBody": body_b64,
                    }
                ],
            },
            "dsseEnvelope": {
                "payload": _b64(payload),
                "payloadType": dsse.IN_TOTO,
                "signatures": [{"sig": _b64(signature)}],
            },
        }


def _verify(sigstore: Sigstore, document: dict[str, Any], identities: list[Identity]) -> bundle.Verification:
    return bundle.verify(json.dumps(document).encode(), IMAGE, identities=identities, root=sigstore.root)


def test_a_keyless_bundle_verifies_for_its_identity() -> None:
    sigstore = Sigstore()
    result = _verify(sigstore, sigstore.bundle(), [Identity(ACTIONS, WORKFLOW)])
    assert result.verified, result.reason
    assert result.signer == f"{WORKFLOW} (issuer {ACTIONS})"
    assert result.signed_at == SIGNED_AT


def test_the_older_raw_issuer_extension_is_read_too() -> None:
    sigstore = Sigstore(v1_issuer=True)
    pattern = Identity(ACTIONS, r"https://github\.com/acme/.+@refs/heads/main", regexp=True)
    assert _verify(sigstore, sigstore.bundle(), [pattern]).verified


def test_a_keyless_bundle_fails_for_another_identity() -> None:
    sigstore = Sigstore()
    other = "https://github.com/evil/app/.github/workflows/release.yml@refs/heads/main"
    result = _verify(sigstore, sigstore.bundle(), [Identity(ACTIONS, other)])
    assert result.reason == f"signed by {WORKFLOW} (issuer {ACTIONS}), an identity this project does not trust"


def test_a_keyless_bundle_logged_after_its_certificate_expired_fails() -> None:
    sigstore = Sigstore()
    late = sigstore.bundle(integrated=SIGNED_AT + timedelta(hours=1))
    result = _verify(sigstore, late, [Identity(ACTIONS, WORKFLOW)])
    assert result.reason is not None
    assert result.reason.startswith("the signing certificate was not valid when the signature was logged")


def test_a_keyless_bundle_from_another_sigstore_fails() -> None:
    sigstore, other = Sigstore(), Sigstore()
    result = bundle.verify(
        json.dumps(sigstore.bundle()).encode(), IMAGE, identities=[Identity(ACTIONS, WORKFLOW)], root=other.root
    )
    assert result.reason is not None and result.reason.startswith("logged by a Rekor the trusted root does not name")


# -- RFC 3161 timestamps in place of, or beside, the Rekor entry ---------------------------


def _with_tsa(sigstore: Sigstore, authority: tsa.Authority, start: datetime | None = None) -> TrustedRoot:
    window = Window(start or SIGNED_AT - timedelta(days=30), None)
    return replace(sigstore.root, timestamp_authorities=(CertificateAuthority(authority.chain, window, ""),))


def _timestamped(document: dict[str, Any], authority: tsa.Authority, at: datetime, *, tlog: bool) -> dict[str, Any]:
    signature = base64.b64decode(document["dsseEnvelope"]["signatures"][0]["sig"])
    material = document["verificationMaterial"]
    if not tlog:
        del material["tlogEntries"]
    material["timestampVerificationData"] = {
        "rfc3161Timestamps": [{"signedTimestamp": _b64(authority.response(signature, at))}]
    }
    return document


def _verify_with(root: TrustedRoot, document: dict[str, Any]) -> bundle.Verification:
    return bundle.verify(json.dumps(document).encode(), IMAGE, identities=[Identity(ACTIONS, WORKFLOW)], root=root)


def test_a_keyless_bundle_with_a_timestamp_and_no_rekor_entry_verifies() -> None:
    sigstore, authority = Sigstore(), tsa.Authority(SIGNED_AT)
    stamped_at = SIGNED_AT + timedelta(minutes=2)
    document = _timestamped(sigstore.bundle(), authority, stamped_at, tlog=False)
    result = _verify_with(_with_tsa(sigstore, authority), document)
    assert result.verified, result.reason
    assert result.signed_at == stamped_at
    # Without the timestamp authority in the trusted root, nothing vouches for the time.
    unvouched = _verify_with(sigstore.root, document)
    assert unvouched.reason is not None
    assert unvouched.reason.endswith("without a Rekor entry or a verified timestamp: there is no trusted signing time")


def test_a_timestamp_after_the_certificate_expired_fails() -> None:
    sigstore, authority = Sigstore(), tsa.Authority(SIGNED_AT)
    document = _timestamped(sigstore.bundle(), authority, SIGNED_AT + timedelta(hours=1), tlog=True)
    result = _verify_with(_with_tsa(sigstore, authority), document)
    assert result.reason is not None
    assert result.reason.startswith("the signing certificate was not valid when the signature was timestamped")


def test_a_timestamp_beside_the_rekor_entry_keeps_rekors_time() -> None:
    sigstore, authority = Sigstore(), tsa.Authority(SIGNED_AT)
    document = _timestamped(sigstore.bundle(), authority, SIGNED_AT + timedelta(minutes=1), tlog=True)
    result = _verify_with(_with_tsa(sigstore, authority), document)
    assert result.verified, result.reason
    assert result.signed_at == SIGNED_AT


def test_a_timestamp_from_an_untrusted_or_not_yet_trusted_tsa_fails_the_bundle() -> None:
    sigstore, authority, other = Sigstore(), tsa.Authority(SIGNED_AT), tsa.Authority(SIGNED_AT)
    document = _timestamped(sigstore.bundle(), other, SIGNED_AT + timedelta(minutes=2), tlog=True)
    result = _verify_with(_with_tsa(sigstore, authority), document)
    assert result.reason is not None
    assert result.reason.startswith(
        "the bundle's RFC 3161 timestamp 0 does not verify with the trusted root's authorities"
    )
    late = _with_tsa(sigstore, other, start=SIGNED_AT + timedelta(days=1))
    result = _verify_with(late, document)
    assert result.reason is not None and result.reason.endswith(
        "CN=test tsa was not a trusted timestamp authority at 2026-03-01T12:02:00Z"
    )


def test_a_timestamp_over_other_bytes_or_by_a_certificate_without_the_eku_fails() -> None:
    sigstore, authority = Sigstore(), tsa.Authority(SIGNED_AT)
    document = sigstore.bundle()
    document["verificationMaterial"]["timestampVerificationData"] = {
        "rfc3161Timestamps": [{"signedTimestamp": _b64(authority.response(b"other bytes", SIGNED_AT))}]
    }
    result = _verify_with(_with_tsa(sigstore, authority), document)
    assert result.reason is not None and result.reason.endswith(
        "the timestamp is not for this signature: its message imprint is the hash of other bytes"
    )
    plain = tsa.Authority(SIGNED_AT, eku=False)
    document = _timestamped(sigstore.bundle(), plain, SIGNED_AT, tlog=True)
    result = _verify_with(_with_tsa(sigstore, plain), document)
    assert result.reason is not None and result.reason.endswith(
        "the certificate CN=test tsa is not a time-stamping authority's (a critical timeStamping-only EKU)"
    )
