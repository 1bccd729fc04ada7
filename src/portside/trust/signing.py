"""Signing images the way cosign does with a key pair: the keys, the payload, the `.sig` manifest.

The private key is cosign's encrypted PEM (`ENCRYPTED SIGSTORE PRIVATE KEY`; the older
`ENCRYPTED COSIGN PRIVATE KEY` is read too): a JSON body whose ciphertext is the PKCS #8 DER
of the key sealed with NaCl's secretbox under a key scrypt derives from the password and a
32-byte salt. Written with N=65536, r=8, p=1; read with whatever parameters the file names.

`simple_signing_payload` gives the bytes cosign signs, key for key and byte for byte;
`sign` is ECDSA over their SHA-256, ASN.1 DER, base64 (the layer annotation's form);
`signature_manifest` builds (or extends) the OCI manifest tagged `sha256-<hex>.sig`, and
`signature_config` the config blob it names.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import nacl.exceptions
import nacl.secret
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from portside.trust.cosign import SIGNATURE_ANNOTATION, SIGNATURE_TYPE, SIMPLE_SIGNING

__all__ = [
    "PEM_TYPE",
    "LEGACY_PEM_TYPE",
    "OCI_MANIFEST",
    "OCI_CONFIG",
    "generate_key",
    "encrypt_private_key",
    "decrypt_private_key",
    "public_key_pem",
    "simple_signing_payload",
    "sign",
    "signature_config",
    "signature_manifest",
]

PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
LEGACY_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 65536, 8, 1
_SALT_SIZE = 32
_MAX_SCRYPT_N = 1 << 20


def generate_key() -> ec.EllipticCurvePrivateKey:
    """A new ECDSA P-256 private key, as `cosign generate-key-pair` makes."""
    return ec.generate_private_key(ec.SECP256R1())


def _derive(password: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    # 128·r·N bytes of memory; allow a little more than that.
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=128 * r * n * 2 + (1 << 20))


def encrypt_private_key(key: ec.EllipticCurvePrivateKey, password: bytes | str) -> bytes:
    """The key as cosign's encrypted PEM."""
    secret = password.encode() if isinstance(password, str) else password
    der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    salt = os.urandom(_SALT_SIZE)
    nonce = os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_derive(secret, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))
    ciphertext = box.encrypt(der, nonce).ciphertext
    body = {
        "kdf": {
            "name": "scrypt",
            "params": {"N": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
            "salt": base64.b64encode(salt).decode(),
        },
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return _pem(PEM_TYPE, json.dumps(body, separators=(",", ":")).encode())


def _pem(kind: str, data: bytes) -> bytes:
    encoded = base64.b64encode(data).decode()
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    return ("\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"]) + "\n").encode()


def _unpem(data: bytes) -> bytes:
    text = data.decode("ascii", errors="replace").strip().splitlines()
    for kind in (PEM_TYPE, LEGACY_PEM_TYPE):
        begin, end = f"-----BEGIN {kind}-----", f"-----END {kind}-----"
        stripped = [line.strip() for line in text]
        if begin in stripped and end in stripped:
            inside = stripped[stripped.index(begin) + 1 : stripped.index(end)]
            try:
                return base64.b64decode("".join(inside), validate=True)
            except (binascii.Error, ValueError) as error:
                raise ValueError(f"the {kind} PEM is not base64") from error
    raise ValueError(f"not a cosign private key: no {PEM_TYPE} (or {LEGACY_PEM_TYPE}) PEM block")


def decrypt_private_key(data: bytes, password: bytes | str) -> ec.EllipticCurvePrivateKey:
    """The key from cosign's encrypted PEM; ValueError with the reason (a wrong password among them)."""
    secret = password.encode() if isinstance(password, str) else password
    try:
        body: Any = json.loads(_unpem(data))
        kdf, cipher = body["kdf"], body["cipher"]
        if kdf["name"] != "scrypt":
            raise ValueError(f"unsupported key derivation {kdf['name']!r}")
        if cipher["name"] != "nacl/secretbox":
            raise ValueError(f"unsupported cipher {cipher['name']!r}")
        n, r, p = int(kdf["params"]["N"]), int(kdf["params"]["r"]), int(kdf["params"]["p"])
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        ciphertext = base64.b64decode(body["ciphertext"], validate=True)
    except (KeyError, TypeError, binascii.Error, json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"malformed cosign private key: {error}") from error
    if n < 2 or n & (n - 1) or n > _MAX_SCRYPT_N or r < 1 or p < 1 or r * p > 64:
        raise ValueError(f"unacceptable scrypt parameters N={n} r={r} p={p}")
    if len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise ValueError("the secretbox nonce is not 24 bytes")
    box = nacl.secret.SecretBox(_derive(secret, salt, n, r, p))
    try:
        der = box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise ValueError("wrong password for the cosign private key (or the key file was altered)") from None
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("the cosign private key is not an ECDSA key")
    return key


def public_key_pem(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """`cosign.pub`: the public key as a SubjectPublicKeyInfo PEM."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def simple_signing_payload(docker_reference: str, digest: str) -> bytes:
    """The simple-signing payload exactly as cosign writes it (keys in its order, no spaces)."""
    document = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": None,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()


def sign(private_key: ec.EllipticCurvePrivateKey, payload: bytes) -> str:
    """ECDSA-SHA256 over the payload, ASN.1 DER, in base64."""
    return base64.b64encode(private_key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()


def signature_config(layer_digests: list[str]) -> bytes:
    """The config blob cosign writes for a `.sig` manifest with these layers."""
    document = {
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": layer_digests},
        "config": {},
    }
    return json.dumps(document, separators=(",", ":")).encode()


def signature_manifest(
    existing: bytes | Mapping[str, Any] | None, payload_digest: str, payload_size: int, signature_b64: str
) -> bytes:
    """The `.sig` manifest with this signature as its last layer, after any of `existing`'s.

    Its config is `signature_config` of the layers' digests (push that blob too); a layer
    with the same payload and signature as the new one is not repeated."""
    previous: Mapping[str, Any] = json.loads(existing) if isinstance(existing, (bytes, bytearray)) else (existing or {})
    layers = [dict(layer) for layer in previous.get("layers") or [] if isinstance(layer, Mapping)]
    new_layer = {
        "mediaType": SIMPLE_SIGNING,
        "size": payload_size,
        "digest": payload_digest,
        "annotations": {SIGNATURE_ANNOTATION: signature_b64},
    }
    if not any(
        layer.get("digest") == payload_digest
        and (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION) == signature_b64
        for layer in layers
    ):
        layers.append(new_layer)
    config = signature_config([str(layer.get("digest", "")) for layer in layers])
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "size": len(config),
            "digest": "sha256:" + hashlib.sha256(config).hexdigest(),
        },
        "layers": layers,
    }
    return json.dumps(manifest, separators=(",", ":")).encode()
