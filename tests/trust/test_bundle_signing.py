"""The sigstore bundle referrer `portside sign --bundle` makes: it passes the checks the real
cosign's bundle (the inspektor-gadget fixture) passes, has that bundle's shape field for
field, and fails for its reason when altered or checked with another key."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from portside.trust import bundle, bundle_signing, dsse, signing
from portside.trust.keys import PublicKey
from tests.trust.fixtures import Layout, key
from tests.trust.test_bundle import BUNDLE, GADGET, GOOD, REFERRER, WRONG

LAYOUT = Layout(GADGET)
SUBJECT = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1234, "digest": "sha256:" + "ab" * 32}


def _made() -> tuple[dict[str, Any], dict[str, bytes], PublicKey, PublicKey]:
    """A referrer made by `bundle_signing` for SUBJECT, its blobs, its key and another key."""
    private, other = signing.generate_key(), signing.generate_key()
    data = bundle_signing.sign_bundle(private, SUBJECT["digest"])
    manifest = bundle_signing.referrer_manifest(data, SUBJECT, datetime(2026, 12, 4, 3, 4, 5, tzinfo=UTC))
    blobs = {
        "sha256:" + hashlib.sha256(data).hexdigest(): data,
        "sha256:" + hashlib.sha256(bundle_signing.EMPTY_CONFIG).hexdigest(): bundle_signing.EMPTY_CONFIG,
    }
    public = [PublicKey.of(k.public_key()) for k in (private, other)]
    return json.loads(manifest), blobs, public[0], public[1]


def _fixture() -> tuple[dict[str, Any], Callable[[str], bytes | None], PublicKey, PublicKey]:
    return LAYOUT.json(REFERRER), LAYOUT.blob, GOOD, WRONG


def _paths(document: Any, prefix: str = "") -> set[str]:
    """Every field path of a JSON document (list items as `[]`)."""
    if isinstance(document, dict):
        found = set()
        for name, value in document.items():
            found |= {f"{prefix}{name}"} | _paths(value, f"{prefix}{name}.")
        return found
    if isinstance(document, list):
        return set().union(*(_paths(item, f"{prefix}[].") for item in document)) if document else set()
    return set()


def _checks(manifest: dict[str, Any], blob: Callable[[str], bytes | None], good: PublicKey, wrong: PublicKey) -> None:
    """What a cosign bundle referrer signed with a key must pass, made by whomever."""
    image = manifest["subject"]["digest"]
    assert manifest["artifactType"] == bundle.MEDIA_TYPE
    assert manifest["config"]["mediaType"] == bundle_signing.EMPTY_MEDIA_TYPE
    assert blob(manifest["config"]["digest"]) == b"{}"
    assert manifest["annotations"][bundle_signing.CONTENT_ANNOTATION] == "dsse-envelope"
    assert manifest["annotations"][bundle_signing.PREDICATE_ANNOTATION] == bundle_signing.PREDICATE_TYPE
    datetime.strptime(manifest["annotations"][bundle_signing.CREATED_ANNOTATION], "%Y-%m-%dT%H:%M:%SZ")
    [layer] = manifest["layers"]
    data = blob(layer["digest"])
    assert data is not None and layer["size"] == len(data) and layer["mediaType"] == bundle.MEDIA_TYPE
    document = json.loads(data)
    assert document["verificationMaterial"]["publicKey"]["hint"] == good.hint
    envelope = dsse.Envelope.parse(document["dsseEnvelope"])
    assert envelope.payload_type == dsse.IN_TOTO
    assert dsse.subjects(envelope.payload) == [image]
    assert json.loads(envelope.payload)["predicateType"] == bundle_signing.PREDICATE_TYPE
    verdict = bundle.verify_referrer(manifest, blob, image, [wrong, good])
    assert verdict.verified and verdict.signer == good.key_id, verdict.reason
    refused = bundle.verify_referrer(manifest, blob, image, [wrong])
    # The fixture's Rekor entry names the key that signed; without one, the reason is the same.
    assert refused.reason is not None and refused.reason.startswith("signed by a key this project does not trust")


@pytest.mark.parametrize("made_by", ["cosign", "portside"])
def test_the_bundle_referrer_passes_the_checks(made_by: str) -> None:
    if made_by == "cosign":
        _checks(*_fixture())
    else:
        manifest, blobs, good, wrong = _made()
        _checks(manifest, blobs.get, good, wrong)


def test_the_shape_is_cosigns_field_for_field() -> None:
    manifest, blobs, _, _ = _made()
    theirs = LAYOUT.json(REFERRER)
    assert _paths(manifest) == _paths(theirs)
    assert list(manifest) == list(theirs) and list(manifest["config"]) == list(theirs["config"])
    assert manifest["config"] == theirs["config"]  # the same empty blob, the same artifact type
    assert manifest["annotations"].keys() == theirs["annotations"].keys()
    ours_bundle = json.loads(blobs[manifest["layers"][0]["digest"]])
    cosigns = LAYOUT.json(BUNDLE)
    # The fixture was logged in Rekor and timestamped; `--bundle` is offline, so those are absent.
    online = {"verificationMaterial.tlogEntries", "verificationMaterial.timestampVerificationData"}
    assert _paths(ours_bundle) == {p for p in _paths(cosigns) if not any(p.startswith(o) for o in online)}
    assert list(ours_bundle) == list(cosigns) and list(ours_bundle["dsseEnvelope"]) == list(cosigns["dsseEnvelope"])
    # The statement: cosign's, field for field and in cosign's order.
    ours = json.loads(base64.b64decode(ours_bundle["dsseEnvelope"]["payload"]))
    cosign_statement = json.loads(base64.b64decode(cosigns["dsseEnvelope"]["payload"]))
    assert list(ours) == list(cosign_statement) and _paths(ours) == _paths(cosign_statement)
    assert ours["_type"] == cosign_statement["_type"] and ours["predicateType"] == cosign_statement["predicateType"]


def test_the_fixture_key_id_is_the_one_portside_writes() -> None:
    assert key(GADGET / "cosign.pub").hint == LAYOUT.json(BUNDLE)["verificationMaterial"]["publicKey"]["hint"]


def test_an_altered_payload_fails_as_altered() -> None:
    manifest, blobs, good, _ = _made()
    digest = manifest["layers"][0]["digest"]
    document = json.loads(blobs[digest])
    statement = json.loads(base64.b64decode(document["dsseEnvelope"]["payload"]))
    statement["predicateType"] = "https://slsa.dev/provenance/v1"
    document["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    verdict = bundle.verify(json.dumps(document).encode(), SUBJECT["digest"], [good])
    assert verdict.reason == "signature does not verify: the payload was altered or the signature is corrupt"
    # Swapped in under the manifest's old digest, the blob no longer matches it.
    blobs[digest] = json.dumps(document).encode()
    swapped = bundle.verify_referrer(manifest, blobs.get, SUBJECT["digest"], [good])
    assert swapped.reason == f"the bundle blob is not {digest}: it was altered"


def test_the_subject_is_the_whole_descriptor_and_the_time_is_utc() -> None:
    data = bundle_signing.sign_bundle(signing.generate_key(), SUBJECT["digest"])
    when = datetime(2026, 12, 4, 4, 5, 6).astimezone()
    manifest = json.loads(bundle_signing.referrer_manifest(data, {**SUBJECT, "extra": 1}, when))
    assert manifest["subject"] == SUBJECT
    assert manifest["annotations"][bundle_signing.CREATED_ANNOTATION] == when.astimezone(UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
