"""RFC 3161 timestamps: a time-stamping authority's signed word that some bytes existed
by a time (`genTime`). Notation countersigns a signature with one (`io.cncf.notary.
timestampSignature`, a bare TimeStampToken); a sigstore bundle carries them in
`timestampVerificationData` (whole TimeStampResps). Either is read by `verify`.

A token counts when:

- it is CMS SignedData of an `id-ct-TSTInfo`, with exactly one signer, DER throughout;
- its message imprint is the hash (SHA-256/384/512, as it names) of the bytes it was
  asked to vouch for, which the caller hands in: the signature, in both formats;
- the signer's signed attributes hold the content type `id-ct-TSTInfo` and a message
  digest equal to the hash of the TSTInfo, an ESS signing certificate (v2, or v1
  unless the caller asks for v2) naming the signing certificate, and the signature over them verifies with that
  certificate's key (RSA PKCS#1 v1.5 or PSS, ECDSA);
- the signing certificate is a TSA's: its extended key usage is critical and is
  `id-kp-timeStamping` alone (RFC 3161 §2.3), its key usage (if any) allows signatures,
  RSA keys of at least 2048 bits, EC keys of at least 256;
- a path leads from it through the token's certificates (and the caller's
  intermediates) to a trusted certificate, each CA on it marked as one (critical
  basic constraints, keyCertSign), every certificate of the path valid at `genTime`.

The trusted time is then `genTime`, give or take its accuracy (`Timestamp.earliest`,
`Timestamp.latest`): the TSTInfo's own, or a second under the ETSI baseline policy
(RFC 3628), else none. Revocation of TSA certificates is not checked here (offline);
callers decide what that means for them.

`asn1crypto` has no type hints: every value it yields is turned into a typed one
before it leaves the small readers below.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import cms, parser, tsp
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from portside.trust.chains import describe, extended_key_usages, extension, issued_by, subject_of, valid_at

__all__ = ["Timestamp", "Token", "parse", "verify"]

_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
# ETSI TS 102 023 / RFC 3628 baseline time-stamp policy: accuracy of one second.
_BASELINE_POLICY = "0.4.0.2023.1.1"
# A path longer than this is no TSA hierarchy anyone runs; it bounds the walk.
_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True)
class Token:
    """A parsed TimeStampToken: what the TSA said and what it signed it with."""

    hash_name: str
    hashed_message: bytes
    gen_time: datetime
    accuracy: timedelta
    policy: str
    serial: int
    certificates: tuple[x509.Certificate, ...]
    # The signer: who it names (issuer DER and serial, or subject key id) and what it signed.
    signer_issuer: bytes | None
    signer_serial: int | None
    signer_key_id: bytes | None
    digest_name: str
    signature_name: str
    signature_hash: str  # the hash the signature is over: the algorithm's own, or the digest algorithm
    pss: tuple[str, int] | None  # (hash, salt length) when the signature is RSASSA-PSS
    signature: bytes
    signed_attributes: bytes  # DER, as a SET OF, the bytes the signature covers
    content_type: str | None
    message_digest: bytes | None
    tst_info: bytes  # the encapsulated TSTInfo's DER, which the message digest covers
    ess: tuple[str, bytes, bytes | None, int | None] | None  # (hash, cert hash, issuer DER, serial)
    ess_v2: bool  # the attribute is signing-certificate-v2 (RFC 5035), not the older v1


@dataclass(frozen=True, slots=True)
class Timestamp:
    """A verified timestamp: when, how precisely, and who vouched (the TSA's path)."""

    time: datetime
    accuracy: timedelta
    chain: tuple[x509.Certificate, ...]

    @property
    def earliest(self) -> datetime:
        return self.time - self.accuracy

    @property
    def latest(self) -> datetime:
        return self.time + self.accuracy

    @property
    def authority(self) -> str:
        return describe(subject_of(self.chain[0]))


def parse(data: bytes) -> Token:
    """A TimeStampToken, or a TimeStampResp granting one; ValueError saying what is wrong."""
    try:
        return _parse(data)
    except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as error:
        raise ValueError(f"the timestamp token cannot be parsed: {error}") from None


def _parse(data: bytes) -> Token:
    outer = parser.parse(data, strict=True)
    first = parser.parse(outer[4])
    if first[2] == 16:  # a SEQUENCE first: a TimeStampResp's PKIStatusInfo, not an OID
        # The status is read alone first: a refusal comes without the token the whole needs.
        status = tsp.PKIStatusInfo.load(first[3] + first[4])["status"].native
        if status not in ("granted", "granted_with_mods"):
            raise ValueError(f"the time-stamping authority answered {status!r}, not granted")
        info = tsp.TimeStampResp.load(data, strict=True)["time_stamp_token"]
        if info.native is None:
            raise ValueError("the timestamp response holds no token")
    else:
        info = cms.ContentInfo.load(data, strict=True)
    if info["content_type"].native != "signed_data":
        raise ValueError("not CMS signed data")
    signed = info["content"]
    encapsulated = signed["encap_content_info"]
    if encapsulated["content_type"].native != "tst_info":
        raise ValueError("the signed content is not a TSTInfo")
    content = encapsulated["content"]
    if content.native is None:
        raise ValueError("the token holds no TSTInfo")
    tst_info = bytes(content.contents)
    tst = tsp.TSTInfo.load(tst_info, strict=True)
    imprint = tst["message_imprint"]
    signers = signed["signer_infos"]
    if len(signers) != 1:
        raise ValueError(f"a timestamp has one signer; this one has {len(signers)}")
    signer = signers[0]
    issuer, serial, key_id = _signer_id(signer["sid"])
    attributes = signer["signed_attrs"]
    if attributes.native is None:
        raise ValueError("the signer has no signed attributes")
    found = _attributes(attributes)
    algorithm = signer["signature_algorithm"]
    signature_name = str(algorithm.signature_algo)
    digest_name = str(signer["digest_algorithm"]["algorithm"].native)
    pss = None
    if signature_name == "rsassa_pss":
        parameters = algorithm["parameters"]
        pss = (str(parameters["hash_algorithm"]["algorithm"].native), int(parameters["salt_length"].native))
        signature_hash = pss[0]
    else:
        try:
            # `sha384_ecdsa` names its hash; a bare rsaEncryption or ecPublicKey leaves it
            # to the signer's digest algorithm.
            signature_hash = str(algorithm.hash_algo)
        except ValueError:
            signature_hash = digest_name
    return Token(
        hash_name=str(imprint["hash_algorithm"]["algorithm"].native),
        hashed_message=bytes(imprint["hashed_message"].native),
        gen_time=_utc(tst["gen_time"].native),
        accuracy=_accuracy(tst),
        policy=str(tst["policy"].dotted),
        serial=int(tst["serial_number"].native),
        certificates=_certificates(signed["certificates"]),
        signer_issuer=issuer,
        signer_serial=serial,
        signer_key_id=key_id,
        digest_name=digest_name,
        signature_name=signature_name,
        signature_hash=signature_hash,
        pss=pss,
        signature=bytes(signer["signature"].native),
        # The signature covers the attributes DER-encoded as a SET OF (RFC 5652 §5.4),
        # not under the [0] IMPLICIT tag they travel with; the length stays the same.
        signed_attributes=b"\x31" + attributes.dump()[1:],
        content_type=found.get("content_type"),
        message_digest=found.get("message_digest"),
        tst_info=tst_info,
        ess=found.get("ess"),
        ess_v2=bool(found.get("ess_v2")),
    )


def _utc(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError("genTime is not a time")
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


def _accuracy(tst: Any) -> timedelta:
    accuracy = tst["accuracy"]
    if accuracy.native is None:
        return timedelta(seconds=1) if tst["policy"].dotted == _BASELINE_POLICY else timedelta()
    parts = accuracy.native
    return timedelta(
        seconds=int(parts.get("seconds") or 0),
        milliseconds=int(parts.get("millis") or 0),
        microseconds=int(parts.get("micros") or 0),
    )


def _signer_id(sid: Any) -> tuple[bytes | None, int | None, bytes | None]:
    if sid.name == "issuer_and_serial_number":
        chosen = sid.chosen
        return bytes(chosen["issuer"].dump()), int(chosen["serial_number"].native), None
    return None, None, bytes(sid.chosen.native)


def _attributes(attributes: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for attribute in attributes:
        kind = attribute["type"].native
        values = attribute["values"]
        if kind in found or (kind in ("content_type", "message_digest") and len(values) != 1):
            raise ValueError(f"the signed attribute {kind} does not hold exactly one value")
        if kind == "content_type":
            found[kind] = str(values[0].native)
        elif kind == "message_digest":
            found[kind] = bytes(values[0].native)
        elif kind in ("signing_certificate_v2", "signing_certificate") and "ess" not in found:
            found["ess"] = _ess(values[0], v2=kind == "signing_certificate_v2")
            found["ess_v2"] = kind == "signing_certificate_v2"
    return found


def _ess(value: Any, *, v2: bool) -> tuple[str, bytes, bytes | None, int | None]:
    """The first ESSCertID(v2): the certificate the TSA says it signs with (RFC 5035)."""
    first = value["certs"][0]
    name = str(first["hash_algorithm"]["algorithm"].native) if v2 else "sha1"
    issuer_serial = first["issuer_serial"]
    issuer = serial = None
    if issuer_serial.native is not None:
        names = issuer_serial["issuer"]
        directory = [n.chosen for n in names if n.name == "directory_name"]
        issuer = bytes(directory[0].untag().dump(force=True)) if directory else None
        serial = int(issuer_serial["serial_number"].native)
    return name, bytes(first["cert_hash"].native), issuer, serial


def _certificates(value: Any) -> tuple[x509.Certificate, ...]:
    if value.native is None:
        return ()
    found = []
    for choice in value:
        if choice.name == "certificate":
            found.append(x509.load_der_x509_certificate(bytes(choice.chosen.dump())))
    return tuple(found)


# -- verification ----------------------------------------------------------------------


def verify(
    data: bytes,
    message: bytes,
    trusted: Sequence[x509.Certificate],
    *,
    intermediates: Sequence[x509.Certificate] = (),
    ess_v2: bool = False,
) -> Timestamp | str:
    """The timestamp `data` vouches for `message`, from a TSA whose path leads to one of
    the `trusted` certificates; or why it does not count. `ess_v2`: only the
    signing-certificate-v2 attribute will do (the Notary Project asks for it)."""
    try:
        token = parse(data)
    except ValueError as error:
        return str(error)
    hash_type = _HASHES.get(token.hash_name)
    if hash_type is None:
        return f"the timestamp's message imprint uses {token.hash_name}, not SHA-256, SHA-384 or SHA-512"
    if _digest(hash_type, message) != token.hashed_message:
        return "the timestamp is not for this signature: its message imprint is the hash of other bytes"
    problem = _signed_attributes(token)
    if problem is not None:
        return problem
    if ess_v2 and not token.ess_v2:
        return "the timestamp names its signing certificate with the older ESS attribute, not signing-certificate-v2"
    pool = list(dict.fromkeys([*token.certificates, *intermediates]))
    signer = _signer(token, [*pool, *trusted])
    if signer is None:
        return "the timestamp's signing certificate is neither in the token nor among the trusted ones"
    problem = _ess_matches(token, signer)
    if problem is not None:
        return problem
    if not _signature_verifies(token, signer):
        return "the timestamp's signature does not verify: the token was altered or is corrupt"
    problem = _tsa_requirements(signer)
    if problem is not None:
        return problem
    path = _path(signer, pool, trusted)
    if isinstance(path, str):
        return path
    for depth, certificate in enumerate(path[1:]):
        problem = _ca_requirements(certificate, depth)
        if problem is not None:
            return problem
    for certificate in path:
        if not valid_at(certificate, token.gen_time):
            return (
                f"the time-stamping certificate {describe(subject_of(certificate))} was not valid at the "
                f"timestamp's time ({token.gen_time:%Y-%m-%dT%H:%M:%SZ})"
            )
    return Timestamp(token.gen_time, token.accuracy, tuple(path))


def _digest(kind: type[hashes.HashAlgorithm], data: bytes) -> bytes:
    context = hashes.Hash(kind())
    context.update(data)
    return context.finalize()


def _signed_attributes(token: Token) -> str | None:
    if token.content_type != "tst_info":
        return "the timestamp's signed content-type attribute is not id-ct-TSTInfo"
    hash_type = _HASHES.get(token.digest_name)
    if hash_type is None:
        return f"the timestamp's signer digests with {token.digest_name}, not SHA-256, SHA-384 or SHA-512"
    if token.message_digest is None or _digest(hash_type, token.tst_info) != token.message_digest:
        return "the timestamp's message-digest attribute does not match its TSTInfo: the token was altered"
    if token.ess is None:
        return "the timestamp names no signing certificate (ESS signing-certificate attribute)"
    return None


def _signer(token: Token, pool: Sequence[x509.Certificate]) -> x509.Certificate | None:
    for certificate in pool:
        if token.signer_key_id is not None:
            identifier = extension(certificate, x509.SubjectKeyIdentifier)
            if identifier is not None and identifier.value.digest == token.signer_key_id:
                return certificate
        elif certificate.serial_number == token.signer_serial and _issuer_der(certificate) == token.signer_issuer:
            return certificate
    return None


def _issuer_der(certificate: x509.Certificate) -> bytes:
    return certificate.issuer.public_bytes()


def _ess_matches(token: Token, signer: x509.Certificate) -> str | None:
    if token.ess is None:
        return "the timestamp names no signing certificate (ESS signing-certificate attribute)"
    name, expected, issuer, serial = token.ess
    hash_type: type[hashes.HashAlgorithm] | None = hashes.SHA1 if name == "sha1" else _HASHES.get(name)
    if hash_type is None:
        return f"the timestamp's signing-certificate attribute hashes with {name}, which is not supported"
    if _digest(hash_type, signer.public_bytes(Encoding.DER)) != expected:
        return "the timestamp's signing-certificate attribute names another certificate than its signer"
    if serial is not None and (serial != signer.serial_number or issuer != _issuer_der(signer)):
        return "the timestamp's signing-certificate attribute names another issuer and serial than its signer"
    return None


def _signature_verifies(token: Token, signer: x509.Certificate) -> bool:
    key = signer.public_key()
    hash_type = _HASHES.get(token.signature_hash)
    if hash_type is None:
        return False
    algorithm = hash_type()
    try:
        if isinstance(key, rsa.RSAPublicKey) and token.pss is not None:
            scheme: padding.AsymmetricPadding = padding.PSS(mgf=padding.MGF1(algorithm), salt_length=token.pss[1])
            key.verify(token.signature, token.signed_attributes, scheme, algorithm)
            return True
        if isinstance(key, rsa.RSAPublicKey) and token.signature_name == "rsassa_pkcs1v15":
            key.verify(token.signature, token.signed_attributes, padding.PKCS1v15(), algorithm)
            return True
        if isinstance(key, ec.EllipticCurvePublicKey) and token.signature_name == "ecdsa":
            key.verify(token.signature, token.signed_attributes, ec.ECDSA(algorithm))
            return True
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return False


def _tsa_requirements(certificate: x509.Certificate) -> str | None:
    name = describe(subject_of(certificate))
    usage = extension(certificate, x509.ExtendedKeyUsage)
    purposes = extended_key_usages(certificate)
    if usage is None or not usage.critical or purposes != {ExtendedKeyUsageOID.TIME_STAMPING}:
        return f"the certificate {name} is not a time-stamping authority's (a critical timeStamping-only EKU)"
    bits = extension(certificate, x509.KeyUsage)
    if bits is not None and not (bits.value.digital_signature or bits.value.content_commitment):
        return f"the time-stamping certificate {name} is not for digital signatures"
    key = certificate.public_key()
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < 2048:
        return f"the time-stamping certificate {name} has an RSA key under 2048 bits"
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.key_size < 256:
        return f"the time-stamping certificate {name} has an EC key under 256 bits"
    return None


def _path(
    signer: x509.Certificate, pool: Sequence[x509.Certificate], trusted: Sequence[x509.Certificate]
) -> list[x509.Certificate] | str:
    anchors = {c.public_bytes(Encoding.DER): c for c in trusted}
    path = [signer]
    current = signer
    while len(path) <= _MAX_DEPTH:
        if current.public_bytes(Encoding.DER) in anchors:
            return path
        above = next((c for c in anchors.values() if issued_by(current, c)), None)
        if above is not None:
            return [*path, above]
        above = next((c for c in pool if c not in path and issued_by(current, c)), None)
        if above is None:
            break
        path.append(above)
        current = above
    return (
        f"the timestamp's signer {describe(subject_of(signer))} does not lead to a trusted "
        "time-stamping authority certificate"
    )


def _ca_requirements(certificate: x509.Certificate, below: int) -> str | None:
    """`below`: how many CA certificates sit between this one and the TSA's own."""
    name = describe(subject_of(certificate))
    constraints = extension(certificate, x509.BasicConstraints)
    if constraints is None or not constraints.critical or not constraints.value.ca:
        return f"the time-stamping CA certificate {name} lacks critical basic constraints with CA set"
    limit = constraints.value.path_length
    if limit is not None and limit < below:
        return f"the time-stamping CA certificate {name} allows {limit} CAs below it, the path has {below}"
    usage = extension(certificate, x509.KeyUsage)
    if usage is None or not usage.value.key_cert_sign:
        return f"the time-stamping CA certificate {name} lacks the keyCertSign key usage"
    return None
