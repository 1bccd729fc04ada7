"""Keyless (Fulcio) signing certificates: is it one a trusted Fulcio issued, to whom.

A keyless signature carries a short-lived certificate. It counts when:

- it chains to a certificate authority of the imported trusted root (`roots`), the
  CA's validity window and every certificate in the path holding at the signing time;
- it was valid at the signing time, which is the time Rekor logged the signature (the
  caller gets it from a verified signed entry timestamp, never from the signature) and
  the time of each verified RFC 3161 timestamp of it (`portside.trust.timestamps`);
- it is for code signing (the EKU Fulcio sets);
- its identity matches one the project trusts (`Identity`): the OIDC issuer exactly
  (Fulcio's extension 1.3.6.1.4.1.57264.1.8, a DER UTF8String, or the older .1.1 with
  the raw string), and a subject alternative name (URI or email) equal to the subject,
  or, for a pattern, matched by it as a whole (`re.fullmatch`).

The path is built from the trusted root's own CA chains; intermediates a signature
carries (cosign's `…/chain` annotation, a bundle's certificate chain) are not taken on
their word. SCTs (certificate transparency) are not checked.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from portside.trust.chains import (
    CODE_SIGNING,
    describe,
    extended_key_usages,
    extension,
    issued_by,
    issuer_of,
    valid_at,
)
from portside.trust.roots import TrustedRoot

__all__ = ["ISSUER_V1", "ISSUER_V2", "Identity", "CertificateIdentity", "verify_certificate", "check_identity"]

ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")


@dataclass(frozen=True, slots=True)
class CertificateIdentity:
    """Who a Fulcio certificate was issued to: its SAN URIs and emails, and the OIDC issuer."""

    subjects: tuple[str, ...]
    issuer: str | None

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertificateIdentity:
        subjects: list[str] = []
        san = extension(certificate, x509.SubjectAlternativeName)
        if san is not None:
            subjects += san.value.get_values_for_type(x509.UniformResourceIdentifier)
            subjects += san.value.get_values_for_type(x509.RFC822Name)
        return cls(tuple(subjects), _issuer(certificate))

    def __str__(self) -> str:
        subject = self.subjects[0] if self.subjects else "an unnamed identity"
        return f"{subject} (issuer {self.issuer})" if self.issuer else subject


@dataclass(frozen=True, slots=True)
class Identity:
    """A keyless identity a project trusts: the OIDC issuer, exactly, and the subject,
    exactly or (`regexp`) as a pattern the whole subject must match."""

    issuer: str
    subject: str
    regexp: bool = False

    def matches(self, who: CertificateIdentity) -> bool:
        if who.issuer != self.issuer:
            return False
        if self.regexp:
            try:
                pattern = re.compile(self.subject)
            except re.error:
                return False
            return any(pattern.fullmatch(subject) for subject in who.subjects)
        return self.subject in who.subjects

    def __str__(self) -> str:
        return f"{self.subject} (issuer {self.issuer})"


def _issuer(certificate: x509.Certificate) -> str | None:
    for oid, der in ((ISSUER_V2, True), (ISSUER_V1, False)):
        try:
            value = certificate.extensions.get_extension_for_oid(oid).value
        except (x509.ExtensionNotFound, ValueError):
            continue
        if not isinstance(value, x509.UnrecognizedExtension):
            continue
        text = _utf8_string(value.value) if der else _text(value.value)
        if text is not None:
            return text
    return None


def _text(raw: bytes) -> str | None:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return None


def _utf8_string(der: bytes) -> str | None:
    """The value of a DER UTF8String (tag 12), short or long length form."""
    if len(der) < 2 or der[0] != 0x0C:
        return None
    length, offset = der[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or len(der) < 2 + count:
            return None
        length, offset = int.from_bytes(der[2 : 2 + count], "big"), 2 + count
    if len(der) != offset + length:
        return None
    return _text(der[offset:])


def verify_certificate(
    certificate: x509.Certificate, root: TrustedRoot, moment: datetime, *, event: str = "logged"
) -> str | None:
    """None when a trusted Fulcio issued the certificate and it was valid at `moment`, the
    time the signature was `event` (logged by Rekor, or timestamped by a TSA); else why not."""
    if not valid_at(certificate, moment):
        return (
            f"the signing certificate was not valid when the signature was {event} "
            f"(valid {certificate.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ} to "
            f"{certificate.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}, {event} {moment:%Y-%m-%dT%H:%M:%SZ})"
        )
    purposes = extended_key_usages(certificate)
    if purposes is None or CODE_SIGNING not in purposes:
        return "the signing certificate is not a code-signing certificate"
    for authority in root.certificate_authorities:
        if not authority.window.holds(moment):
            continue
        if _chains(certificate, authority.chain, moment):
            return None
    return (
        "the signing certificate was not issued by a Fulcio CA the trusted root names for that time "
        f"(its issuer: {describe(issuer_of(certificate))})"
    )


def _chains(certificate: x509.Certificate, chain: Sequence[x509.Certificate], moment: datetime) -> bool:
    for start, parent in enumerate(chain):
        if not issued_by(certificate, parent):
            continue
        path = chain[start:]
        linked = all(issued_by(path[i], path[i + 1]) for i in range(len(path) - 1))
        if linked and all(valid_at(c, moment) for c in path):
            return True
    return False


def check_identity(who: CertificateIdentity, identities: Sequence[Identity]) -> str | None:
    if any(identity.matches(who) for identity in identities):
        return None
    return f"signed by {who}, an identity this project does not trust"
