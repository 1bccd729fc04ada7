"""Loading keys and their ids."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from portside.trust.keys import InvalidKey, PublicKey, load_public_key
from tests.trust.fixtures import CONTAINERS_IMAGE, SIGNED


def _pem(private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def test_key_id_is_the_sha256_of_the_der_subject_public_key_info() -> None:
    pem = (CONTAINERS_IMAGE / "cosign.pub").read_bytes()
    der = base64.b64decode(b"".join(line for line in pem.splitlines() if not line.startswith(b"-----")))
    key = load_public_key(pem)
    assert key.key_id == hashlib.sha256(der).hexdigest()
    assert key.algorithm == "ECDSA P-256"
    assert key.hint == base64.b64encode(hashlib.sha256(der).digest()).decode()


def test_key_id_does_not_depend_on_how_the_pem_is_wrapped() -> None:
    pem = (CONTAINERS_IMAGE / "cosign.pub").read_text()
    body = "".join(line for line in pem.splitlines() if not line.startswith("-----"))
    rewrapped = "-----BEGIN PUBLIC KEY-----\n" + "\n".join(body[i : i + 40] for i in range(0, len(body), 40))
    rewrapped += "\n-----END PUBLIC KEY-----\n"
    assert load_public_key(rewrapped).key_id == load_public_key(pem).key_id
    assert load_public_key(base64.b64decode(body)).key_id == load_public_key(pem).key_id


def test_different_keys_have_different_ids() -> None:
    one = load_public_key((CONTAINERS_IMAGE / "cosign.pub").read_bytes())
    two = load_public_key((CONTAINERS_IMAGE / "cosign2.pub").read_bytes())
    assert one.key_id != two.key_id


def test_a_certificate_gives_its_subject_key() -> None:
    certificate = (SIGNED / "notation-e2e-valid-signature" / "e2e.crt").read_bytes()
    assert load_public_key(certificate).algorithm == "RSA 2048"


@pytest.mark.parametrize(
    ("private", "label"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "ECDSA P-256"),
        (ec.generate_private_key(ec.SECP384R1()), "ECDSA P-384"),
        (rsa.generate_private_key(65537, 2048), "RSA 2048"),
        (ed25519.Ed25519PrivateKey.generate(), "Ed25519"),
    ],
)
def test_each_kind_loads_and_verifies_as_cosign_signs(
    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey, label: str
) -> None:
    key = load_public_key(_pem(private))
    assert key.algorithm == label
    message = b'{"critical":{}}'
    if isinstance(private, ec.EllipticCurvePrivateKey):
        signature = private.sign(message, ec.ECDSA(hashes.SHA256()))
    elif isinstance(private, rsa.RSAPrivateKey):
        signature = private.sign(message, padding.PKCS1v15(), hashes.SHA256())
    else:
        signature = private.sign(message)
    assert key.verify(signature, message)
    assert not key.verify(signature, message + b" ")


def test_p384_with_its_own_hash_and_rsa_pss_verify() -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    assert load_public_key(_pem(p384)).verify(p384.sign(b"m", ec.ECDSA(hashes.SHA384())), b"m")
    private = rsa.generate_private_key(65537, 3072)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH)
    assert load_public_key(_pem(private)).verify(private.sign(b"m", pss, hashes.SHA256()), b"m")


def test_a_signature_over_a_digest_verifies_prehashed() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    key = PublicKey.of(private.public_key())
    signature = private.sign(b"manifest", ec.ECDSA(hashes.SHA256()))
    assert key.verify_digest(signature, hashlib.sha256(b"manifest").digest())
    assert not key.verify_digest(signature, hashlib.sha256(b"other").digest())


def test_small_rsa_keys_and_other_curves_are_refused() -> None:
    with pytest.raises(InvalidKey, match="at least 2048"):
        load_public_key(_pem(rsa.generate_private_key(65537, 1024)))
    with pytest.raises(InvalidKey, match="curve"):
        load_public_key(_pem(ec.generate_private_key(ec.SECP256K1())))
    with pytest.raises(InvalidKey, match="not a public key"):
        load_public_key(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
