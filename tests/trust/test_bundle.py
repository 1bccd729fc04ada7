"""Sigstore bundles as referrers, DSSE and the Rekor proofs they carry."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import replace
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import load_pem_x509_certificate

from portside.trust import bundle, dsse, rekor
from portside.trust.keys import PublicKey
from portside.trust.roots import TrustedRoot
from tests.trust.fixtures import PUBLIC_GOOD_ROOT, SIGNED, Layout, key

GADGET = SIGNED / "cosign-notation-inspektor-gadget-oci-store"
LAYOUT = Layout(GADGET)
IMAGE = "sha256:d217fb2d81d4314d48ade41ad3cad13324861d296e4e786e6498f3123951709c"
REFERRER = "sha256:3dd951802bf189790e9a5cff9b269fd295896dbd3938f5518ec8f2e93c05fb57"
BUNDLE = "sha256:47b7ebef46fb8de5bdd1d911867e916c421871b9ebc694c31cbe3e8a74ee7a33"
GOOD = key(GADGET / "cosign.pub")
WRONG = key(GADGET / "cosign-wrong.pub")
PUBLIC_GOOD = TrustedRoot.parse(PUBLIC_GOOD_ROOT.read_bytes())


def _bundle() -> dict[str, Any]:
    data = LAYOUT.blob(BUNDLE)
    assert data is not None
    document: dict[str, Any] = json.loads(data)
    return document


def _verify(document: dict[str, Any], keys: list[PublicKey], image: str = IMAGE, **options: Any) -> bundle.Verification:
    return bundle.verify(json.dumps(document).encode(), image, keys, **options)


def test_pae_is_the_dsse_pre_authentication_encoding() -> None:
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert dsse.pae("", b"") == b"DSSEv1 0  0 "
    assert dsse.pae("t\u00e9", b"\x00\x01") == b"DSSEv1 3 t\xc3\xa9 2 \x00\x01"


def test_the_gadget_bundle_referrer_verifies_with_the_good_key_and_rekor_offline() -> None:
    result = bundle.verify_referrer(LAYOUT.json(REFERRER), LAYOUT.blob, IMAGE, [WRONG, GOOD], root=PUBLIC_GOOD)
    assert result.verified, result.reason
    assert result.kind == "cosign-bundle"
    assert result.signer == GOOD.key_id
    assert result.signed_at is not None and result.signed_at.isoformat().startswith("2025-10-29T16:28")


def test_the_key_hint_is_the_keys_id_in_base64() -> None:
    assert _bundle()["verificationMaterial"]["publicKey"]["hint"] == GOOD.hint


def test_the_gadget_bundle_fails_with_the_wrong_key_naming_the_logged_one() -> None:
    result = bundle.verify_referrer(LAYOUT.json(REFERRER), LAYOUT.blob, IMAGE, [WRONG])
    assert result.reason == f"signed by a key this project does not trust (key {GOOD.key_id})"


def test_a_bundle_about_another_image_fails() -> None:
    other = "sha256:" + "0" * 64
    result = bundle.verify_referrer(LAYOUT.json(REFERRER), LAYOUT.blob, other, [GOOD])
    assert result.reason == f"the bundle's manifest is about {IMAGE}, not this image {other}"
    direct = _verify(_bundle(), [GOOD], image=other)
    assert direct.reason == f"the statement's subjects name {IMAGE}, not this image {other}"


def test_an_altered_statement_does_not_verify() -> None:
    document = _bundle()
    statement = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    document["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    result = _verify(document, [GOOD])
    assert result.reason == "signature does not verify: the payload was altered or the signature is corrupt"


def test_a_tampered_inclusion_proof_fails_but_the_promise_alone_would_pass() -> None:
    document = _bundle()
    proof = document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    proof["hashes"][0] = base64.b64encode(b"\x00" * 32).decode()
    result = _verify(document, [GOOD], root=PUBLIC_GOOD)
    assert result.reason == "the Rekor inclusion proof does not lead to the tree root it names"
    del document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]
    assert _verify(document, [GOOD], root=PUBLIC_GOOD).verified


def test_a_checkpoint_for_another_tree_fails() -> None:
    document = _bundle()
    checkpoint = document["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]
    lines = checkpoint["envelope"].split("\n")
    lines[1] = str(int(lines[1]) + 1)
    checkpoint["envelope"] = "\n".join(lines)
    result = _verify(document, [GOOD], root=PUBLIC_GOOD)
    assert result.reason == "the Rekor checkpoint is not for the tree the inclusion proof names"


def test_an_envelope_with_two_signatures_is_refused() -> None:
    document = _bundle()
    signatures = document["dsseEnvelope"]["signatures"]
    document["dsseEnvelope"]["signatures"] = signatures * 2
    assert _verify(document, [GOOD]).reason == "a bundle's DSSE envelope must carry one signature; this one has 2"


def test_other_media_types_are_refused() -> None:
    document = _bundle()
    document["mediaType"] = "application/json"
    assert (
        _verify(document, [GOOD]).reason == "not a sigstore bundle this registry reads (media type 'application/json')"
    )


def test_a_required_rekor_entry_that_is_missing_fails() -> None:
    document = _bundle()
    document["verificationMaterial"]["tlogEntries"] = []
    assert _verify(document, [GOOD]).verified
    result = _verify(document, [GOOD], root=PUBLIC_GOOD, require_tlog=True)
    assert result.reason == "the bundle has no Rekor entry, and the policy requires one"


def test_a_message_signature_bundle_over_the_manifest_digest() -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    trusted = PublicKey.of(private.public_key())
    manifest = LAYOUT.blob(IMAGE)
    assert manifest is not None
    document = {
        "mediaType": bundle.MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": trusted.hint}},
        "messageSignature": {
            "messageDigest": {
                "algorithm": "SHA2_256",
                "digest": base64.b64encode(hashlib.sha256(manifest).digest()).decode(),
            },
            "signature": base64.b64encode(private.sign(manifest, ec.ECDSA(hashes.SHA256()))).decode(),
        },
    }
    result = _verify(document, [GOOD, trusted])
    assert result.verified, result.reason
    assert result.signer == trusted.key_id
    other = "sha256:" + "1" * 64
    assert (
        _verify(document, [trusted], image=other).reason
        == f"the message signature names {IMAGE} not this image {other}"
    )


def test_root_from_an_inclusion_proof() -> None:
    def leaf(data: bytes) -> bytes:
        return hashlib.sha256(b"\x00" + data).digest()

    def node(left: bytes, right: bytes) -> bytes:
        return hashlib.sha256(b"\x01" + left + right).digest()

    a, b, c = leaf(b"a"), leaf(b"b"), leaf(b"c")
    root = node(node(a, b), c)
    assert rekor.root_from_proof(0, 3, a, [b, c]) == root
    assert rekor.root_from_proof(1, 3, b, [a, c]) == root
    assert rekor.root_from_proof(2, 3, c, [node(a, b)]) == root
    assert rekor.root_from_proof(3, 3, c, [node(a, b)]) is None
    assert rekor.root_from_proof(2, 3, c, []) is None


CONFORMA_ROOT = TrustedRoot.parse((SIGNED / "cosign-conforma-keyless-testimage" / "trusted_root.json").read_bytes())


def test_the_gadget_bundles_timestamp_is_verified_with_the_public_good_tsa() -> None:
    document = _bundle()
    stamps = document["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"]
    assert len(stamps) == 1
    assert _verify(document, [GOOD], root=PUBLIC_GOOD).verified
    # An altered token fails the bundle, though its Rekor entry alone would pass.
    token = bytearray(base64.b64decode(stamps[0]["signedTimestamp"]))
    token[-1] ^= 1
    stamps[0]["signedTimestamp"] = base64.b64encode(bytes(token)).decode()
    result = _verify(document, [GOOD], root=PUBLIC_GOOD)
    assert result.reason == (
        "the bundle's RFC 3161 timestamp 0 does not verify with the trusted root's authorities: "
        "the timestamp's signature does not verify: the token was altered or is corrupt"
    )
    # A root naming no timestamp authority does not read timestamps at all.
    assert _verify(document, [GOOD], root=replace(PUBLIC_GOOD, timestamp_authorities=())).verified


def test_the_gadget_bundles_timestamp_fails_under_another_instances_tsa() -> None:
    root = replace(PUBLIC_GOOD, timestamp_authorities=CONFORMA_ROOT.timestamp_authorities)
    result = _verify(_bundle(), [GOOD], root=root)
    assert result.reason == (
        "the bundle's RFC 3161 timestamp 0 does not verify with the trusted root's authorities: "
        "the timestamp's signing certificate is neither in the token nor among the trusted ones"
    )


def test_the_conforma_keyless_signatures_carry_no_rfc3161_timestamp() -> None:
    # Its trusted root names a TSA (the tsa_*.crt.pem files), but cosign signed without one:
    # the signatures' annotations hold a Rekor bundle and no `…/rfc3161timestamp`.
    folder = SIGNED / "cosign-conforma-keyless-testimage"
    layout = Layout(folder)
    [authority] = CONFORMA_ROOT.timestamp_authorities
    files = ("tsa_leaf.crt.pem", "tsa_intermediate_0.crt.pem", "tsa_root.crt.pem")
    assert [c.public_bytes(Encoding.PEM) for c in authority.chain] == [
        load_pem_x509_certificate((folder / f).read_bytes()).public_bytes(Encoding.PEM) for f in files
    ]
    for entry in layout.index()["manifests"]:
        if entry["annotations"]["kind"] == "dev.cosignproject.cosign/image":
            continue
        for layer in layout.json(entry["digest"])["layers"]:
            names = set(layer["annotations"])
            assert "dev.sigstore.cosign/bundle" in names
            assert not any("rfc3161" in name for name in names)
