"""Notation's certificate rules on chains made here: intermediates, ES256, revocation locations."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portside.trust import notation
from portside.trust.notation import SignatureBlob, TrustStore
from portside.trust.trustpolicy import PolicyStatement, TrustPolicy

IMAGE = "sha256:" + "ab" * 32
NOW = datetime(2026, 6, 1, tzinfo=UTC)
CA_USAGE = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
LEAF_USAGE = x509.KeyUsage(True, False, False, False, False, False, False, False, False)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "acme"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    name: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None,
    *,
    ca: bool,
    crl: bool = False,
    eku: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:
    subject = _name(name)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=30))
        .not_valid_after(NOW + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=ca)
        .add_extension(CA_USAGE if ca else LEAF_USAGE, critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
    if crl:
        point = x509.DistributionPoint([x509.UniformResourceIdentifier("http://crl.example/ca.crl")], None, None, None)
        builder = builder.add_extension(x509.CRLDistributionPoints([point]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _chain(
    *, crl: bool = False, eku: x509.ObjectIdentifier | None = ExtendedKeyUsageOID.CODE_SIGNING
) -> tuple[ec.EllipticCurvePrivateKey, list[x509.Certificate]]:
    root_key, middle_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    root = _certificate("root", root_key, None, ca=True)
    middle = _certificate("intermediate", middle_key, (root.subject, root_key), ca=True)
    leaf = _certificate("signer", leaf_key, (middle.subject, middle_key), ca=False, crl=crl, eku=eku)
    return leaf_key, [leaf, middle, root]


def _envelope(key: ec.EllipticCurvePrivateKey, chain: list[x509.Certificate], alg: str = "ES256") -> SignatureBlob:
    header = {
        "alg": alg,
        "crit": ["io.cncf.notary.signingScheme"],
        "cty": notation.PAYLOAD_TYPE,
        "io.cncf.notary.signingScheme": "notary.x509",
        "io.cncf.notary.signingTime": "2026-05-31T12:00:00Z",
    }
    protected = _b64url(json.dumps(header).encode())
    payload = _b64url(json.dumps({"targetArtifact": {"digest": IMAGE, "mediaType": "x", "size": 1}}).encode())
    der = key.sign(f"{protected}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(der)
    document = {
        "protected": protected,
        "payload": payload,
        "signature": _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big")),
        "header": {"x5c": [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in chain]},
    }
    return SignatureBlob(notation.JWS, json.dumps(document).encode())


def _statement(level: str = "strict") -> PolicyStatement:
    policy = TrustPolicy.parse(
        json.dumps(
            {
                "version": "1.0",
                "trustPolicies": [
                    {
                        "name": "acme",
                        "registryScopes": ["*"],
                        "signatureVerification": {"level": level},
                        "trustStores": ["ca:acme"],
                        "trustedIdentities": ["x509.subject: C=US, ST=WA, O=acme, CN=signer"],
                    }
                ],
            }
        )
    )
    statement = policy.select("registry.example/app")
    assert statement is not None
    return statement


def test_an_es256_signature_through_an_intermediate_verifies() -> None:
    key, chain = _chain()
    result = notation.verify(_envelope(key, chain), IMAGE, _statement(), TrustStore({"ca:acme": [chain[-1]]}), now=NOW)
    assert result.verified, result.reason
    assert result.signer == "CN=signer,O=acme,ST=WA,C=US"


def test_a_chain_out_of_order_fails_authenticity() -> None:
    key, chain = _chain()
    shuffled = [chain[0], chain[2], chain[1]]
    store = TrustStore({"ca:acme": [chain[-1]]})
    result = notation.verify(_envelope(key, shuffled), IMAGE, _statement(), store, now=NOW)
    assert result.reason is not None
    assert result.reason.startswith("authenticity validation failed: the certificate chain is not in order")


def test_a_chain_without_its_root_fails_authenticity() -> None:
    key, chain = _chain()
    result = notation.verify(
        _envelope(key, chain[:2]), IMAGE, _statement(), TrustStore({"ca:acme": [chain[-1]]}), now=NOW
    )
    assert result.reason == "authenticity validation failed: the certificate chain does not end in a root certificate"


def test_a_server_certificate_is_not_a_code_signing_one() -> None:
    key, chain = _chain(eku=ExtendedKeyUsageOID.SERVER_AUTH)
    result = notation.verify(_envelope(key, chain), IMAGE, _statement(), TrustStore({"ca:acme": [chain[-1]]}), now=NOW)
    assert result.reason == (
        "authenticity validation failed: the signing certificate CN=signer,O=acme,ST=WA,C=US "
        "has an extended key usage other than code signing"
    )


def test_an_alg_the_key_does_not_imply_fails_integrity() -> None:
    key, chain = _chain()
    result = notation.verify(
        _envelope(key, chain, "ES384"), IMAGE, _statement(), TrustStore({"ca:acme": [chain[-1]]}), now=NOW
    )
    assert (
        result.reason == "integrity validation failed: alg 'ES384' does not match the signing key, which implies ES256"
    )


def test_revocation_is_not_checked_offline_enforced_strictly_and_logged_permissively() -> None:
    key, chain = _chain(crl=True)
    store = TrustStore({"ca:acme": [chain[-1]]})
    strict = notation.verify(_envelope(key, chain), IMAGE, _statement("strict"), store, now=NOW)
    assert strict.reason == (
        "revocation validation failed: the revocation status of CN=signer,O=acme,ST=WA,C=US cannot be determined: "
        "it names OCSP or CRL locations, and revocation is not checked offline"
    )
    permissive = notation.verify(_envelope(key, chain), IMAGE, _statement("permissive"), store, now=NOW)
    assert permissive.verified
    assert permissive.warnings == (f"revocation validation failed: {strict.reason.split(': ', 1)[1]}",)
