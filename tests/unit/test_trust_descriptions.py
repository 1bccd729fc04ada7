"""What people recognise trust entries by (mgmt/trust_policy.py's describe_*), read from
the real certificates and trusted roots of the shared signed-image fixtures; and that an
editor form (ui/views/trust.py) changes only its own piece of the document."""

from __future__ import annotations

import json

from portside.mgmt.trust_policy import describe_certificate, describe_root
from portside.ui.views.trust import edited
from tests.trust.fixtures import PUBLIC_GOOD_ROOT, SIGNED

E2E = SIGNED / "notation-e2e-valid-signature" / "e2e.crt"
KEYLESS_ROOT = SIGNED / "cosign-conforma-keyless-testimage" / "trusted_root.json"


def test_a_certificate_is_described_by_its_names_validity_and_fingerprint() -> None:
    entry = {"name": "e2e", "type": "ca", "certificate": E2E.read_text()}
    described = describe_certificate(entry)
    assert described == {
        **entry,
        "subject": "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US",
        "issuer": "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US",
        "not_before": "2022-12-19T02:43:39Z",
        "not_after": "2122-12-19T02:43:39Z",
        "fingerprint": "e38aea13f2b051f7183cca64a51ee676f4d4456f41d9fecf15eb367efc7343b9",
        "count": 1,
    }


def test_a_private_trusted_root_names_its_parts_by_subject_or_log_id() -> None:
    # Its Fulcio CA's country is three letters long, which cryptography warns of (and the
    # suite's warnings are errors): the description reads it all the same.
    described = describe_root(json.loads(KEYLESS_ROOT.read_text()))
    assert described is not None
    assert {kind: len(entries) for kind, entries in described.items()} == {
        "certificate_authorities": 1,
        "tlogs": 1,
        "ctlogs": 1,
        "timestamp_authorities": 1,
    }
    (authority,) = described["certificate_authorities"]
    assert authority["name"].startswith("O=Linux Foundation,") and authority["name"].endswith(",C=USA")
    assert (authority["start"], authority["end"]) == ("2026-05-06T15:33:26Z", "2027-05-06T15:33:26Z")
    (log,) = described["tlogs"]
    assert log["name"] == "59b2aa842d6509de61cd18677bf954f46db6aee0a33f8e18936d5423582b4b43" and log["end"] is None
    assert described["timestamp_authorities"][0]["name"] == "CN=Test TSA Timestamping,O=local"


def test_the_public_good_root_names_its_parts_by_url() -> None:
    described = describe_root(json.loads(PUBLIC_GOOD_ROOT.read_text()))
    assert described is not None
    assert "https://rekor.sigstore.dev" in [log["name"] for log in described["tlogs"]]
    assert {a["name"] for a in described["certificate_authorities"]} == {"https://fulcio.sigstore.dev"}
    assert [a["name"] for a in described["timestamp_authorities"]] == [
        "https://timestamp.sigstore.dev/api/v1/timestamp"
    ]


def test_no_root_is_described_as_none() -> None:
    assert describe_root(None) is None and describe_root({}) is None


def test_a_form_changes_its_own_piece_and_keeps_the_rest_of_the_document() -> None:
    # Parts of the policy no form edits (Notary's pinned roots, Notation's timestamp rule)
    # go back to the service as they were stored.
    document = {
        "notary": {"root_keys": [{"repository": "*", "keys": ["a" * 64]}]},
        "notation": {"certificates": [], "verification_level": "audit", "verify_timestamp": "afterCertExpiry"},
        "keyless": {"identities": [], "require_tlog": False},
    }
    form = {"part": "trust-certificate-add", "certificate_name": "e2e", "certificate": E2E.read_text()}
    changed = edited(document, form, system=True).document
    assert changed["notary"] == document["notary"] and changed["keyless"] == document["keyless"]
    assert changed["notation"]["verify_timestamp"] == "afterCertExpiry"
    assert changed["notation"]["verification_level"] == "audit"
    assert [c["name"] for c in changed["notation"]["certificates"]] == ["e2e"]
    assert document["notation"]["certificates"] == []  # the stored document is not changed in place
