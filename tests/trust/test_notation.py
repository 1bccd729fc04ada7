"""Notation JWS signatures under trust policies: each fixture's upstream verdict, for its reason."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from portside.trust import notation, timestamps
from portside.trust.notation import SignatureBlob, TrustStore, load_certificates
from portside.trust.trustpolicy import TrustPolicy
from tests.trust import tsa
from tests.trust.fixtures import SIGNED, Layout

SUBJECT = "sha256:b8479de3f88fb259a0a9ea82a5b2a052a1ef3c4ebbcfc61482d5ae4c831f8af9"
REPOSITORY = "localhost:5000/e2e"
E2E_SIGNER = "CN=e2e,O=Notary,L=Seattle,ST=WA,C=US"


def _signatures(folder: Path, subject: str) -> list[SignatureBlob]:
    layout = Layout(folder)
    found = []
    for entry in layout.index()["manifests"]:
        data = layout.blob(entry["digest"])
        if data is None or entry["mediaType"] != "application/vnd.oci.image.manifest.v1+json":
            continue
        blob = notation.signature_blob(json.loads(data), layout.blob, subject)
        if isinstance(blob, SignatureBlob):
            found.append(blob)
    return found


def _store(folder: Path, *files: str, name: str = "ca:e2e") -> TrustStore:
    return TrustStore({name: [c for f in files for c in load_certificates((folder / f).read_bytes())]})


def _policy(folder: Path, file: str = "trustpolicy.json") -> TrustPolicy:
    return TrustPolicy.parse((folder / file).read_bytes())


def _verify(
    fixture: str,
    certificates: tuple[str, ...] = ("e2e.crt",),
    policy: str = "trustpolicy.json",
    subject: str = SUBJECT,
    now: datetime | None = None,
) -> tuple[notation.Verification, list[notation.Verification]]:
    folder = SIGNED / fixture
    return notation.verify_artifact(
        _signatures(folder, subject),
        subject,
        REPOSITORY,
        _policy(folder, policy),
        _store(folder, *certificates),
        now=now,
    )


def test_the_valid_signature_verifies_with_e2e_crt() -> None:
    verdict, [only] = _verify("notation-e2e-valid-signature")
    assert verdict.verified, verdict.reason
    assert verdict is only
    assert verdict.kind == "notation"
    assert verdict.signer == E2E_SIGNER
    assert verdict.warnings == ()
    assert verdict.signed_at == datetime(2023, 6, 27, 5, 30, 33, tzinfo=UTC)


def test_the_valid_signature_fails_authenticity_with_new_e2e_crt() -> None:
    verdict, _ = _verify("notation-e2e-valid-signature", ("new_e2e.crt",))
    assert verdict.reason == (
        "the signature does not verify: authenticity validation failed: "
        "the certificate chain does not lead to a certificate in the trust store (ca:e2e)"
    )


def test_of_multiple_signatures_the_one_by_e2e_verifies() -> None:
    verdict, results = _verify("notation-e2e-valid-multiple-signatures")
    assert len(results) == 2
    assert verdict.verified and verdict.signer == E2E_SIGNER
    [other] = [r for r in results if not r.verified]
    assert other.signer == "CN=testcert11,O=Notary,L=Seattle,ST=WA,C=US"
    assert other.reason is not None and other.reason.startswith("authenticity validation failed: the certificate chain")


def test_the_expired_signature_fails_strict_and_passes_permissive_with_a_warning() -> None:
    strict, _ = _verify("notation-e2e-expired-signature")
    assert strict.reason == (
        "the signature does not verify: expiry validation failed: the signature expired at 2023-06-27T05:21:21Z"
    )
    permissive, _ = _verify("notation-e2e-expired-signature", policy="permissive_trustpolicy.json")
    assert permissive.verified
    assert permissive.warnings == ("expiry validation failed: the signature expired at 2023-06-27T05:21:21Z",)


def test_the_expired_signature_verifies_strictly_before_it_expired() -> None:
    verdict, _ = _verify("notation-e2e-expired-signature", now=datetime(2023, 6, 27, 5, 21, tzinfo=UTC))
    assert verdict.verified, verdict.reason


@pytest.mark.parametrize("level", ["strict", "permissive", "audit"])
def test_the_invalid_signature_fails_integrity_at_every_level_but_skip(level: str) -> None:
    folder = SIGNED / "notation-e2e-invalid-signature"
    signatures = _signatures(folder, SUBJECT)
    assert [s.media_type for s in signatures] == ["application/vnd.oci.image.layer.v1.tar"]
    policy = _with_level(_policy(folder), level)
    verdict, _ = notation.verify_artifact(signatures, SUBJECT, REPOSITORY, policy, _store(folder, "e2e.crt"))
    assert verdict.reason == (
        "the signature does not verify: integrity validation failed: "
        "unsupported signature envelope type 'application/vnd.oci.image.layer.v1.tar'"
    )


def test_the_invalid_signature_passes_a_skip_level_saying_so() -> None:
    folder = SIGNED / "notation-e2e-invalid-signature"
    policy = TrustPolicy.parse(
        json.dumps(
            {
                "version": "1.0",
                "trustPolicies": [
                    {"name": "skip-e2e", "registryScopes": [REPOSITORY], "signatureVerification": {"level": "skip"}}
                ],
            }
        )
    )
    verdict, _ = notation.verify_artifact(_signatures(folder, SUBJECT), SUBJECT, REPOSITORY, policy, TrustStore())
    assert verdict.verified
    assert verdict.warnings == ("signature verification is configured to skip (trust policy statement 'skip-e2e')",)


def test_the_expired_certificate_fails_authentic_timestamp_strictly_and_passes_permissive() -> None:
    strict, _ = _verify("notation-e2e-with-expired-cert", ("expired_e2e.crt",))
    assert strict.reason is not None
    assert strict.reason.startswith(
        "the signature does not verify: authenticTimestamp validation failed: "
        "the certificate C=AU,ST=Some-State,O=Internet Widgits Pty Ltd is not valid now"
    )
    permissive, _ = _verify("notation-e2e-with-expired-cert", ("expired_e2e.crt",), "permissive_trustpolicy.json")
    assert permissive.verified
    assert len(permissive.warnings) == 1 and permissive.warnings[0].startswith("authenticTimestamp validation failed")


def test_the_expired_certificate_verifies_while_it_was_valid() -> None:
    verdict, _ = _verify("notation-e2e-with-expired-cert", ("expired_e2e.crt",), now=datetime(2023, 6, 27, tzinfo=UTC))
    assert verdict.verified, verdict.reason


def test_the_unsigned_artifact_has_no_associated_signature() -> None:
    folder = SIGNED / "notation-e2e-unsigned"
    assert _signatures(folder, SUBJECT) == []
    policy = _policy(SIGNED / "notation-e2e-valid-signature")
    verdict, _ = notation.verify_artifact([], SUBJECT, REPOSITORY, policy, TrustStore())
    assert verdict.reason == f"{SUBJECT} has no associated signature"


TIMESTAMPED = SIGNED / "notation-e2e-with-timestamped-signature"
TIMESTAMPED_SUBJECT = "sha256:53b0191218aed9a3c1f7c661736ac40cfc8eb928642348fd843ba3f0483c0c20"
BAD_TIMESTAMP = SIGNED / "notation-e2e-with-invalid-timestamped-signature"
BAD_TIMESTAMP_SUBJECT = "sha256:f1da8cd70d6d851fa2313c8d6618f79508cf1e86877edf1c0bfe49a1b0a6467a"
TSA_ROOT = Path(__file__).parent / "fixtures_tsa" / "identity-verification-root-2020.crt"
TESTCERT7 = "CN=testcert7,O=Notary,L=Seattle,ST=WA,C=US"
# testcert7 is valid 2025-01-21T08:36:26Z to 2025-01-22T08:36:26Z; the timestamped
# signature was stamped at 09:17:46.641Z and itself expires at 12:39:46Z.
WHILE_VALID = datetime(2025, 1, 21, 10, tzinfo=UTC)
AFTER_EXPIRY = datetime(2025, 3, 1, tzinfo=UTC)


def _timestamp_policy(
    tsa: bool = True, verify_timestamp: str = "always", override: dict[str, str] | None = None
) -> TrustPolicy:
    verification: dict[str, object] = {"level": "strict", "verifyTimestamp": verify_timestamp}
    if override:
        verification["override"] = override
    statement = {
        "name": "e2e",
        "registryScopes": ["*"],
        "signatureVerification": verification,
        "trustStores": ["ca:e2e", "tsa:e2e"] if tsa else ["ca:e2e"],
        "trustedIdentities": ["*"],
    }
    return TrustPolicy.parse(json.dumps({"version": "1.0", "trustPolicies": [statement]}))


def _timestamp_store(folder: Path = TIMESTAMPED, tsa: Path | None = TSA_ROOT) -> TrustStore:
    stores = {"ca:e2e": load_certificates((folder / "testcert7.extracted-from-x5c.crt").read_bytes())}
    if tsa is not None:
        stores["tsa:e2e"] = load_certificates(tsa.read_bytes())
    return TrustStore(stores)


def _timestamped(
    policy: TrustPolicy, store: TrustStore, now: datetime | None = WHILE_VALID, folder: Path = TIMESTAMPED
) -> notation.Verification:
    subject = TIMESTAMPED_SUBJECT if folder == TIMESTAMPED else BAD_TIMESTAMP_SUBJECT
    signatures = _signatures(folder, subject)
    assert len(signatures) == 1
    verdict, _ = notation.verify_artifact(signatures, subject, REPOSITORY, policy, store, now=now)
    return verdict


def test_the_timestamped_signature_verifies_with_its_tsa_store() -> None:
    policy = _policy(TIMESTAMPED, "timestamp_trustpolicy.json")
    verdict = _timestamped(policy, _timestamp_store())
    assert verdict.verified, verdict.reason
    assert verdict.signer == TESTCERT7
    # The TSA's certificates name CRL locations, which are not fetched offline.
    assert any(w.startswith("authenticTimestamp: the revocation status of CN=Microsoft") for w in verdict.warnings)
    # The signature's own expiry still counts, timestamp or not.
    later = _timestamped(policy, _timestamp_store(), now=None)
    assert later.reason is not None and "expiry validation failed" in later.reason


def test_an_expired_certificate_passes_after_expiry_on_the_strength_of_its_timestamp() -> None:
    policy = _timestamp_policy(verify_timestamp="afterCertExpiry", override={"expiry": "log"})
    verdict = _timestamped(policy, _timestamp_store(), now=AFTER_EXPIRY)
    assert verdict.verified, verdict.reason
    assert any(w.startswith("expiry validation failed") for w in verdict.warnings)
    # Without the tsa store nothing vouches for the signing time.
    without = _timestamped(_timestamp_policy(tsa=False, override={"expiry": "log"}), _timestamp_store(tsa=None))
    assert without.verified
    expired = _timestamped(
        _timestamp_policy(tsa=False, override={"expiry": "log"}), _timestamp_store(tsa=None), now=AFTER_EXPIRY
    )
    assert expired.reason is not None
    assert "authenticTimestamp validation failed: the certificate CN=testcert7" in expired.reason
    assert expired.reason.endswith("no timestamp vouches for the signing time")


def test_after_cert_expiry_does_not_look_at_the_timestamp_while_the_chain_is_valid() -> None:
    # An untrusted TSA does not matter while the certificate is valid...
    store = _timestamp_store(tsa=TIMESTAMPED / "testcert7.extracted-from-x5c.crt")
    assert _timestamped(_timestamp_policy(verify_timestamp="afterCertExpiry"), store).verified
    # ...and does once verification asks for the timestamp.
    verdict = _timestamped(_timestamp_policy(), store)
    assert verdict.reason is not None
    assert "authenticTimestamp validation failed: the timestamp countersignature is not valid (tsa:e2e): " in (
        verdict.reason
    )
    assert verdict.reason.endswith("does not lead to a trusted time-stamping authority certificate")


def test_a_tsa_store_holding_only_an_intermediate_does_not_make_a_root() -> None:
    document = json.loads(
        (TIMESTAMPED / "blobs/sha256/603ff134e97a79cd7a15560b76137c2c4a10451daab11327a7c6f86dac250fee").read_bytes()
    )
    token = timestamps.parse(base64.b64decode(document["header"]["io.cncf.notary.timestampSignature"]))
    intermediate = next(c for c in token.certificates if "Timestamping CA 2020" in c.subject.rfc4514_string())
    store = TrustStore({**_timestamp_store().stores, "tsa:e2e": [intermediate]})
    verdict = _timestamped(_timestamp_policy(), store)
    assert verdict.reason is not None
    assert verdict.reason.endswith(
        "the timestamp's certificate chain ends in CN=Microsoft Public RSA Timestamping CA 2020,"
        "O=Microsoft Corporation,C=US, which is not a root"
    )


def test_the_invalid_timestamp_fails_a_timestamp_requiring_policy() -> None:
    policy = _policy(BAD_TIMESTAMP, "timestamp_trustpolicy.json")
    verdict = _timestamped(policy, _timestamp_store(BAD_TIMESTAMP), folder=BAD_TIMESTAMP)
    assert verdict.signer == TESTCERT7
    assert verdict.reason is not None
    assert "authenticTimestamp validation failed: the timestamp countersignature is not valid (tsa:e2e): " in (
        verdict.reason
    )
    assert "the timestamp token cannot be parsed" in verdict.reason
    # Without a tsa store the policy does not ask for a timestamp, so the bad one is not read.
    without = _timestamped(_timestamp_policy(tsa=False), _timestamp_store(BAD_TIMESTAMP, None), folder=BAD_TIMESTAMP)
    assert without.verified, without.reason
    # Nor under afterCertExpiry while the certificate is valid.
    after = _timestamped(
        _timestamp_policy(verify_timestamp="afterCertExpiry"), _timestamp_store(BAD_TIMESTAMP), folder=BAD_TIMESTAMP
    )
    assert after.verified, after.reason
    # Permissive only logs it.
    logged = _timestamped(_with_level(policy, "permissive"), _timestamp_store(BAD_TIMESTAMP), folder=BAD_TIMESTAMP)
    assert logged.verified
    assert any("the timestamp token cannot be parsed" in w for w in logged.warnings)


def test_a_policy_without_a_tsa_store_judges_the_timestamped_signature_by_the_chain_now() -> None:
    policy = _timestamp_policy(tsa=False)
    assert _timestamped(policy, _timestamp_store(tsa=None)).verified
    expired = _timestamped(policy, _timestamp_store(tsa=None), now=datetime(2025, 1, 21, 12, 50, tzinfo=UTC))
    assert expired.reason is not None and "expiry validation failed" in expired.reason


def test_a_signature_for_another_image_fails_integrity() -> None:
    folder = SIGNED / "notation-e2e-valid-signature"
    [signature] = _signatures(folder, SUBJECT)
    other = "sha256:" + "2" * 64
    statement = _policy(folder).select(REPOSITORY)
    assert statement is not None
    result = notation.verify(signature, other, statement, _store(folder, "e2e.crt"))
    assert result.reason == f"integrity validation failed: the signature is for {SUBJECT}, not this image {other}"


def test_an_altered_envelope_fails_integrity() -> None:
    folder = SIGNED / "notation-e2e-valid-signature"
    [signature] = _signatures(folder, SUBJECT)
    document = json.loads(signature.data)
    document["signature"] = document["signature"][:-4] + ("AAAA" if document["signature"][-4:] != "AAAA" else "BBBB")
    statement = _policy(folder).select(REPOSITORY)
    assert statement is not None
    result = notation.verify(
        SignatureBlob(notation.JWS, json.dumps(document).encode()), SUBJECT, statement, _store(folder, "e2e.crt")
    )
    assert (
        result.reason
        == "integrity validation failed: the signature does not verify: the envelope was altered or is corrupt"
    )


def test_audit_logs_authenticity_and_passes() -> None:
    folder = SIGNED / "notation-e2e-valid-signature"
    policy = _with_level(_policy(folder), "audit")
    verdict, _ = notation.verify_artifact(
        _signatures(folder, SUBJECT), SUBJECT, REPOSITORY, policy, _store(folder, "new_e2e.crt")
    )
    assert verdict.verified
    assert verdict.warnings[0].startswith("authenticity validation failed")


def test_no_applicable_statement_fails() -> None:
    policy = TrustPolicy.parse(
        json.dumps(
            {
                "version": "1.0",
                "trustPolicies": [
                    {
                        "name": "only-prod",
                        "registryScopes": ["registry.example/prod/app"],
                        "signatureVerification": {"level": "strict"},
                        "trustStores": ["ca:e2e"],
                        "trustedIdentities": ["*"],
                    }
                ],
            }
        )
    )
    verdict, _ = notation.verify_artifact([], SUBJECT, REPOSITORY, policy, TrustStore())
    assert verdict.reason == f"no trust policy statement applies to {REPOSITORY}"


GADGET = SIGNED / "cosign-notation-inspektor-gadget-oci-store"


@pytest.mark.parametrize(
    "subject",
    [
        "sha256:5dfde5fef803ccd1087cd3453d7c5825f51ed768274ba5d512539f6dfbbfd9b6",
        "sha256:7418beed5ba60cb39d90e819b07c8ceb078a8dbedbdca53a8e9b01b3628fb988",
    ],
    ids=["config-media-type-signature", "artifact-type-empty-config"],
)
def test_inspektor_gadget_notation_signatures(subject: str) -> None:
    signatures = _signatures(GADGET, subject)
    assert len(signatures) == 1
    policy = _policy(GADGET, "notation-trustpolicy.json")
    good = _store(GADGET, "notation-test.io.crt", name="ca:test.io")
    # Permissive: the certificate (valid one day in January 2026) has expired; that is logged.
    verdict, _ = notation.verify_artifact(signatures, subject, "ttl.sh/gadget", policy, good)
    assert verdict.verified, verdict.reason
    assert verdict.signer == "CN=test.io,O=Notary,L=Seattle,ST=WA,C=US"
    assert [w.split(":")[0] for w in verdict.warnings] == ["authenticTimestamp validation failed"]
    strict = _with_level(policy, "strict")
    then = datetime(2026, 1, 20, 16, tzinfo=UTC)
    at_the_time, _ = notation.verify_artifact(signatures, subject, "ttl.sh/gadget", strict, good, now=then)
    assert at_the_time.verified and at_the_time.warnings == ()
    wrong = _store(GADGET, "notation-wrong-xyz.io.crt", name="ca:test.io")
    refused, _ = notation.verify_artifact(signatures, subject, "ttl.sh/gadget", policy, wrong)
    assert refused.reason is not None and "authenticity validation failed" in refused.reason


def test_a_trusted_identity_that_does_not_match_fails_authenticity() -> None:
    document = json.loads((GADGET / "notation-trustpolicy.json").read_text())
    document["trustPolicies"][0]["trustedIdentities"] = ["x509.subject: CN=other.io, O=Notary, ST=WA, C=US"]
    subject = "sha256:5dfde5fef803ccd1087cd3453d7c5825f51ed768274ba5d512539f6dfbbfd9b6"
    verdict, _ = notation.verify_artifact(
        _signatures(GADGET, subject),
        subject,
        "ttl.sh/gadget",
        TrustPolicy.parse(json.dumps(document)),
        _store(GADGET, "notation-test.io.crt", name="ca:test.io"),
    )
    assert verdict.reason == (
        "the signature does not verify: authenticity validation failed: "
        "the signing certificate's subject CN=test.io,O=Notary,L=Seattle,ST=WA,C=US is not a trusted identity"
    )


def _with_level(policy: TrustPolicy, level: str) -> TrustPolicy:
    document = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": s.name,
                "registryScopes": list(s.registry_scopes),
                "signatureVerification": {"level": level},
                "trustStores": list(s.trust_stores),
                "trustedIdentities": list(s.trusted_identities),
            }
            for s in policy.statements
        ],
    }
    return TrustPolicy.parse(json.dumps(document))


def _restamped(token: bytes) -> list[SignatureBlob]:
    """The timestamped signature with another countersignature: the unprotected header
    is not signed, so the JWS still verifies."""
    [signature] = _signatures(TIMESTAMPED, TIMESTAMPED_SUBJECT)
    document = json.loads(signature.data)
    document["header"]["io.cncf.notary.timestampSignature"] = base64.b64encode(token).decode()
    return [SignatureBlob(signature.media_type, json.dumps(document).encode())]


@pytest.mark.parametrize(
    ("stamped_at", "passes"),
    [
        (datetime(2025, 1, 21, 9, 30, tzinfo=UTC), True),
        # testcert7 was not yet valid, then no longer valid; the TSA's second of accuracy counts too.
        (datetime(2025, 1, 21, 8, 36, 25, tzinfo=UTC), False),
        (datetime(2025, 1, 21, 8, 36, 26, tzinfo=UTC), False),
        (datetime(2025, 1, 22, 9, tzinfo=UTC), False),
    ],
)
def test_the_chain_must_be_valid_over_the_timestamps_range(stamped_at: datetime, passes: bool) -> None:
    authority = tsa.Authority(WHILE_VALID)
    [signature] = _signatures(TIMESTAMPED, TIMESTAMPED_SUBJECT)
    raw = json.loads(signature.data)["signature"]
    signed = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    blobs = _restamped(authority.token(signed, stamped_at).dump())
    store = TrustStore({**_timestamp_store().stores, "tsa:e2e": [authority.root]})
    policy = _timestamp_policy(verify_timestamp="afterCertExpiry", override={"expiry": "log"})
    verdict, _ = notation.verify_artifact(blobs, TIMESTAMPED_SUBJECT, REPOSITORY, policy, store, now=AFTER_EXPIRY)
    assert verdict.verified is passes, verdict.reason
    if not passes:
        assert verdict.reason is not None
        assert "authenticTimestamp validation failed: the certificate CN=testcert7" in verdict.reason
        assert "was not valid at the timestamp's time" in verdict.reason


def test_a_countersignature_over_other_bytes_fails() -> None:
    authority = tsa.Authority(WHILE_VALID)
    blobs = _restamped(authority.token(b"another signature", WHILE_VALID).dump())
    store = TrustStore({**_timestamp_store().stores, "tsa:e2e": [authority.root]})
    verdict, _ = notation.verify_artifact(
        blobs, TIMESTAMPED_SUBJECT, REPOSITORY, _timestamp_policy(), store, now=WHILE_VALID
    )
    assert verdict.reason is not None
    assert verdict.reason.endswith(
        "the timestamp is not for this signature: its message imprint is the hash of other bytes"
    )
