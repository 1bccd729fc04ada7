"""Public keys a project trusts: loading them, naming them, checking signatures with them.

A key is loaded from PEM (`PUBLIC KEY`, as `cosign generate-key` writes `cosign.pub`;
a `CERTIFICATE` gives its subject key) or from DER SubjectPublicKeyInfo. Accepted:
ECDSA on P-256, P-384 and P-521, RSA of 2048 bits or more, Ed25519.

Its id is the SHA-256 of the DER SubjectPublicKeyInfo, in hex: stable whatever the PEM's
line breaks, and the same number a sigstore bundle's key hint carries in base64
(`hint`).

`verify` follows cosign: ECDSA signatures are ASN.1 DER over the SHA-256 of the
message (P-384 and P-521 keys also with their own SHA-384/SHA-512, as newer sigstore
clients sign); RSA is PKCS #1 v1.5 or PSS with SHA-256; Ed25519 signs the message itself.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

__all__ = ["InvalidKey", "PublicKey", "VerifyingKey", "load_public_key", "key_id_of"]

VerifyingKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey

_CURVE_HASHES: dict[str, tuple[type[hashes.HashAlgorithm], ...]] = {
    "secp256r1": (hashes.SHA256,),
    "secp384r1": (hashes.SHA384, hashes.SHA256),
    "secp521r1": (hashes.SHA512, hashes.SHA256),
}
_CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
MIN_RSA_BITS = 2048


class InvalidKey(ValueError):
    """Not a public key this module accepts; the message says why."""


def key_id_of(key: VerifyingKey) -> str:
    return hashlib.sha256(_spki(key)).hexdigest()


def _spki(key: VerifyingKey) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True, slots=True)
class PublicKey:
    key: VerifyingKey
    key_id: str

    @classmethod
    def of(cls, key: object) -> PublicKey:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in _CURVE_HASHES:
                raise InvalidKey(f"unsupported elliptic curve {key.curve.name}")
        elif isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                raise InvalidKey(f"RSA key of {key.key_size} bits; at least {MIN_RSA_BITS} are required")
        elif not isinstance(key, ed25519.Ed25519PublicKey):
            raise InvalidKey(f"unsupported key type {type(key).__name__}")
        return cls(key, key_id_of(key))

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate) -> PublicKey:
        return cls.of(certificate.public_key())

    @property
    def algorithm(self) -> str:
        """A short label for people: `ECDSA P-256`, `RSA 4096`, `Ed25519`."""
        if isinstance(self.key, ec.EllipticCurvePublicKey):
            return f"ECDSA {_CURVE_NAMES[self.key.curve.name]}"
        if isinstance(self.key, rsa.RSAPublicKey):
            return f"RSA {self.key.key_size}"
        return "Ed25519"

    @property
    def hint(self) -> str:
        """The key id as a sigstore bundle's `publicKey.hint` writes it (standard base64)."""
        return base64.b64encode(bytes.fromhex(self.key_id)).decode()

    def spki_der(self) -> bytes:
        return _spki(self.key)

    def pem(self) -> str:
        return self.key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def same_key(self, other: VerifyingKey) -> bool:
        return key_id_of(other) == self.key_id

    def verify(self, signature: bytes, message: bytes) -> bool:
        key = self.key
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, message)
                return True
            if isinstance(key, rsa.RSAPublicKey):
                return _rsa_verifies(key, signature, message, hashes.SHA256(), hashes.SHA256())
            for algorithm in _CURVE_HASHES[key.curve.name]:
                if _ecdsa_verifies(key, signature, message, ec.ECDSA(algorithm())):
                    return True
            return False
        except (InvalidSignature, ValueError):
            return False

    def verify_digest(self, signature: bytes, digest: bytes, algorithm: str = "sha256") -> bool:
        """Check a signature made over a message of which only the digest is at hand (a
        sigstore message signature over an image manifest). Ed25519 cannot: it is False."""
        hash_type = _DIGESTS.get(algorithm)
        key = self.key
        if hash_type is None or isinstance(key, ed25519.Ed25519PublicKey):
            return False
        prehashed = Prehashed(hash_type())
        try:
            if isinstance(key, rsa.RSAPublicKey):
                return _rsa_verifies(key, signature, digest, prehashed, hash_type())
            return _ecdsa_verifies(key, signature, digest, ec.ECDSA(prehashed))
        except ValueError:
            return False


def _ecdsa_verifies(key: ec.EllipticCurvePublicKey, signature: bytes, data: bytes, scheme: ec.ECDSA) -> bool:
    try:
        key.verify(signature, data, scheme)
    except InvalidSignature:
        return False
    return True


def _rsa_verifies(
    key: rsa.RSAPublicKey,
    signature: bytes,
    data: bytes,
    algorithm: hashes.HashAlgorithm | Prehashed,
    mgf_hash: hashes.HashAlgorithm,
) -> bool:
    schemes: Sequence[padding.AsymmetricPadding] = (
        padding.PKCS1v15(),
        padding.PSS(mgf=padding.MGF1(mgf_hash), salt_length=padding.PSS.AUTO),
    )
    for scheme in schemes:
        try:
            key.verify(signature, data, scheme, algorithm)
            return True
        except InvalidSignature:
            continue
    return False


def load_public_key(data: bytes | str) -> PublicKey:
    """One key from PEM (`PUBLIC KEY` or `CERTIFICATE`) or DER SubjectPublicKeyInfo."""
    raw = data.encode() if isinstance(data, str) else data
    stripped = raw.strip()
    try:
        if stripped.startswith(b"-----BEGIN CERTIFICATE-----"):
            return PublicKey.of(x509.load_pem_x509_certificate(stripped).public_key())
        if stripped.startswith(b"-----BEGIN"):
            return PublicKey.of(serialization.load_pem_public_key(stripped))
        return PublicKey.of(serialization.load_der_public_key(raw))
    except InvalidKey:
        raise
    except (ValueError, TypeError) as error:
        raise InvalidKey(f"not a public key: {error}") from error
