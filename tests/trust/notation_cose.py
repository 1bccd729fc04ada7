"""Notation COSE envelopes made here, as the Notary Project's COSE envelope specification
(signature-envelope-cose.md) lays them out, since no tool on this machine writes them:

    18([ << {1: alg, 2: crit, 3: 'application/vnd.cncf.notary.payload.v1+json',
             'io.cncf.notary.signingScheme': ..., 'io.cncf.notary.signingTime': 1(...), ...} >>,
         {33: [<< DER(leaf) >>, ..., << DER(root) >>], 'io.cncf.notary.signingAgent': ...},
         << descriptor JSON >>,
         sign(<< ['Signature1', << protected >>, h'', << payload >>] >>) ])

signed by a key whose certificate a CA made for the test issued (code signing, as Notation
requires of a signing certificate). The encoding is cbor2's and the signing
cryptography's; nothing of portside.trust.cose is used to make them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any

import cbor2
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"
SCHEME = "io.cncf.notary.signingScheme"
SIGNING_TIME = "io.cncf.notary.signingTime"
AUTHENTIC_TIME = "io.cncf.notary.authenticSigningTime"
EXPIRY = "io.cncf.notary.expiry"
TIMESTAMP = "io.cncf.notary.timestampSignature"
AGENT = "io.cncf.notary.signingAgent"
# COSE's algorithm labels (the specification's table) and the keys Notation signs each with.
ALGORITHMS = {"PS256": -37, "PS384": -38, "PS512": -39, "ES256": -7, "ES384": -35, "ES512": -36}
_KEYS: Mapping[str, int | ec.EllipticCurve] = {
    "PS256": 2048,
    "PS384": 3072,
    "PS512": 4096,
    "ES256": ec.SECP256R1(),
    "ES384": ec.SECP384R1(),
    "ES512": ec.SECP521R1(),
}
_HASHES: Mapping[str, type[hashes.HashAlgorithm]] = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

NOW = datetime.now(UTC).replace(microsecond=0)
LEAF_SUBJECT = "CN=signer,O=acme,ST=WA,C=US"


def epoch(at: datetime) -> cbor2.CBORTag:
    """An epoch-based date/time, tag 1 with whole seconds, as the specification asks."""
    return cbor2.CBORTag(1, int(at.timestamp()))


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "WA"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "acme"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key(alg: str) -> PrivateKey:
    spec = _KEYS[alg]
    if isinstance(spec, int):
        return rsa.generate_private_key(65537, spec)
    return ec.generate_private_key(spec)


def _certificate(
    name: str,
    key: PrivateKey,
    issuer: tuple[x509.Name, PrivateKey] | None,
    *,
    ca: bool,
    valid: tuple[datetime, datetime],
) -> x509.Certificate:
    subject = _name(name)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=ca)
    )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
    else:
        usage = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
    return builder.add_extension(usage, critical=True).sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Signer:
    """A signing key, its chain (leaf first, root last) and the alg it signs with."""

    alg: str
    key: PrivateKey
    chain: tuple[x509.Certificate, ...]

    @property
    def root(self) -> x509.Certificate:
        return self.chain[-1]

    @property
    def root_pem(self) -> str:
        return self.root.public_bytes(Encoding.PEM).decode()

    def sign(self, message: bytes) -> bytes:
        """The COSE signature: RSASSA-PSS (salt as long as the hash), or ECDSA as R ‖ S."""
        algorithm = _HASHES[self.alg[2:]]()
        if isinstance(self.key, rsa.RSAPrivateKey):
            scheme = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
            return self.key.sign(message, scheme, algorithm)
        r, s = decode_dss_signature(self.key.sign(message, ec.ECDSA(algorithm)))
        size = (self.key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def make_signer(
    alg: str = "ES256",
    *,
    intermediate: bool = False,
    valid: tuple[datetime, datetime] | None = None,
    leaf_key: PrivateKey | None = None,
) -> Signer:
    """A new CA (and intermediate) issuing a code-signing leaf for `alg`'s key (or `leaf_key`)."""
    valid = valid or (NOW - timedelta(days=1), NOW + timedelta(days=365))
    root_key = _key("ES256" if alg.startswith("ES") else "PS256")
    root = _certificate("root", root_key, None, ca=True, valid=valid)
    issuer: tuple[x509.Name, PrivateKey] = (root.subject, root_key)
    chain = [root]
    if intermediate:
        middle_key = _key("ES256" if alg.startswith("ES") else "PS256")
        middle = _certificate("intermediate", middle_key, issuer, ca=True, valid=valid)
        issuer = (middle.subject, middle_key)
        chain.insert(0, middle)
    leaf_key = leaf_key or _key(alg)
    leaf = _certificate("signer", leaf_key, issuer, ca=False, valid=valid)
    return Signer(alg, leaf_key, (leaf, *chain))


@cache
def signer(alg: str = "ES256") -> Signer:
    """One signer per alg for the whole run: RSA 4096 keys are slow to make."""
    return make_signer(alg)


def descriptor(digest: str, media_type: str = "application/vnd.oci.image.manifest.v1+json", size: int = 1) -> bytes:
    """The payload: the Notary Project's `targetArtifact` document about the image."""
    return json.dumps({"targetArtifact": {"mediaType": media_type, "digest": digest, "size": size}}).encode()


@dataclass
class Parts:
    """What an envelope is made of, each part open to a test that wants it otherwise."""

    protected: dict[Any, Any]
    unprotected: dict[Any, Any]
    payload: bytes | None
    signer: Signer
    external_aad: bytes = b""
    signature: bytes | None = None  # signed over the parts when None

    def protected_bytes(self) -> bytes:
        return cbor2.dumps(self.protected)

    def to_be_signed(self) -> bytes:
        return cbor2.dumps(["Signature1", self.protected_bytes(), self.external_aad, self.payload or b""])

    def encode(self) -> bytes:
        signature = self.signature if self.signature is not None else self.signer.sign(self.to_be_signed())
        body = [self.protected_bytes(), self.unprotected, self.payload, signature]
        return cbor2.dumps(cbor2.CBORTag(18, body))


def parts(
    signer: Signer,
    digest: str,
    *,
    scheme: str = "notary.x509",
    signed_at: datetime | None = None,
    expiry: datetime | None = None,
    timestamp: bytes | None = None,
) -> Parts:
    """A valid envelope's parts: the `notary.x509` scheme (or `notary.x509.signingAuthority`)."""
    at = signed_at or NOW - timedelta(minutes=1)
    time_name = SIGNING_TIME if scheme == "notary.x509" else AUTHENTIC_TIME
    crit: list[Any] = [SCHEME] + ([AUTHENTIC_TIME] if time_name == AUTHENTIC_TIME else [])
    protected: dict[Any, Any] = {
        1: ALGORITHMS[signer.alg],
        2: crit,
        3: PAYLOAD_TYPE,
        SCHEME: scheme,
        time_name: epoch(at),
    }
    if expiry is not None:
        crit.append(EXPIRY)
        protected[EXPIRY] = epoch(expiry)
    unprotected: dict[Any, Any] = {33: [c.public_bytes(Encoding.DER) for c in signer.chain], AGENT: "portside-tests/1"}
    if timestamp is not None:
        unprotected[TIMESTAMP] = timestamp
    return Parts(protected, unprotected, descriptor(digest), signer)


def envelope(signer: Signer, digest: str, **options: Any) -> bytes:
    return parts(signer, digest, **options).encode()
