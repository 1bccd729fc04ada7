"""Notary Project (Notation) signatures: JWS and COSE envelopes checked under a trust policy.

A signature is a referrer of the image (`artifactType` `application/vnd.cncf.notary.
signature`, or the older config media type of that name) whose first layer is the
envelope: `application/jose+json` (JWS, flattened JSON) or `application/cose`
(COSE_Sign1, `portside.trust.cose`). Each is read into one `Envelope` (what the signature
covers, the algorithm, the critical list, the signed attributes with their times, the
certificate chain, the target); from there on both go through the same validations.
COSE envelopes are proven against the Notary Project's specification (signature-envelope-
cose.md), with envelopes built as it describes, not against a real tool's output; the JWS
ones also against the Notary Project's own signatures.

The validations, in the spec's order, each enforced, logged or skipped as the
statement's level says (`portside.trust.trustpolicy`):

- integrity: the envelope parses (at most MAX_ENVELOPE bytes; COSE strictly, see
  `portside.trust.cose`; its times epoch date/times, tag 1, JWS's RFC 3339 text); the
  protected header has `cty` (COSE's content type)
  `application/vnd.cncf.notary.payload.v1+json`, an `alg` the signing key implies
  (RSA 2048/3072/4096 → PS256/384/512, P-256/384/521 → ES256/384/512), `crit` naming
  `io.cncf.notary.signingScheme` and every critical header present, each one this
  verifier understands; the signature (ECDSA as R ‖ S in both) over `protected.payload`
  (JWS) or the Sig_structure (COSE) verifies with the first certificate of `x5c`
  (`x5chain`); the payload's `targetArtifact` is this image.
- authenticity: the chain is ordered, ends in a self-signed root, meets the
  spec's certificate requirements (CA basic constraints and keyCertSign up the chain;
  digitalSignature and no CA on the leaf; no forbidden EKU; no SHA-1; RSA ≥ 2048, EC ≥
  256) and was valid at the signing time; a certificate of it is in one of the
  statement's `ca:` (or, for `notary.x509.signingAuthority`, `signingAuthority:`)
  stores; the leaf's subject matches a trusted identity.
- expiry: `io.cncf.notary.expiry`, if set, is still ahead.
- authenticTimestamp: for `notary.x509`, the chain is valid now, unless the statement
  asks for timestamp verification (a `tsa:` store, and `verifyTimestamp` `always` or
  `afterCertExpiry` with an expired chain). Then the RFC 3161 countersignature
  (`io.cncf.notary.timestampSignature`) must be there and verify over the signature's
  bytes (`portside.trust.timestamps`), from a TSA whose path ends in a root and reaches
  a certificate of the statement's `tsa:` stores, and the chain must have been valid
  over the whole of the timestamp's range (genTime ± accuracy). The TSA certificates'
  revocation is not checked offline: one naming OCSP or CRL locations adds a warning.
  For `notary.x509.signingAuthority`, the chain was valid at the authentic signing time.
- revocation: not checked offline. A certificate without OCSP or CRL locations counts
  as not revoked, as the spec says; one that names them has an undeterminable status,
  which is a failure the level enforces or logs.

An artifact is verified when any one of its signatures verifies (`verify_artifact`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from portside.trust import cose, timestamps
from portside.trust.chains import describe, extended_key_usages, extension, issued_by, subject_of, valid_at
from portside.trust.results import Verification
from portside.trust.times import parse_time
from portside.trust.trustpolicy import PolicyStatement, TrustPolicy

__all__ = [
    "ARTIFACT_TYPE",
    "JWS",
    "COSE",
    "MAX_ENVELOPE",
    "PAYLOAD_TYPE",
    "TrustStore",
    "Envelope",
    "SignatureBlob",
    "load_certificates",
    "signature_blob",
    "verify",
    "verify_artifact",
]

ARTIFACT_TYPE = "application/vnd.cncf.notary.signature"
JWS = "application/jose+json"
COSE = "application/cose"
PAYLOAD_TYPE = "application/vnd.cncf.notary.payload.v1+json"
# Envelopes are a few kilobytes (a chain of certificates, perhaps a timestamp token); what
# is far larger is refused before it is decoded.
MAX_ENVELOPE = 256 * 1024
X509 = "notary.x509"
SIGNING_AUTHORITY = "notary.x509.signingAuthority"

_SCHEME = "io.cncf.notary.signingScheme"
_SIGNING_TIME = "io.cncf.notary.signingTime"
_AUTHENTIC_TIME = "io.cncf.notary.authenticSigningTime"
_EXPIRY = "io.cncf.notary.expiry"
_TIMESTAMP = "io.cncf.notary.timestampSignature"
_CRITICAL = {
    _SCHEME,
    _AUTHENTIC_TIME,
    _EXPIRY,
    "io.cncf.notary.verificationPlugin",
    "io.cncf.notary.verificationPluginMinVersion",
}
_MUST_BE_CRITICAL = _CRITICAL
_HASHES: Mapping[str, type[hashes.HashAlgorithm]] = {
    "256": hashes.SHA256,
    "384": hashes.SHA384,
    "512": hashes.SHA512,
}
_RSA_ALG = {2048: "PS256", 3072: "PS384", 4096: "PS512"}
_COSE_ALGS = ", ".join(f"{label} {name}" for label, name in cose.ALGORITHMS.items())
_EC_ALG = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_FORBIDDEN_EKU = {
    x509.ObjectIdentifier("2.5.29.37.0"),  # anyExtendedKeyUsage
    x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
    x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
    x509.oid.ExtendedKeyUsageOID.EMAIL_PROTECTION,
    x509.oid.ExtendedKeyUsageOID.TIME_STAMPING,
}


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in PEM (one or more) or DER data, as a trust store file holds them."""
    if b"-----BEGIN CERTIFICATE-----" in data:
        return x509.load_pem_x509_certificates(data)
    return [x509.load_der_x509_certificate(data)]


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Named stores of certificates, keyed `ca:<name>`, `signingAuthority:<name>`, `tsa:<name>`."""

    stores: Mapping[str, Sequence[x509.Certificate]] = field(default_factory=dict)

    def certificates(self, kind: str, names: Sequence[str]) -> list[x509.Certificate]:
        found: list[x509.Certificate] = []
        for name in names:
            found += self.stores.get(f"{kind}:{name}", ())
        return found


@dataclass(frozen=True, slots=True)
class SignatureBlob:
    """A signature envelope as its referrer stores it: the layer's media type and bytes."""

    media_type: str
    data: bytes


def signature_blob(
    manifest: Mapping[str, Any], blob: Callable[[str], bytes | None], image_digest: str
) -> SignatureBlob | str:
    """The envelope of a Notation signature manifest about this image, or why there is none."""
    config = manifest.get("config")
    config_type = config.get("mediaType") if isinstance(config, Mapping) else None
    if ARTIFACT_TYPE not in (manifest.get("artifactType"), config_type):
        return "not a Notation signature manifest"
    subject = manifest.get("subject")
    about = subject.get("digest") if isinstance(subject, Mapping) else None
    if about != image_digest:
        return f"the signature manifest is about {about or 'no subject'}, not this image {image_digest}"
    layers = manifest.get("layers") or []
    if not layers or not isinstance(layers[0], Mapping):
        return "the signature manifest has no envelope layer"
    data = blob(str(layers[0].get("digest", "")))
    if data is None:
        return f"the envelope blob {layers[0].get('digest')} is missing"
    return SignatureBlob(str(layers[0].get("mediaType", "")), data)


def _b64url(text: object) -> bytes:
    if not isinstance(text, str):
        raise ValueError("a JWS member is not a string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class Envelope:
    """A signature envelope, JWS or COSE, read into the one shape every validation shares.

    `signed` is what the signature covers: JWS's `protected.payload`, COSE's Sig_structure.
    `alg` is the algorithm's JWS name (COSE's label read as one; any other label is refused);
    `critical` and `content_type` are the header's `crit` and `cty` (COSE labels 2 and 3) as
    they are; `header` holds the other protected attributes by name, its three times read
    as datetimes; `timestamp` is the RFC 3161 countersignature's bytes (b"" when present
    but unreadable)."""

    alg: object
    critical: object
    content_type: object
    header: Mapping[object, Any]
    signed: bytes
    signature: bytes
    chain: tuple[x509.Certificate, ...]
    target: Mapping[str, Any]
    timestamp: bytes | None

    @classmethod
    def parse(cls, data: bytes, media_type: str = JWS) -> Envelope:
        """An envelope of the media type, or ValueError saying what is wrong with it."""
        if len(data) > MAX_ENVELOPE:
            raise ValueError(f"the envelope is {len(data)} bytes, more than the {MAX_ENVELOPE} one may be")
        if media_type == JWS:
            return cls._jws(data)
        if media_type == COSE:
            return cls._cose(data)
        raise ValueError(f"unsupported signature envelope type {media_type!r}")

    @classmethod
    def _jws(cls, data: bytes) -> Envelope:
        try:
            document = json.loads(data)
        except (UnicodeDecodeError, ValueError) as error:
            raise ValueError("the envelope is not JSON") from error
        if not isinstance(document, Mapping) or not {"protected", "payload", "signature"} <= document.keys():
            raise ValueError("the envelope is not a flattened JWS")
        try:
            header = json.loads(_b64url(document["protected"]))
            payload = _b64url(document["payload"])
            signature = _b64url(document["signature"])
        except (ValueError, binascii.Error) as error:
            raise ValueError("the envelope's protected header, payload or signature is malformed") from error
        unprotected = document.get("header") or {}
        if not isinstance(header, Mapping) or not isinstance(unprotected, Mapping):
            raise ValueError("the envelope's headers are not objects")
        try:
            chain = tuple(x509.load_der_x509_certificate(base64.b64decode(c)) for c in unprotected.get("x5c") or [])
        except (ValueError, TypeError, binascii.Error) as error:
            raise ValueError("the envelope's x5c certificates are unreadable") from error
        if not chain:
            raise ValueError("the envelope carries no certificate chain (x5c)")
        stamp = unprotected.get(_TIMESTAMP)
        try:
            timestamp = base64.b64decode(stamp) if isinstance(stamp, str) else None
        except (ValueError, binascii.Error):
            timestamp = b""
        return cls(
            alg=header.get("alg"),
            critical=header.get("crit"),
            content_type=header.get("cty"),
            header=_with_times(
                {k: v for k, v in header.items() if k not in ("alg", "crit", "cty")}, _rfc3339, "an RFC 3339 time"
            ),
            signed=f"{document['protected']}.{document['payload']}".encode(),
            signature=signature,
            chain=chain,
            target=_target(payload),
            timestamp=timestamp,
        )

    @classmethod
    def _cose(cls, data: bytes) -> Envelope:
        message = cose.decode(data)
        protected, unprotected = message.protected, message.unprotected
        certificates = protected.get(cose.X5CHAIN, unprotected.get(cose.X5CHAIN))
        # One certificate may stand alone rather than in an array (RFC 9360, section 2).
        if isinstance(certificates, bytes):
            certificates = [certificates]
        if not isinstance(certificates, list | tuple) or not certificates:
            raise ValueError("the envelope carries no certificate chain (x5chain)")
        try:
            chain = tuple(x509.load_der_x509_certificate(c) for c in certificates)
        except (ValueError, TypeError) as error:
            raise ValueError("the envelope's x5chain certificates are unreadable") from error
        # Only an integer label names one of the algorithms: a text `alg` "PS256" is not PS256.
        alg = protected.get(cose.ALG)
        name = cose.ALGORITHMS.get(alg) if isinstance(alg, int) and not isinstance(alg, bool) else None
        if name is None:
            raise ValueError(f"alg {alg!r} is not one of the COSE algorithms Notation signs with ({_COSE_ALGS})")
        stamp = unprotected.get(_TIMESTAMP)
        return cls(
            alg=name,
            critical=protected.get(cose.CRIT),
            content_type=protected.get(cose.CONTENT_TYPE),
            header=_with_times(
                {k: v for k, v in protected.items() if k not in (cose.ALG, cose.CRIT, cose.CONTENT_TYPE)},
                cose.epoch_time,
                "a CBOR epoch date/time (tag 1)",
            ),
            signed=message.to_be_signed,
            signature=message.signature,
            chain=chain,
            target=_target(message.payload),
            timestamp=stamp if isinstance(stamp, bytes) or stamp is None else b"",
        )

    @property
    def scheme(self) -> str:
        return str(self.header.get(_SCHEME, ""))

    def time(self, name: str) -> datetime | None:
        value = self.header.get(name)
        return value if isinstance(value, datetime) else None

    @property
    def signing_time(self) -> datetime | None:
        return self.time(_AUTHENTIC_TIME) if self.scheme == SIGNING_AUTHORITY else self.time(_SIGNING_TIME)


def _rfc3339(value: object) -> datetime | None:
    try:
        return parse_time(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _with_times(
    header: dict[object, Any], read: Callable[[object], datetime | None], form: str
) -> Mapping[object, Any]:
    """The header with its times read, each in its envelope's form; ValueError if one is not."""
    for name in (_SIGNING_TIME, _AUTHENTIC_TIME, _EXPIRY):
        if name in header:
            at = read(header[name])
            if at is None:
                raise ValueError(f"{name} is not {form}")
            header[name] = at
    return header


def _target(payload: bytes) -> Mapping[str, Any]:
    try:
        document = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError("the envelope's payload is not JSON") from error
    target = document.get("targetArtifact") if isinstance(document, Mapping) else None
    if not isinstance(target, Mapping):
        raise ValueError("the payload has no targetArtifact")
    return target


class _Outcome:
    """The validations run so far: the first enforced failure ends it, logged ones pile up."""

    def __init__(self, statement: PolicyStatement) -> None:
        self.statement = statement
        self.warnings: list[str] = []

    def runs(self, validation: str) -> bool:
        return self.statement.action(validation) != "skip"

    def failure(self, validation: str, problem: str | None) -> str | None:
        """The reason to fail for, if this validation failed and the level enforces it."""
        if problem is None:
            return None
        reason = f"{validation} validation failed: {problem}"
        if self.statement.action(validation) == "enforce":
            return reason
        self.warnings.append(reason)
        return None


def verify(
    signature: SignatureBlob,
    image_digest: str,
    statement: PolicyStatement,
    store: TrustStore,
    *,
    now: datetime | None = None,
) -> Verification:
    """One signature envelope for the image, under one trust policy statement."""
    if statement.skips:
        return Verification.passed("notation", None, warnings=(_skipped(statement),))
    moment = now or datetime.now(UTC)
    outcome = _Outcome(statement)

    def failed(reason: str, signer: str | None = None, at: datetime | None = None) -> Verification:
        return Verification.failed("notation", reason, signer, at, tuple(outcome.warnings))

    envelope_or_problem = _integrity(signature, image_digest)
    if isinstance(envelope_or_problem, str):
        return failed(f"integrity validation failed: {envelope_or_problem}")
    envelope = envelope_or_problem
    leaf = envelope.chain[0]
    signer = describe(subject_of(leaf))
    signed_at = envelope.signing_time

    checks: list[tuple[str, Callable[[], str | None]]] = [
        ("authenticity", lambda: _authenticity(envelope, statement, store)),
        ("expiry", lambda: _expiry(envelope, moment)),
        ("authenticTimestamp", lambda: _authentic_timestamp(envelope, statement, store, moment, outcome.warnings)),
        ("revocation", lambda: _revocation(envelope.chain)),
    ]
    for validation, check in checks:
        if not outcome.runs(validation):
            continue
        reason = outcome.failure(validation, check())
        if reason is not None:
            return failed(reason, signer, signed_at)
    return Verification.passed("notation", signer, signed_at, tuple(outcome.warnings))


def verify_artifact(
    signatures: Sequence[SignatureBlob],
    image_digest: str,
    repository: str,
    policy: TrustPolicy,
    store: TrustStore,
    *,
    now: datetime | None = None,
) -> tuple[Verification, list[Verification]]:
    """The verdict for an image at `registry/namespace/repository`, and each signature's:
    verified when one signature verifies under the statement that governs it."""
    statement = policy.select(repository)
    if statement is None:
        return Verification.failed("notation", f"no trust policy statement applies to {repository}"), []
    if statement.skips:
        return Verification.passed("notation", None, warnings=(_skipped(statement),)), []
    if not signatures:
        return Verification.failed("notation", f"{image_digest} has no associated signature"), []
    results = [verify(signature, image_digest, statement, store, now=now) for signature in signatures]
    for result in results:
        if result.verified:
            return result, results
    reasons = "; ".join(dict.fromkeys(r.reason or "" for r in results))
    count = "the signature does" if len(results) == 1 else f"none of its {len(results)} signatures does"
    signer = results[0].signer if len(results) == 1 else None
    return Verification.failed("notation", f"{count} not verify: {reasons}", signer), results


def _skipped(statement: PolicyStatement) -> str:
    return f"signature verification is configured to skip (trust policy statement {statement.name!r})"


# -- integrity --------------------------------------------------------------------------


def _integrity(signature: SignatureBlob, image_digest: str) -> Envelope | str:
    try:
        envelope = Envelope.parse(signature.data, signature.media_type)
    except ValueError as error:
        return str(error)
    if envelope.content_type != PAYLOAD_TYPE:
        return f"unsupported payload content type {envelope.content_type!r}"
    problem = _critical(envelope)
    if problem is not None:
        return problem
    key = envelope.chain[0].public_key()
    expected = _alg_for(key)
    if expected is None:
        return "the signing certificate's key is not one Notation signs with"
    if envelope.alg != expected:
        return f"alg {envelope.alg!r} does not match the signing key, which implies {expected}"
    if not _verifies(key, expected, envelope.signature, envelope.signed):
        return "the signature does not verify: the envelope was altered or is corrupt"
    named = envelope.target.get("digest")
    if named != image_digest:
        return f"the signature is for {named}, not this image {image_digest}"
    return envelope


def _critical(envelope: Envelope) -> str | None:
    crit, header = envelope.critical, envelope.header
    # JWS names headers by text; COSE by text or integer label.
    if not isinstance(crit, list | tuple) or not all(isinstance(c, str | int) for c in crit):
        return "the protected header has no crit list"
    if _SCHEME not in crit:
        return f"crit does not name {_SCHEME}"
    for name in crit:
        if name not in _CRITICAL:
            return f"crit names {name!r}, which this verifier does not understand"
        if name not in header:
            return f"crit names {name!r}, which the header lacks"
    for name in header:
        # Other headers are covered by the signature and, not being critical, ignored.
        if name in _MUST_BE_CRITICAL and name not in crit:
            return f"{name} must be listed in crit"
    scheme = header.get(_SCHEME)
    if scheme not in (X509, SIGNING_AUTHORITY):
        return f"signing scheme {scheme!r} is not {X509} or {SIGNING_AUTHORITY}"
    required = _SIGNING_TIME if scheme == X509 else _AUTHENTIC_TIME
    if required not in header:
        return f"the {scheme} scheme requires {required}"
    return None


def _alg_for(key: object) -> str | None:
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALG.get(key.key_size)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return _EC_ALG.get(key.curve.name)
    return None


def _verifies(key: object, alg: str, signature: bytes, message: bytes) -> bool:
    algorithm = _HASHES[alg[2:]]()
    try:
        if isinstance(key, rsa.RSAPublicKey):
            scheme = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=algorithm.digest_size)
            key.verify(signature, message, scheme, algorithm)
            return True
        if isinstance(key, ec.EllipticCurvePublicKey):
            # JWS writes ECDSA as R ‖ S, each as long as the curve's order.
            size = (key.curve.key_size + 7) // 8
            if len(signature) != 2 * size:
                return False
            r, s = int.from_bytes(signature[:size], "big"), int.from_bytes(signature[size:], "big")
            key.verify(encode_dss_signature(r, s), message, ec.ECDSA(algorithm))
            return True
    except (InvalidSignature, ValueError):
        return False
    return False


# -- authenticity -----------------------------------------------------------------------


def _authenticity(envelope: Envelope, statement: PolicyStatement, store: TrustStore) -> str | None:
    chain = envelope.chain
    problem = _chain_requirements(chain)
    if problem is not None:
        return problem
    at = envelope.signing_time
    if at is not None:
        for certificate in chain:
            if not valid_at(certificate, at):
                name = describe(subject_of(certificate))
                return f"the certificate {name} was not valid at signing time ({at:%Y-%m-%dT%H:%M:%SZ})"
    kind = "signingAuthority" if envelope.scheme == SIGNING_AUTHORITY else "ca"
    names = statement.stores(kind)
    trusted = {c.public_bytes(Encoding.DER) for c in store.certificates(kind, names)}
    if not any(c.public_bytes(Encoding.DER) in trusted for c in chain):
        stores = ", ".join(f"{kind}:{name}" for name in names) or f"no {kind}: store"
        return f"the certificate chain does not lead to a certificate in the trust store ({stores})"
    if not statement.trusts(chain[0]):
        return f"the signing certificate's subject {describe(subject_of(chain[0]))} is not a trusted identity"
    return None


def _chain_requirements(chain: Sequence[x509.Certificate]) -> str | None:
    for certificate in chain:
        algorithm = certificate.signature_hash_algorithm
        if isinstance(algorithm, hashes.SHA1):
            return f"the certificate {describe(subject_of(certificate))} is signed with SHA-1"
    for index in range(len(chain) - 1):
        if not issued_by(chain[index], chain[index + 1]):
            return (
                f"the certificate chain is not in order: {describe(subject_of(chain[index]))} "
                f"is not issued by {describe(subject_of(chain[index + 1]))}"
            )
    root = chain[-1]
    if not issued_by(root, root):
        return "the certificate chain does not end in a root certificate"
    problem = _leaf_requirements(chain[0])
    if problem is not None:
        return problem
    for depth, certificate in enumerate(chain[1:]):
        problem = _ca_requirements(certificate, depth)
        if problem is not None:
            return problem
    return None


def _leaf_requirements(certificate: x509.Certificate) -> str | None:
    name = describe(subject_of(certificate))
    constraints = extension(certificate, x509.BasicConstraints)
    if constraints is not None and constraints.value.ca:
        return f"the signing certificate {name} is a CA certificate"
    usage = extension(certificate, x509.KeyUsage)
    if usage is None or not usage.critical:
        return f"the signing certificate {name} lacks a critical key usage extension"
    bits = usage.value
    if not bits.digital_signature:
        return f"the signing certificate {name} is not for digital signatures"
    others = [bits.key_encipherment, bits.data_encipherment, bits.key_agreement, bits.key_cert_sign, bits.crl_sign]
    if any(others) or (bits.key_agreement and (bits.encipher_only or bits.decipher_only)):
        return f"the signing certificate {name} has key usages a code-signing certificate must not have"
    purposes = extended_key_usages(certificate)
    if purposes is not None and purposes & _FORBIDDEN_EKU:
        return f"the signing certificate {name} has an extended key usage other than code signing"
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        return f"the signing certificate {name} has an RSA key under 2048 bits"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 256:
        return f"the signing certificate {name} has an EC key under 256 bits"
    return None


def _ca_requirements(certificate: x509.Certificate, below: int) -> str | None:
    """`below`: how many CA certificates sit between this one and the leaf."""
    name = describe(subject_of(certificate))
    constraints = extension(certificate, x509.BasicConstraints)
    if constraints is None or not constraints.critical or not constraints.value.ca:
        return f"the CA certificate {name} lacks critical basic constraints with CA set"
    limit = constraints.value.path_length
    if limit is not None and limit < below:
        return f"the CA certificate {name} allows {limit} CAs below it, the chain has {below}"
    usage = extension(certificate, x509.KeyUsage)
    if usage is None or not usage.critical or not usage.value.key_cert_sign:
        return f"the CA certificate {name} lacks a critical keyCertSign key usage"
    return None


# -- expiry, authentic timestamp, revocation ---------------------------------------------


def _expiry(envelope: Envelope, moment: datetime) -> str | None:
    expiry = envelope.time(_EXPIRY)
    if expiry is not None and moment >= expiry:
        return f"the signature expired at {expiry:%Y-%m-%dT%H:%M:%SZ}"
    return None


def _authentic_timestamp(
    envelope: Envelope, statement: PolicyStatement, store: TrustStore, moment: datetime, warnings: list[str]
) -> str | None:
    chain = envelope.chain
    if envelope.scheme == SIGNING_AUTHORITY:
        at = envelope.time(_AUTHENTIC_TIME)
        if at is None or not all(valid_at(c, at) for c in chain):
            return "the certificate chain was not valid at the authentic signing time"
        return None
    expired = any(not valid_at(c, moment) for c in chain)
    wants_timestamp = bool(statement.stores("tsa")) and (statement.verify_timestamp == "always" or expired)
    if wants_timestamp:
        return _timestamped(envelope, statement, store, warnings)
    for certificate in chain:
        if not valid_at(certificate, moment):
            return (
                f"the certificate {describe(subject_of(certificate))} is not valid now "
                f"(valid {certificate.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}) and no timestamp vouches for the signing time"
            )
    return None


def _timestamped(envelope: Envelope, statement: PolicyStatement, store: TrustStore, warnings: list[str]) -> str | None:
    """The countersignature proves the signature existed by its time; the chain must
    have been valid over all of the time it may stand for."""
    if envelope.timestamp is None:
        return "the trust policy requires a timestamp countersignature and the signature has none"
    names = statement.stores("tsa")
    stamp = timestamps.verify(envelope.timestamp, envelope.signature, store.certificates("tsa", names), ess_v2=True)
    if isinstance(stamp, str):
        stores = ", ".join(f"tsa:{name}" for name in names)
        return f"the timestamp countersignature is not valid ({stores}): {stamp}"
    root = stamp.chain[-1]
    if not issued_by(root, root):
        # The Notary Project's certificate requirements hold for the TSA's chain too.
        return f"the timestamp's certificate chain ends in {describe(subject_of(root))}, which is not a root"
    for certificate in envelope.chain:
        if not (certificate.not_valid_before_utc <= stamp.earliest and stamp.latest <= certificate.not_valid_after_utc):
            return (
                f"the certificate {describe(subject_of(certificate))} was not valid at the timestamp's time "
                f"({stamp.time:%Y-%m-%dT%H:%M:%SZ} by {stamp.authority}; the certificate is valid "
                f"{certificate.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
                f"{certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ})"
            )
    problem = _revocation(stamp.chain)
    if problem is not None:
        warnings.append(f"authenticTimestamp: {problem} (a time-stamping certificate)")
    return None


def _revocation(chain: Sequence[x509.Certificate]) -> str | None:
    for certificate in chain:
        points = extension(certificate, x509.CRLDistributionPoints)
        access = extension(certificate, x509.AuthorityInformationAccess)
        ocsp = access is not None and any(
            d.access_method == x509.oid.AuthorityInformationAccessOID.OCSP for d in access.value
        )
        if points is not None or ocsp:
            return (
                f"the revocation status of {describe(subject_of(certificate))} cannot be determined: "
                "it names OCSP or CRL locations, and revocation is not checked offline"
            )
    return None
