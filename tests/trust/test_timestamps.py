"""RFC 3161 tokens as they come in the fixtures: a Notation countersignature (a bare
TimeStampToken from a public TSA) and a sigstore bundle's TimeStampResp, each verified,
and each altered to fail for its own reason."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509

from portside.trust import timestamps
from portside.trust.notation import load_certificates
from portside.trust.roots import TrustedRoot
from tests.trust import tsa
from tests.trust.fixtures import PUBLIC_GOOD_ROOT, SIGNED

TSA_ROOT = Path(__file__).parent / "fixtures_tsa" / "identity-verification-root-2020.crt"
NOTATION = SIGNED / "notation-e2e-with-timestamped-signature"
ENVELOPE = NOTATION / "blobs/sha256/603ff134e97a79cd7a15560b76137c2c4a10451daab11327a7c6f86dac250fee"
GADGET_BUNDLE = (
    SIGNED
    / "cosign-notation-inspektor-gadget-oci-store/blobs/sha256/"
    / "47b7ebef46fb8de5bdd1d911867e916c421871b9ebc694c31cbe3e8a74ee7a33"
)
CONFORMA_ROOT = SIGNED / "cosign-conforma-keyless-testimage" / "trusted_root.json"


def _notation() -> tuple[bytes, bytes]:
    """The countersignature and the signature bytes it is over."""
    document = json.loads(ENVELOPE.read_bytes())
    token = base64.b64decode(document["header"]["io.cncf.notary.timestampSignature"])
    signature = base64.urlsafe_b64decode(document["signature"] + "=" * (-len(document["signature"]) % 4))
    return token, signature


def _root() -> list[x509.Certificate]:
    return load_certificates(TSA_ROOT.read_bytes())


def _gadget() -> tuple[bytes, bytes]:
    document = json.loads(GADGET_BUNDLE.read_bytes())
    stamp = document["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
    return base64.b64decode(stamp["signedTimestamp"]), base64.b64decode(
        document["dsseEnvelope"]["signatures"][0]["sig"]
    )


def test_the_notation_countersignature_verifies_to_its_tsa_root() -> None:
    token, signature = _notation()
    stamp = timestamps.verify(token, signature, _root())
    assert isinstance(stamp, timestamps.Timestamp), stamp
    assert stamp.time == datetime(2025, 1, 21, 9, 17, 46, 641000, tzinfo=UTC)
    assert stamp.accuracy == timedelta(milliseconds=500)
    assert stamp.earliest == stamp.time - timedelta(milliseconds=500)
    assert stamp.authority.startswith("CN=Microsoft Public RSA Time Stamping Authority")
    assert [c.subject.rfc4514_string().split(",")[0] for c in stamp.chain] == [
        "CN=Microsoft Public RSA Time Stamping Authority",
        "CN=Microsoft Public RSA Timestamping CA 2020",
        "CN=Microsoft Identity Verification Root Certificate Authority 2020",
    ]


def test_the_token_parses_into_its_fields() -> None:
    token, _ = _notation()
    parsed = timestamps.parse(token)
    assert (parsed.hash_name, parsed.digest_name, parsed.signature_name) == ("sha256", "sha256", "rsassa_pkcs1v15")
    assert len(parsed.certificates) == 2
    assert parsed.content_type == "tst_info"


def test_a_countersignature_of_other_bytes_fails_on_its_imprint() -> None:
    token, signature = _notation()
    assert timestamps.verify(token, signature[:-1] + b"\x00", _root()) == (
        "the timestamp is not for this signature: its message imprint is the hash of other bytes"
    )


def test_an_untrusted_tsa_fails() -> None:
    token, signature = _notation()
    other = load_certificates((NOTATION / "testcert7.extracted-from-x5c.crt").read_bytes())
    reason = timestamps.verify(token, signature, other)
    assert isinstance(reason, str)
    assert reason.startswith("the timestamp's signer CN=Microsoft Public RSA Time Stamping Authority")
    assert reason.endswith("does not lead to a trusted time-stamping authority certificate")
    assert isinstance(timestamps.verify(token, signature, []), str)


def test_an_altered_signature_value_fails() -> None:
    token, signature = _notation()
    value = timestamps.parse(token).signature
    assert token.count(value) == 1
    altered = token.replace(value, value[:-1] + bytes([value[-1] ^ 1]))
    assert timestamps.verify(altered, signature, _root()) == (
        "the timestamp's signature does not verify: the token was altered or is corrupt"
    )


def test_an_altered_gen_time_breaks_the_message_digest() -> None:
    token, signature = _notation()
    assert token.count(b"20250121091746.641Z") == 1
    altered = token.replace(b"20250121091746.641Z", b"20250121091747.641Z")
    assert timestamps.verify(altered, signature, _root()) == (
        "the timestamp's message-digest attribute does not match its TSTInfo: the token was altered"
    )


def test_malformed_tokens_are_refused() -> None:
    token, signature = _notation()
    for data in (b"invalid\n", b"", token[:-10], token + b"\x00", b"\x30\x03\x02\x01\x00"):
        reason = timestamps.verify(data, signature, _root())
        assert isinstance(reason, str) and reason.startswith("the timestamp token cannot be parsed"), reason


def test_the_bundle_timestamp_response_verifies_with_the_public_good_tsa() -> None:
    token, signature = _gadget()
    [authority] = TrustedRoot.parse(PUBLIC_GOOD_ROOT.read_bytes()).timestamp_authorities
    stamp = timestamps.verify(token, signature, authority.chain[-1:], intermediates=authority.chain[:-1])
    assert isinstance(stamp, timestamps.Timestamp), stamp
    assert stamp.time == datetime(2025, 10, 29, 16, 28, 44, tzinfo=UTC)
    assert stamp.accuracy == timedelta(seconds=1)
    assert stamp.authority == "CN=sigstore-tsa,O=sigstore.dev"
    # The token carries no certificate: without the trusted root's leaf the signer is unknown.
    assert timestamps.verify(token, signature, authority.chain[-1:]) == (
        "the timestamp's signing certificate is neither in the token nor among the trusted ones"
    )


def test_the_bundle_timestamp_fails_with_another_instances_tsa() -> None:
    token, signature = _gadget()
    [authority] = TrustedRoot.parse(CONFORMA_ROOT.read_bytes()).timestamp_authorities
    reason = timestamps.verify(token, signature, authority.chain[-1:], intermediates=authority.chain[:-1])
    assert reason == "the timestamp's signing certificate is neither in the token nor among the trusted ones"


def test_a_refused_timestamp_response_is_no_token() -> None:
    # PKIStatusInfo status 2 (rejection), no token.
    assert timestamps.verify(b"\x30\x05\x30\x03\x02\x01\x02", b"x", []) == (
        "the timestamp token cannot be parsed: the time-stamping authority answered 'rejection', not granted"
    )


def test_the_notary_project_asks_for_the_v2_signing_certificate_attribute() -> None:
    token, signature = _notation()
    assert timestamps.parse(token).ess_v2
    assert isinstance(timestamps.verify(token, signature, _root(), ess_v2=True), timestamps.Timestamp)


def test_the_older_signing_certificate_attribute_counts_unless_v2_is_asked_for() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    authority = tsa.Authority(at)
    token = authority.token(b"signature", at, ess_v1=True).dump()
    assert isinstance(timestamps.verify(token, b"signature", [authority.root]), timestamps.Timestamp)
    assert timestamps.verify(token, b"signature", [authority.root], ess_v2=True) == (
        "the timestamp names its signing certificate with the older ESS attribute, not signing-certificate-v2"
    )


def test_a_tsa_certificate_expired_at_gen_time_fails() -> None:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    authority = tsa.Authority(at)
    later = at + timedelta(days=400)
    reason = timestamps.verify(authority.token(b"signature", later).dump(), b"signature", [authority.root])
    assert reason == (
        "the time-stamping certificate CN=test tsa was not valid at the timestamp's time (2027-04-05T00:00:00Z)"
    )
