"""X.509 checks shared by keyless sigstore and Notation: who issued a certificate, when
it is valid, what it may be used for. Path building lives with each format, since
they trust differently (a sigstore trusted root's CA chains; a Notation trust store's roots)."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = ["CODE_SIGNING", "issued_by", "valid_at", "extension", "extended_key_usages", "describe"]

E = TypeVar("E", bound=x509.ExtensionType)


def issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    """The child names the parent as issuer and the parent's key signed it."""
    try:
        child.verify_directly_issued_by(parent)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def valid_at(certificate: x509.Certificate, moment: datetime) -> bool:
    return certificate.not_valid_before_utc <= moment <= certificate.not_valid_after_utc


def extension(certificate: x509.Certificate, kind: type[E]) -> x509.Extension[E] | None:
    """The extension of that type, or None when absent (or when the extensions do not parse)."""
    try:
        return certificate.extensions.get_extension_for_class(kind)
    except (x509.ExtensionNotFound, ValueError):
        return None


def extended_key_usages(certificate: x509.Certificate) -> set[x509.ObjectIdentifier] | None:
    """The EKU purposes, or None when the certificate has no EKU extension."""
    found = extension(certificate, x509.ExtendedKeyUsage)
    return None if found is None else set(found.value)


CODE_SIGNING = ExtendedKeyUsageOID.CODE_SIGNING


def describe(certificate: x509.Certificate) -> str:
    """The subject as RFC 4514 text, for reasons and signer names."""
    return certificate.subject.rfc4514_string()
