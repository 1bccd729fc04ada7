"""Notation COSE envelopes (`application/cose`) under trust policies: made here as the
specification lays them out (tests/trust/notation_cose.py), through the same validations
as the JWS ones, each failure for its reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding

from portside.trust import cose, notation
from portside.trust.notation import Envelope, SignatureBlob, TrustStore
from portside.trust.trustpolicy import PolicyStatement, TrustPolicy
from tests.trust import notation_cose
from tests.trust.notation_cose import AUTHENTIC_TIME, EXPIRY, NOW, SCHEME, SIGNING_TIME, Parts, epoch, signer

IMAGE = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32
ALTERED = "integrity validation failed: the signature does not verify: the envelope was altered or is corrupt"


def _statement(level: str = "strict", kind: str = "ca") -> PolicyStatement:
    policy = TrustPolicy.parse(
        json.dumps(
            {
                "version": "1.0",
                "trustPolicies": [
                    {
                        "name": "acme",
                        "registryScopes": ["*"],
                        "signatureVerification": {"level": level},
                        "trustStores": [f"{kind}:acme"],
                        "trustedIdentities": ["x509.subject: C=US, ST=WA, O=acme, CN=signer"],
                    }
                ],
            }
        )
    )
    statement = policy.select("registry.example/app")
    assert statement is not None
    return statement


def _verify(
    data: bytes,
    *,
    level: str = "strict",
    trusted: notation_cose.Signer | None = None,
    kind: str = "ca",
    now: datetime | None = None,
) -> notation.Verification:
    root = (trusted or signer()).root
    store = TrustStore({f"{kind}:acme": [root]})
    return notation.verify(SignatureBlob(notation.COSE, data), IMAGE, _statement(level, kind), store, now=now)


def _integrity(parts: Parts) -> str | None:
    return _verify(parts.encode(), trusted=parts.signer).reason


@pytest.mark.parametrize("alg", ["ES256", "PS256", "ES384", "PS384", "ES512", "PS512"])
def test_an_envelope_of_each_algorithm_verifies(alg: str) -> None:
    result = _verify(notation_cose.envelope(signer(alg), IMAGE), trusted=signer(alg))
    assert result.verified, result.reason
    assert result.kind == "notation"
    assert result.signer == notation_cose.LEAF_SUBJECT
    assert result.signed_at == NOW - timedelta(minutes=1)
    assert result.warnings == ()


def test_a_chain_through_an_intermediate_verifies() -> None:
    chained = notation_cose.make_signer("ES256", intermediate=True)
    assert len(chained.chain) == 3
    result = _verify(notation_cose.envelope(chained, IMAGE), trusted=chained)
    assert result.verified, result.reason


def test_a_tampered_payload_fails_integrity() -> None:
    parts = notation_cose.parts(signer(), IMAGE)
    signature = signer().sign(parts.to_be_signed())
    parts.payload = notation_cose.descriptor(IMAGE, size=2)  # after signing
    parts.signature = signature
    assert _integrity(parts) == ALTERED


def test_a_tampered_protected_header_or_signature_fails_integrity() -> None:
    parts = notation_cose.parts(signer("PS256"), IMAGE)
    signature = parts.signer.sign(parts.to_be_signed())
    parts.protected["io.example.note"] = "added after signing"
    parts.signature = signature
    assert _integrity(parts) == ALTERED
    parts = notation_cose.parts(signer("PS256"), IMAGE)
    good = parts.signer.sign(parts.to_be_signed())
    parts.signature = good[:-1] + bytes([good[-1] ^ 1])
    assert _integrity(parts) == ALTERED


def test_a_signature_over_another_external_aad_fails_integrity() -> None:
    parts = notation_cose.parts(signer(), IMAGE)
    parts.external_aad = b"other"
    assert _integrity(parts) == ALTERED


def test_a_signature_for_another_image_fails_integrity() -> None:
    result = _verify(notation_cose.envelope(signer(), OTHER))
    assert result.reason == f"integrity validation failed: the signature is for {OTHER}, not this image {IMAGE}"


def test_an_expired_signature_fails_strict_and_is_logged_permissive() -> None:
    expired = NOW - timedelta(seconds=30)
    data = notation_cose.envelope(signer(), IMAGE, expiry=expired)
    reason = f"expiry validation failed: the signature expired at {expired:%Y-%m-%dT%H:%M:%SZ}"
    assert _verify(data).reason == reason
    permissive = _verify(data, level="permissive")
    assert permissive.verified and permissive.warnings == (reason,)
    before = _verify(data, now=expired - timedelta(seconds=1))
    assert before.verified, before.reason


def test_an_untrusted_root_fails_authenticity_and_audit_only_logs_it() -> None:
    stranger = notation_cose.make_signer("ES256")
    data = notation_cose.envelope(stranger, IMAGE)
    reason = (
        "authenticity validation failed: "
        "the certificate chain does not lead to a certificate in the trust store (ca:acme)"
    )
    assert _verify(data, trusted=signer()).reason == reason
    audited = _verify(data, level="audit", trusted=signer())
    assert audited.verified and audited.warnings == (reason,)


def test_a_certificate_not_valid_now_fails_authentic_timestamp() -> None:
    old = notation_cose.make_signer("ES256", valid=(NOW - timedelta(days=30), NOW - timedelta(days=1)))
    data = notation_cose.envelope(old, IMAGE, signed_at=NOW - timedelta(days=2))
    reason = _verify(data, trusted=old).reason
    assert reason is not None and reason.startswith("authenticTimestamp validation failed: the certificate")


@pytest.mark.parametrize(
    ("crit", "problem"),
    [
        ([SCHEME, "io.example.unknown"], "crit names 'io.example.unknown', which this verifier does not understand"),
        ([SCHEME, 258], "crit names 258, which this verifier does not understand"),
        ([SCHEME, EXPIRY], f"crit names '{EXPIRY}', which the header lacks"),
        (["io.cncf.notary.expiry"], f"crit does not name {SCHEME}"),
        ("io.cncf.notary.signingScheme", "the protected header has no crit list"),
        ([SCHEME, [1]], "the protected header has no crit list"),
    ],
)
def test_critical_headers_must_be_understood_and_present(crit: object, problem: str) -> None:
    parts = notation_cose.parts(signer(), IMAGE)
    parts.protected[2] = crit
    parts.protected["io.example.unknown"] = "x"
    parts.protected[258] = -16
    assert _integrity(parts) == f"integrity validation failed: {problem}"


def test_an_expiry_not_marked_critical_fails() -> None:
    parts = notation_cose.parts(signer(), IMAGE, expiry=NOW + timedelta(days=1))
    parts.protected[2] = [SCHEME]
    assert _integrity(parts) == f"integrity validation failed: {EXPIRY} must be listed in crit"


def test_non_critical_extended_attributes_are_signed_and_ignored() -> None:
    parts = notation_cose.parts(signer(), IMAGE)
    parts.protected["io.wabbit-networks.buildId"] = "123"
    parts.protected[-70000] = {"nested": [1, 2]}
    result = _verify(parts.encode())
    assert result.verified, result.reason


@pytest.mark.parametrize(
    ("alg", "problem"),
    [
        ("ES384", "alg 'ES384' does not match the signing key, which implies ES256"),
        ("PS256", "alg 'PS256' does not match the signing key, which implies ES256"),
    ],
)
def test_an_alg_the_key_does_not_imply_fails(alg: str, problem: str) -> None:
    parts = notation_cose.parts(signer("ES256"), IMAGE)
    parts.protected[1] = notation_cose.ALGORITHMS[alg]
    assert _integrity(parts) == f"integrity validation failed: {problem}"


def test_a_key_notation_does_not_sign_with_fails() -> None:
    weak = notation_cose.make_signer("PS256", leaf_key=rsa.generate_private_key(65537, 1024))
    parts = notation_cose.parts(weak, IMAGE)
    assert (
        _integrity(parts) == "integrity validation failed: the signing certificate's key is not one Notation signs with"
    )


@pytest.mark.parametrize(("label", "shown"), [(5, "5"), (-8, "-8"), ("PS256", "'PS256'"), (None, "None")])
def test_algorithms_outside_notations_six_fail(label: object, shown: str) -> None:
    """HMAC (5), EdDSA (-8), a text alg (a name of its own to COSE, not PS256), none at all."""
    parts = notation_cose.parts(signer("PS256"), IMAGE)
    if label is None:
        del parts.protected[1]
    else:
        parts.protected[1] = label
    assert _integrity(parts) == (
        f"integrity validation failed: alg {shown} is not one of the COSE algorithms Notation signs with "
        "(-37 PS256, -38 PS384, -39 PS512, -7 ES256, -35 ES384, -36 ES512)"
    )


def test_the_content_type_must_be_notations_payload() -> None:
    parts = notation_cose.parts(signer(), IMAGE)
    parts.protected[3] = "application/json"
    assert _integrity(parts) == "integrity validation failed: unsupported payload content type 'application/json'"


def test_times_must_be_tag_1_epoch_date_times() -> None:
    parts = notation_cose.parts(signer(), IMAGE)
    parts.protected[SIGNING_TIME] = int(NOW.timestamp())
    expected = f"integrity validation failed: {SIGNING_TIME} is not a CBOR epoch date/time (tag 1)"
    assert _integrity(parts) == expected
    parts.protected[SIGNING_TIME] = cbor2.CBORTag(0, "2026-01-01T00:00:00Z")
    assert _integrity(parts) == expected


def test_the_scheme_needs_its_own_time() -> None:
    parts = notation_cose.parts(signer(), IMAGE)
    del parts.protected[SIGNING_TIME]
    assert _integrity(parts) == f"integrity validation failed: the notary.x509 scheme requires {SIGNING_TIME}"


def test_the_signing_authority_scheme_is_checked_against_a_signing_authority_store() -> None:
    data = notation_cose.envelope(signer(), IMAGE, scheme="notary.x509.signingAuthority")
    result = _verify(data, kind="signingAuthority")
    assert result.verified, result.reason
    assert result.signed_at == NOW - timedelta(minutes=1)
    assert _verify(data).reason == (
        "authenticity validation failed: the certificate chain does not lead to a certificate in the trust store "
        "(no signingAuthority: store)"
    )


def test_the_timestamp_countersignature_is_the_envelopes_bytes() -> None:
    token = b"\x30\x03\x02\x01\x01"
    envelope = Envelope.parse(notation_cose.envelope(signer(), IMAGE, timestamp=token), notation.COSE)
    assert envelope.timestamp == token
    assert Envelope.parse(notation_cose.envelope(signer(), IMAGE), notation.COSE).timestamp is None
    parts = notation_cose.parts(signer(), IMAGE)
    parts.unprotected[notation_cose.TIMESTAMP] = "not a byte string"
    assert Envelope.parse(parts.encode(), notation.COSE).timestamp == b""


def test_a_timestamp_requiring_policy_reads_the_cose_countersignature() -> None:
    document = {
        "version": "1.0",
        "trustPolicies": [
            {
                "name": "acme",
                "registryScopes": ["*"],
                "signatureVerification": {"level": "strict", "verifyTimestamp": "always"},
                "trustStores": ["ca:acme", "tsa:acme"],
                "trustedIdentities": ["*"],
            }
        ],
    }
    statement = TrustPolicy.parse(json.dumps(document)).select("registry.example/app")
    assert statement is not None
    store = TrustStore({"ca:acme": [signer().root], "tsa:acme": [signer().root]})
    unstamped = SignatureBlob(notation.COSE, notation_cose.envelope(signer(), IMAGE))
    result = notation.verify(unstamped, IMAGE, statement, store)
    assert result.reason == (
        "authenticTimestamp validation failed: "
        "the trust policy requires a timestamp countersignature and the signature has none"
    )
    stamped = SignatureBlob(notation.COSE, notation_cose.envelope(signer(), IMAGE, timestamp=b"junk"))
    result = notation.verify(stamped, IMAGE, statement, store)
    assert result.reason is not None and result.reason.startswith("authenticTimestamp validation failed")
    assert "has none" not in result.reason


def test_the_chain_may_be_protected_but_not_in_both_headers() -> None:
    parts = notation_cose.parts(signer(), IMAGE)
    parts.protected[33] = parts.unprotected.pop(33)
    assert _verify(parts.encode()).verified
    parts.unprotected[33] = parts.protected[33]
    assert _integrity(parts) == (
        "integrity validation failed: the labels ['33'] are in both the protected and unprotected headers"
    )


def test_a_missing_or_unreadable_chain_fails() -> None:
    parts = notation_cose.parts(signer(), IMAGE)
    del parts.unprotected[33]
    assert _integrity(parts) == "integrity validation failed: the envelope carries no certificate chain (x5chain)"
    parts.unprotected[33] = [b"not DER"]
    assert _integrity(parts) == "integrity validation failed: the envelope's x5chain certificates are unreadable"
    parts.unprotected[33] = ["text"]
    assert _integrity(parts) == "integrity validation failed: the envelope's x5chain certificates are unreadable"


def test_a_lone_certificate_may_stand_as_a_byte_string() -> None:
    parts = notation_cose.parts(signer(), IMAGE)
    parts.unprotected[33] = signer().chain[0].public_bytes(Encoding.DER)
    # Read as a chain of one: the leaf is no root, which authenticity says.
    assert _integrity(parts) == (
        "authenticity validation failed: the certificate chain does not end in a root certificate"
    )


def test_the_payload_must_be_an_attached_descriptor() -> None:
    parts = notation_cose.parts(signer(), IMAGE)
    parts.payload = None
    parts.signature = b"\x00" * 64
    assert _integrity(parts) == (
        "integrity validation failed: the payload is detached (nil); a Notation envelope carries it"
    )
    parts = notation_cose.parts(signer(), IMAGE)
    parts.payload = b"\xa0"
    assert _integrity(parts) == "integrity validation failed: the envelope's payload is not JSON"
    parts.payload = b'{"subject": {}}'
    assert _integrity(parts) == "integrity validation failed: the payload has no targetArtifact"


def _good() -> bytes:
    return notation_cose.envelope(signer(), IMAGE)


def _indefinite_payload() -> bytes:
    """The good envelope with its payload as an indefinite-length byte string."""
    parts = notation_cose.parts(signer(), IMAGE)
    payload = parts.payload or b""
    head = b"\xd2\x84" + cbor2.dumps(parts.protected_bytes()) + cbor2.dumps(parts.unprotected)
    chunks = b"\x5f" + cbor2.dumps(payload[:5]) + cbor2.dumps(payload[5:]) + b"\xff"
    return head + chunks + cbor2.dumps(parts.signer.sign(parts.to_be_signed()))


def _duplicate_protected_label() -> bytes:
    parts = notation_cose.parts(signer(), IMAGE)
    protected = parts.protected_bytes()
    # The map's count one more, and its first pair (1: alg) once again at the end.
    doubled = bytes([protected[0] + 1]) + protected[1:] + cbor2.dumps(1) + cbor2.dumps(-7)
    body = [doubled, parts.unprotected, parts.payload, b"\x00" * 64]
    return cbor2.dumps(cbor2.CBORTag(18, body))


def _sign1(*members: object, tag: int = 18) -> bytes:
    return cbor2.dumps(cbor2.CBORTag(tag, list(members)))


NOT_CBOR = "the envelope is not well-formed CBOR: "
MALFORMED = {
    "empty": (b"", NOT_CBOR),
    "truncated": (_good()[:-10], NOT_CBOR),
    "trailing-byte": (_good() + b"\x00", "the envelope has bytes after its CBOR data item"),
    "a-break-alone": (b"\xff\xfe", NOT_CBOR),
    "json": (b'{"protected": "e30"}', NOT_CBOR),
    "untagged": (cbor2.dumps([b"", {}, b"", b""]), "the envelope is not a COSE_Sign1_Tagged message (CBOR tag 18)"),
    "cose-sign-tag": (_sign1(tag=98), "the envelope is not a COSE_Sign1_Tagged message (CBOR tag 18)"),
    "three-members": (_sign1(b"", {}, b""), "the COSE_Sign1 message is not an array of its four members"),
    "protected-a-map": (_sign1({}, {}, b"", b""), "the protected header is not a byte string"),
    "protected-an-array": (_sign1(b"\x80", {}, b"", b""), "the protected header is not a CBOR map"),
    "protected-truncated": (_sign1(b"\xa1\x01", {}, b"", b""), "the protected header is not well-formed CBOR"),
    "protected-trailing": (_sign1(b"\xa0\x00", {}, b"", b""), "the protected header has bytes after"),
    "unprotected-an-array": (_sign1(b"", [], b"", b""), "the unprotected header is not a CBOR map"),
    "float-label": (_sign1(b"", {1.5: 1}, b"", b""), "the unprotected header has a label 1.5"),
    "bool-label": (_sign1(b"", {True: 1}, b"", b""), "the unprotected header has a label True"),
    "payload-text": (_sign1(b"", {}, "text", b""), "the payload is not a byte string"),
    "signature-nil": (_sign1(b"", {}, b"", None), "the signature is not a byte string"),
    "indefinite-length": (_indefinite_payload(), f"{NOT_CBOR}error decoding byte string: encountered indefinite"),
    "duplicate-label": (
        _duplicate_protected_label(),
        "the protected header is not well-formed CBOR: error decoding map",
    ),
    "too-deep": (b"\xd2" + b"\x81" * 40 + b"\x00", f"{NOT_CBOR}maximum container nesting depth (16) exceeded"),
}


@pytest.mark.parametrize(("data", "problem"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_envelopes_fail_integrity_saying_why(data: bytes, problem: str) -> None:
    reason = _verify(data).reason
    assert reason is not None and reason.startswith(f"integrity validation failed: {problem}"), reason


def test_an_oversized_envelope_is_refused_before_it_is_decoded() -> None:
    data = b"\xd2" + b"\x00" * notation.MAX_ENVELOPE
    assert _verify(data).reason == (
        f"integrity validation failed: the envelope is {len(data)} bytes, "
        f"more than the {notation.MAX_ENVELOPE} one may be"
    )


def test_tags_inside_stay_tags() -> None:
    """cbor2 would make sets, shared references and regular expressions of these."""
    parts = notation_cose.parts(signer(), IMAGE)
    parts.protected["io.example.set"] = cbor2.CBORTag(258, [1, 2])
    parts.protected["io.example.shared"] = cbor2.CBORTag(28, [cbor2.CBORTag(29, 0)])
    parts.protected["io.example.regexp"] = cbor2.CBORTag(35, "(a+)+$")
    message = cose.decode(parts.encode())
    assert message.protected["io.example.set"] == cbor2.CBORTag(258, [1, 2])
    assert message.protected["io.example.shared"] == cbor2.CBORTag(28, [cbor2.CBORTag(29, 0)])
    assert message.protected["io.example.regexp"] == cbor2.CBORTag(35, "(a+)+$")
    assert _verify(parts.encode()).verified


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (cbor2.CBORTag(1, 1667411812), datetime(2022, 11, 2, 17, 56, 52, tzinfo=UTC)),
        (cbor2.CBORTag(1, 1667411812.5), datetime(2022, 11, 2, 17, 56, 52, 500000, tzinfo=UTC)),
        (cbor2.CBORTag(1, -1), datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (cbor2.CBORTag(1, 10**30), None),
        (cbor2.CBORTag(1, float("nan")), None),
        (cbor2.CBORTag(1, True), None),
        (cbor2.CBORTag(1, "1667411812"), None),
        (cbor2.CBORTag(0, "2022-11-02T17:56:52Z"), None),
        (1667411812, None),
    ],
)
def test_epoch_times(value: object, expected: datetime | None) -> None:
    assert cose.epoch_time(value) == expected


# -- the specification's example -----------------------------------------------------------
#
# signature-envelope-cose.md's "Signature Envelope" example, its protected header encoded
# here byte by byte from the diagnostic notation (RFC 8949), not with cbor2:
#
#   / protected / << {
#     / alg / 1: / PS384 / -38,
#     / crit / 2: ['io.cncf.notary.signingScheme', 'io.cncf.notary.authenticSigningTime',
#                  'io.cncf.notary.expiry'],
#     / cty / 3: 'application/vnd.cncf.notary.payload.v1+json',
#     'io.cncf.notary.signingScheme': 'notary.x509.signingAuthority',
#     'io.cncf.notary.authenticSigningTime': 1(1667411812),
#     'io.cncf.notary.expiry': 1(1667415412)
#   } >>,
#   / unprotected / { / x5chain / 33: [<< leaf >>, << intermediate >>, << root >>],
#     'io.cncf.notary.timestampSignature': << TimeStampToken >>,
#     'io.cncf.notary.signingAgent': 'notation/1.0.0' },
#   / payload / << descriptor >>,
#   / signature / << sign( << Sig_structure >> ) >>


def _head(major: int, length: int) -> bytes:
    if length < 24:
        return bytes([major << 5 | length])
    if length < 0x100:
        return bytes([major << 5 | 24, length])
    if length < 0x10000:
        return bytes([major << 5 | 25]) + length.to_bytes(2, "big")
    return bytes([major << 5 | 26]) + length.to_bytes(4, "big")


def _text(value: str) -> bytes:
    return _head(3, len(value)) + value.encode()


def _bytes(value: bytes) -> bytes:
    return _head(2, len(value)) + value


SPEC_PROTECTED = b"".join(
    [
        _head(5, 6),  # a map of six pairs
        b"\x01" + b"\x38\x25",  # 1: -38 (a negative integer, -1 - 37)
        b"\x02" + _head(4, 3) + _text(SCHEME) + _text(AUTHENTIC_TIME) + _text(EXPIRY),
        b"\x03" + _text(notation_cose.PAYLOAD_TYPE),
        _text(SCHEME) + _text("notary.x509.signingAuthority"),
        _text(AUTHENTIC_TIME) + b"\xc1\x1a" + (1667411812).to_bytes(4, "big"),  # tag 1, a 32-bit integer
        _text(EXPIRY) + b"\xc1\x1a" + (1667415412).to_bytes(4, "big"),
    ]
)
SPEC_SIGNED_AT = datetime(2022, 11, 2, 17, 56, 52, tzinfo=UTC)
SPEC_EXPIRY = datetime(2022, 11, 2, 18, 56, 52, tzinfo=UTC)


def _spec_example() -> tuple[notation_cose.Signer, bytes, bytes]:
    example = notation_cose.make_signer(
        "PS384", intermediate=True, valid=(datetime(2022, 1, 1, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC))
    )
    payload = notation_cose.descriptor(IMAGE, size=16724)
    # Sig_structure = ['Signature1', << protected >>, h'', << payload >>]
    to_be_signed = _head(4, 4) + _text("Signature1") + _bytes(SPEC_PROTECTED) + _bytes(b"") + _bytes(payload)
    unprotected = {
        33: [c.public_bytes(Encoding.DER) for c in example.chain],
        notation_cose.TIMESTAMP: b"<< TimeStampToken >>",
        notation_cose.AGENT: "notation/1.0.0",
    }
    envelope = (
        b"\xd2"  # tag 18
        + _head(4, 4)
        + _bytes(SPEC_PROTECTED)
        + cbor2.dumps(unprotected)
        + _bytes(payload)
        + _bytes(example.sign(to_be_signed))
    )
    return example, envelope, to_be_signed


def test_the_specifications_example_decodes_as_its_diagnostic_notation_says() -> None:
    example, data, to_be_signed = _spec_example()
    message = cose.decode(data)
    assert message.protected == {
        1: -38,
        2: [SCHEME, AUTHENTIC_TIME, EXPIRY],
        3: "application/vnd.cncf.notary.payload.v1+json",
        SCHEME: "notary.x509.signingAuthority",
        AUTHENTIC_TIME: epoch(SPEC_SIGNED_AT),
        EXPIRY: epoch(SPEC_EXPIRY),
    }
    assert message.unprotected[33] == tuple(c.public_bytes(Encoding.DER) for c in example.chain)
    assert message.unprotected[notation_cose.AGENT] == "notation/1.0.0"
    assert message.to_be_signed == to_be_signed
    assert message.to_be_signed == cose.sig_structure(SPEC_PROTECTED, message.payload)

    envelope = Envelope.parse(data, notation.COSE)
    assert envelope.alg == "PS384" and envelope.scheme == "notary.x509.signingAuthority"
    assert envelope.signing_time == SPEC_SIGNED_AT and envelope.time(EXPIRY) == SPEC_EXPIRY
    assert envelope.timestamp == b"<< TimeStampToken >>"
    assert envelope.chain == example.chain
    assert envelope.target == {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": IMAGE,
        "size": 16724,
    }


def test_the_specifications_example_verifies_until_its_expiry() -> None:
    example, data, _ = _spec_example()
    during = _verify(data, trusted=example, kind="signingAuthority", now=SPEC_SIGNED_AT + timedelta(minutes=5))
    assert during.verified, during.reason
    assert during.signed_at == SPEC_SIGNED_AT
    after = _verify(data, trusted=example, kind="signingAuthority", now=SPEC_EXPIRY)
    assert after.reason == "expiry validation failed: the signature expired at 2022-11-02T18:56:52Z"


def test_the_builder_writes_what_the_specification_example_holds() -> None:
    """The envelopes the other tests use are laid out like the example (cbor2's encoding)."""
    parts = notation_cose.parts(
        notation_cose.make_signer("PS384"),
        IMAGE,
        scheme="notary.x509.signingAuthority",
        signed_at=SPEC_SIGNED_AT,
        expiry=SPEC_EXPIRY,
    )
    assert parts.protected_bytes() == SPEC_PROTECTED
