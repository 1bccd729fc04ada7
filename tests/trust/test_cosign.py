"""cosign simple-signing signatures: the fixtures' verdicts, for the stated reasons."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from portside.trust import cosign, keyless
from portside.trust.cosign import SignatureLayer, signature_tag
from portside.trust.keyless import Identity
from portside.trust.keys import PublicKey
from portside.trust.roots import TrustedRoot
from tests.trust.fixtures import (
    CONTAINERS_IMAGE,
    PUBLIC_GOOD_ROOT,
    SIGNED,
    Layout,
    SigstoreJson,
    digest_of,
    key,
    read_linked,
)

TRUSTED = key(CONTAINERS_IMAGE / "cosign.pub")
OTHER = key(CONTAINERS_IMAGE / "cosign2.pub")
VALID_DIGEST = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00"
PUBLIC_GOOD = TrustedRoot.parse(PUBLIC_GOOD_ROOT.read_bytes())


def _image(folder: str) -> str:
    return digest_of(read_linked(CONTAINERS_IMAGE / folder / "manifest.json"))


def _check(folder: str, signature: str, keys: list[PublicKey]) -> cosign.Verification:
    signed = SigstoreJson.read(CONTAINERS_IMAGE / folder / signature)
    return cosign.verify(signed.layer, signed.payload, _image(folder), keys)


def test_the_signature_tag_of_a_digest() -> None:
    assert signature_tag(VALID_DIGEST) == f"sha256-{VALID_DIGEST[7:]}.sig"
    with pytest.raises(ValueError):
        signature_tag("latest")


@pytest.mark.parametrize(
    ("folder", "signatures"),
    [
        ("dir-img-cosign-valid", ["signature-1"]),
        ("dir-img-cosign-valid-2", ["signature-1", "signature-2"]),
        ("dir-img-cosign-valid-with-tag", ["signature-1"]),
    ],
)
def test_the_valid_images_verify_with_their_key(folder: str, signatures: list[str]) -> None:
    assert _image(folder) == VALID_DIGEST
    for signature in signatures:
        result = _check(folder, signature, [OTHER, TRUSTED])
        assert result.verified, result.reason
        assert result.kind == "cosign"
        assert result.signer == TRUSTED.key_id
        assert result.reason is None


def test_the_claimed_creation_time_is_kept_when_nothing_better_is_known() -> None:
    result = _check("dir-img-cosign-valid-with-tag", "signature-1", [TRUSTED])
    assert result.signed_at == datetime.fromtimestamp(1657296609, UTC)


def test_a_valid_signature_with_another_key_is_not_trusted() -> None:
    result = _check("dir-img-cosign-valid", "signature-1", [OTHER])
    assert not result.verified
    assert result.signer is None
    assert result.reason is not None
    assert result.reason.startswith("signed by a key this project does not trust")


def test_the_modified_manifest_is_not_the_signed_image() -> None:
    image = _image("dir-img-cosign-modified-manifest")
    result = _check("dir-img-cosign-modified-manifest", "signature-1", [TRUSTED])
    assert not result.verified
    assert result.reason == f"payload names {VALID_DIGEST} not this image {image}"


def test_the_manifest_digest_error_case_is_not_the_signed_image() -> None:
    # The case's manifest links to a file the fixtures do not carry; whatever it holds,
    # its digest is not the one the payload names.
    image = _image("dir-img-cosign-manifest-digest-error")
    assert image != VALID_DIGEST
    result = _check("dir-img-cosign-manifest-digest-error", "signature-1", [TRUSTED])
    assert result.reason == f"payload names {VALID_DIGEST} not this image {image}"


def test_the_unknown_key_signature_is_not_trusted() -> None:
    signed = SigstoreJson.read(CONTAINERS_IMAGE / "unknown-cosign-key.signature")
    result = cosign.verify(signed.layer, signed.payload, VALID_DIGEST, [TRUSTED])
    assert not result.verified
    assert result.reason is not None and result.reason.startswith("signed by a key this project does not trust")


def test_a_payload_that_is_not_the_layers_blob_was_altered() -> None:
    signed = SigstoreJson.read(CONTAINERS_IMAGE / "dir-img-cosign-valid" / "signature-1")
    altered = signed.payload.replace(b'"optional":null', b'"optional":{}')
    result = cosign.verify(signed.layer, altered, VALID_DIGEST, [TRUSTED])
    assert result.reason is not None and result.reason.startswith("the payload was altered")


def test_an_altered_payload_under_a_matching_descriptor_does_not_verify() -> None:
    signed = SigstoreJson.read(CONTAINERS_IMAGE / "dir-img-cosign-valid" / "signature-1")
    altered = signed.payload.replace(b'"optional":null', b'"optional":{}')
    result = cosign.verify(replace(signed.layer, digest=digest_of(altered)), altered, VALID_DIGEST, [TRUSTED])
    assert not result.verified


def test_the_payload_bytes_are_verified_as_stored_not_re_serialised() -> None:
    signed = SigstoreJson.read(CONTAINERS_IMAGE / "dir-img-cosign-valid" / "signature-1")
    pretty = json.dumps(json.loads(signed.payload), indent=2).encode()
    result = cosign.verify(replace(signed.layer, digest=digest_of(pretty)), pretty, VALID_DIGEST, [TRUSTED])
    assert not result.verified


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"not json", "the payload is not simple-signing JSON"),
        (b'{"critical":{"type":"atomic container signature"}}', "the payload's type is 'atomic container signature'"),
        (b'{"critical":{"type":"cosign container image signature","image":{}}}', "the payload names no image digest"),
    ],
)
def test_payloads_that_are_not_cosign_signatures(payload: bytes, reason: str) -> None:
    layer = SignatureLayer(digest=digest_of(payload), annotations={cosign.SIGNATURE_ANNOTATION: "AAAA"})
    result = cosign.verify(layer, payload, VALID_DIGEST, [TRUSTED])
    assert result.reason is not None and result.reason.startswith(reason)


def test_a_layer_without_a_signature() -> None:
    signed = SigstoreJson.read(CONTAINERS_IMAGE / "dir-img-cosign-valid" / "signature-1")
    result = cosign.verify(replace(signed.layer, annotations={}), signed.payload, VALID_DIGEST, [TRUSTED])
    assert result.reason == "the layer has no dev.cosignproject.cosign/signature annotation"


# -- complete signed images -------------------------------------------------------------


def test_singularity_hello_world_verifies_with_its_key_and_no_other() -> None:
    folder = SIGNED / "cosign-singularity-hello-world"
    layout = Layout(folder)
    image = "sha256:432f982638b3aefab73cc58ab28f5c16e96fdb504e8c134fc58dff4bae8bf338"
    manifest = layout.json(layout.tagged("_cosign:" + signature_tag(image)))
    [result] = cosign.verify_manifest(manifest, layout.blob, image, [key(folder / "cosign.pub")])
    assert result.verified, result.reason
    [wrong] = cosign.verify_manifest(manifest, layout.blob, image, [OTHER])
    assert wrong.reason is not None and wrong.reason.startswith("signed by a key this project does not trust")


def _ocmirror(folder: Path, image: str) -> tuple[Layout, dict[str, object]]:
    layout = Layout(folder)
    [entry] = layout.index()["manifests"]
    return layout, layout.json(entry["digest"])


def test_ocmirror_single_arch_verifies_with_rekor_checked_offline() -> None:
    folder = SIGNED / "cosign-ocmirror-single-arch"
    image = Layout(folder / "single-arch-empty-image").index()["manifests"][0]["digest"]
    layout, manifest = _ocmirror(folder / "single-arch-empty-image-sig", image)
    [result] = cosign.verify_manifest(manifest, layout.blob, image, [key(folder / "cosign.pub")], root=PUBLIC_GOOD)
    assert result.verified, result.reason
    assert result.signed_at is not None and result.signed_at.year >= 2025


def test_ocmirror_multi_platform_every_signature_verifies() -> None:
    folder = SIGNED / "cosign-ocmirror-multi-platform"
    trusted = key(folder / "cosign.pub")
    signatures = sorted(folder.glob("multi-platform-container-sha256-*-sig"))
    assert len(signatures) == 5
    for signature in signatures:
        image = "sha256:" + signature.name.removeprefix("multi-platform-container-sha256-").removesuffix("-sig")
        layout, manifest = _ocmirror(signature, image)
        [result] = cosign.verify_manifest(manifest, layout.blob, image, [trusted], root=PUBLIC_GOOD, require_tlog=True)
        assert result.verified, (signature.name, result.reason)


def test_a_logged_signature_by_another_key_names_that_key() -> None:
    folder = SIGNED / "cosign-ocmirror-single-arch"
    image = Layout(folder / "single-arch-empty-image").index()["manifests"][0]["digest"]
    layout, manifest = _ocmirror(folder / "single-arch-empty-image-sig", image)
    [result] = cosign.verify_manifest(manifest, layout.blob, image, [TRUSTED])
    assert result.reason == f"signed by a key this project does not trust (key {key(folder / 'cosign.pub').key_id})"


def test_a_tampered_rekor_promise_fails() -> None:
    folder = SIGNED / "cosign-ocmirror-single-arch"
    image = Layout(folder / "single-arch-empty-image").index()["manifests"][0]["digest"]
    layout, manifest = _ocmirror(folder / "single-arch-empty-image-sig", image)
    [layer] = cosign.signature_layers(manifest)
    bundle = json.loads(layer.annotations[cosign.BUNDLE_ANNOTATION])
    bundle["Payload"]["integratedTime"] += 1
    tampered = replace(layer, annotations={**layer.annotations, cosign.BUNDLE_ANNOTATION: json.dumps(bundle)})
    payload = layout.blob(layer.digest)
    assert payload is not None
    result = cosign.verify(tampered, payload, image, [key(folder / "cosign.pub")], root=PUBLIC_GOOD)
    assert result.reason is not None and result.reason.startswith("Rekor's signed entry timestamp does not verify")


def test_a_signature_without_a_rekor_entry_fails_when_one_is_required() -> None:
    signed = SigstoreJson.read(CONTAINERS_IMAGE / "dir-img-cosign-valid" / "signature-1")
    result = cosign.verify(signed.layer, signed.payload, VALID_DIGEST, [TRUSTED], root=PUBLIC_GOOD, require_tlog=True)
    assert result.reason == "no Rekor entry comes with the signature, and the policy requires one"
    assert result.signer == TRUSTED.key_id


GADGET = SIGNED / "cosign-notation-inspektor-gadget-oci-store"


@pytest.mark.parametrize(
    ("image", "signature"),
    [
        (
            "sha256:20296fb8a8c8a97808229625945da73f5f4d5843800317ead8c203081156cc9c",
            "sha256:e0c60c886b1ce163e6495fbbbd715343ea2ec86b240c4284f726abea6556f038",
        ),
        (
            "sha256:2f096beb75baadce98f52500552f1d7eabf19f4c35007869350d6f496084e992",
            "sha256:597cc6be74829b950036142f8b8ac8f14469658185ca3fb17e51eabcdb74c977",
        ),
    ],
    ids=["legacy-tag", "oci11-referrer"],
)
def test_inspektor_gadget_signatures_pass_with_the_good_key_and_fail_with_the_wrong(image: str, signature: str) -> None:
    layout = Layout(GADGET)
    manifest = layout.json(signature)
    [good] = cosign.verify_manifest(manifest, layout.blob, image, [key(GADGET / "cosign.pub")], root=PUBLIC_GOOD)
    assert good.verified, good.reason
    [wrong] = cosign.verify_manifest(manifest, layout.blob, image, [key(GADGET / "cosign-wrong.pub")])
    assert wrong.reason is not None and wrong.reason.startswith("signed by a key this project does not trust")


def test_a_real_rekor_entry_for_another_signature_does_not_count() -> None:
    layout = Layout(GADGET)
    image = "sha256:20296fb8a8c8a97808229625945da73f5f4d5843800317ead8c203081156cc9c"
    [layer] = cosign.signature_layers(
        layout.json("sha256:e0c60c886b1ce163e6495fbbbd715343ea2ec86b240c4284f726abea6556f038")
    )
    [other] = cosign.signature_layers(
        layout.json("sha256:597cc6be74829b950036142f8b8ac8f14469658185ca3fb17e51eabcdb74c977")
    )
    swapped = replace(
        layer, annotations={**layer.annotations, cosign.BUNDLE_ANNOTATION: other.annotations[cosign.BUNDLE_ANNOTATION]}
    )
    payload = layout.blob(layer.digest)
    assert payload is not None
    result = cosign.verify(swapped, payload, image, [key(GADGET / "cosign.pub")], root=PUBLIC_GOOD)
    assert result.reason == "the Rekor entry records another payload"


def test_the_unsigned_gadget_image_has_no_signature_tag() -> None:
    layout = Layout(GADGET)
    unsigned = layout.tagged("ghcr.io/inspektor-gadget/gadget/unsigned:francis-signature-unit-tests")
    with pytest.raises(KeyError):
        layout.tagged(signature_tag(unsigned))


# -- keyless ----------------------------------------------------------------------------

CONFORMA = SIGNED / "cosign-conforma-keyless-testimage"
CONFORMA_IMAGE = "sha256:bb2863eb5a15ce3551748cd6aecd40db02c96c0276ae062354b415ad37330fee"
CONFORMA_SIGS = "sha256:4912946aa9657bed0670396e6b0862038a1294225fac21be92a3938e0c62abe4"
CONFORMA_ROOT = TrustedRoot.parse((CONFORMA / "trusted_root.json").read_bytes())
SERVICE_ACCOUNT = "https://kubernetes.io/namespaces/default/serviceaccounts/default"
CLUSTER = "https://kubernetes.default.svc.cluster.local"


def _keyless(identities: list[Identity], root: TrustedRoot | None = CONFORMA_ROOT) -> cosign.Verification:
    layout = Layout(CONFORMA)
    [result] = cosign.verify_manifest(
        layout.json(CONFORMA_SIGS), layout.blob, CONFORMA_IMAGE, identities=identities, root=root
    )
    return result


def test_keyless_verifies_with_the_trusted_root_and_identity() -> None:
    result = _keyless([Identity(CLUSTER, SERVICE_ACCOUNT)])
    assert result.verified, result.reason
    assert result.signer == f"{SERVICE_ACCOUNT} (issuer {CLUSTER})"
    assert result.signed_at is not None and result.signed_at.date().isoformat() == "2026-05-06"


def test_keyless_matches_a_subject_pattern() -> None:
    result = _keyless([Identity(CLUSTER, r"https://kubernetes\.io/namespaces/[^/]+/serviceaccounts/.*", regexp=True)])
    assert result.verified, result.reason
    partial = _keyless([Identity(CLUSTER, r"https://kubernetes\.io/namespaces", regexp=True)])
    assert not partial.verified


def test_keyless_fails_with_another_identity() -> None:
    result = _keyless([Identity(CLUSTER, "https://kubernetes.io/namespaces/prod/serviceaccounts/deployer")])
    assert result.reason == f"signed by {SERVICE_ACCOUNT} (issuer {CLUSTER}), an identity this project does not trust"
    other_issuer = _keyless([Identity("https://token.actions.githubusercontent.com", SERVICE_ACCOUNT)])
    assert other_issuer.reason is not None and "an identity this project does not trust" in other_issuer.reason


def test_keyless_fails_against_another_trusted_root() -> None:
    result = _keyless([Identity(CLUSTER, SERVICE_ACCOUNT)], root=PUBLIC_GOOD)
    assert result.reason is not None and result.reason.startswith("logged by a Rekor the trusted root does not name")


def test_keyless_fails_without_trusted_identities() -> None:
    result = _keyless([])
    assert (
        result.reason
        == f"signed keylessly by {SERVICE_ACCOUNT} (issuer {CLUSTER}), and the project trusts no keyless identities"
    )


def test_keyless_without_a_rekor_entry_has_no_trusted_time() -> None:
    layout = Layout(CONFORMA)
    [layer] = cosign.signature_layers(layout.json(CONFORMA_SIGS))
    bare = replace(layer, annotations={k: v for k, v in layer.annotations.items() if k != cosign.BUNDLE_ANNOTATION})
    payload = layout.blob(layer.digest)
    assert payload is not None
    result = cosign.verify(
        bare, payload, CONFORMA_IMAGE, identities=[Identity(CLUSTER, SERVICE_ACCOUNT)], root=CONFORMA_ROOT
    )
    assert result.reason is not None and result.reason.endswith("there is no trusted signing time")


def test_a_keyless_signature_its_certificate_does_not_verify() -> None:
    layout = Layout(CONFORMA)
    [layer] = cosign.signature_layers(layout.json(CONFORMA_SIGS))
    payload = layout.blob(layer.digest)
    assert payload is not None
    forged = base64.b64encode(b"\x30\x06\x02\x01\x01\x02\x01\x01").decode()
    altered = replace(layer, annotations={**layer.annotations, cosign.SIGNATURE_ANNOTATION: forged})
    result = cosign.verify(
        altered, payload, CONFORMA_IMAGE, identities=[Identity(CLUSTER, SERVICE_ACCOUNT)], root=CONFORMA_ROOT
    )
    assert result.reason == "signature does not verify with its certificate: the payload was altered"


def test_a_keyless_certificate_outside_its_window_or_from_another_fulcio_fails() -> None:
    layout = Layout(CONFORMA)
    [layer] = cosign.signature_layers(layout.json(CONFORMA_SIGS))
    certificate = x509.load_pem_x509_certificate(layer.annotations[cosign.CERTIFICATE_ANNOTATION].encode())
    logged = certificate.not_valid_before_utc + timedelta(minutes=1)
    assert keyless.verify_certificate(certificate, CONFORMA_ROOT, logged) is None
    late = keyless.verify_certificate(certificate, CONFORMA_ROOT, logged + timedelta(hours=1))
    assert late is not None and late.startswith("the signing certificate was not valid when the signature was logged")
    foreign = keyless.verify_certificate(certificate, PUBLIC_GOOD, logged)
    assert foreign is not None and foreign.startswith("the signing certificate was not issued by a Fulcio CA")
