"""portside.trust.signing: cosign's key files, payload and `.sig` manifest, checked with the
registry's own verifier (`portside.trust.cosign`) and key loader."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from portside.trust import cosign, signing
from portside.trust.keys import load_public_key

FIXTURE_BLOBS = Path("/work/shared/fixtures/signed-images/cosign-singularity-hello-world/blobs/sha256")
IMAGE = "sha256:" + "ab" * 32
KEY = signing.generate_key()
OTHER = signing.generate_key()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_private_key_round_trip() -> None:
    pem = signing.encrypt_private_key(KEY, "s3cret")
    assert pem.startswith(b"-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n")
    assert pem.rstrip().endswith(b"-----END ENCRYPTED SIGSTORE PRIVATE KEY-----")
    body = json.loads(base64.b64decode(b"".join(pem.splitlines()[1:-1])))
    assert body["kdf"]["name"] == "scrypt"
    assert body["kdf"]["params"] == {"N": 65536, "r": 8, "p": 1}
    assert len(base64.b64decode(body["kdf"]["salt"])) == 32
    assert body["cipher"]["name"] == "nacl/secretbox"
    assert len(base64.b64decode(body["cipher"]["nonce"])) == 24
    loaded = signing.decrypt_private_key(pem, "s3cret")
    assert loaded.private_numbers() == KEY.private_numbers()


def test_legacy_pem_type_is_read() -> None:
    pem = signing.encrypt_private_key(KEY, b"pw").replace(b"SIGSTORE", b"COSIGN")
    assert signing.decrypt_private_key(pem, b"pw").private_numbers() == KEY.private_numbers()


def test_wrong_password_is_a_clear_error() -> None:
    pem = signing.encrypt_private_key(KEY, "right")
    with pytest.raises(ValueError, match="wrong password"):
        signing.decrypt_private_key(pem, "wrong")


def test_not_a_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="not a cosign private key"):
        signing.decrypt_private_key(signing.public_key_pem(KEY), "x")


def test_public_key_loads() -> None:
    public = load_public_key(signing.public_key_pem(KEY))
    assert public.algorithm == "ECDSA P-256"
    assert public.same_key(KEY.public_key())


def test_payload_is_byte_for_byte_cosigns() -> None:
    fixtures = [p.read_bytes() for p in FIXTURE_BLOBS.iterdir()] if FIXTURE_BLOBS.is_dir() else []
    payloads = [b for b in fixtures if b.startswith(b'{"critical"')]
    if not payloads:
        pytest.skip("no cosign payload fixture")
    for blob in payloads:
        document = json.loads(blob)
        critical = document["critical"]
        made = signing.simple_signing_payload(
            critical["identity"]["docker-reference"], critical["image"]["docker-manifest-digest"]
        )
        assert made == blob


def _signed(key: object, existing: bytes | None = None) -> tuple[bytes, dict[str, bytes]]:
    payload = signing.simple_signing_payload("127.0.0.1:5000/library/app", IMAGE)
    signature = signing.sign(key, payload)  # type: ignore[arg-type]
    manifest = signing.signature_manifest(existing, _sha(payload), len(payload), signature)
    return manifest, {_sha(payload): payload}


def test_signature_verifies_with_its_key_only() -> None:
    manifest_bytes, blobs = _signed(KEY)
    manifest = json.loads(manifest_bytes)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.oci.image.config.v1+json"
    config = signing.signature_config([layer["digest"] for layer in manifest["layers"]])
    assert manifest["config"]["digest"] == _sha(config) and manifest["config"]["size"] == len(config)
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == cosign.SIMPLE_SIGNING
    assert cosign.SIGNATURE_ANNOTATION in layer["annotations"]

    good = cosign.verify_manifest(manifest, blobs.get, IMAGE, [load_public_key(signing.public_key_pem(KEY))])
    assert [v.verified for v in good] == [True]
    bad = cosign.verify_manifest(manifest, blobs.get, IMAGE, [load_public_key(signing.public_key_pem(OTHER))])
    assert [v.verified for v in bad] == [False]
    wrong_image = cosign.verify_manifest(
        manifest, blobs.get, "sha256:" + "cd" * 32, [load_public_key(signing.public_key_pem(KEY))]
    )
    assert [v.verified for v in wrong_image] == [False]


def test_appending_keeps_earlier_signatures() -> None:
    first, blobs = _signed(KEY)
    second, more = _signed(OTHER, first)
    blobs.update(more)
    manifest = json.loads(second)
    assert len(manifest["layers"]) == 2
    assert manifest["layers"][0] == json.loads(first)["layers"][0]
    keys = [load_public_key(signing.public_key_pem(KEY))]
    assert [v.verified for v in cosign.verify_manifest(manifest, blobs.get, IMAGE, keys)] == [True, False]
    both = [*keys, load_public_key(signing.public_key_pem(OTHER))]
    assert [v.verified for v in cosign.verify_manifest(manifest, blobs.get, IMAGE, both)] == [True, True]


def test_the_same_signature_is_not_repeated() -> None:
    payload = signing.simple_signing_payload("r/app", IMAGE)
    signature = signing.sign(KEY, payload)
    once = signing.signature_manifest(None, _sha(payload), len(payload), signature)
    twice = signing.signature_manifest(once, _sha(payload), len(payload), signature)
    assert once == twice
