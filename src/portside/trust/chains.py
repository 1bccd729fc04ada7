"""X.509 checks shared by keyless sigstore and Notation: who issued a certificate, when
it is valid, what it may be used for. Path building lives with each format, since
they trust differently (a sigstore trusted root's CA chains; a Notation trust store's roots)."""

from __future__ import annotations

import warnings
from datetime import datetime
from typing import TypeVar

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = [
    "CODE_SIGNING",
    "issued_by",
    "valid_at",
    "extension",
    "extended_key_usages",
    "describe",
    "subject_of",
    "issuer_of",
]

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


def subject_of(certificate: x509.Certificate) -> x509.Name | None:
    return _name(certificate, "subject")


def issuer_of(certificate: x509.Certificate) -> x509.Name | None:
    return _name(certificate, "issuer")


def _name(certificate: x509.Certificate, which: str) -> x509.Name | None:
    """A certificate's subject or issuer. Some real CAs write values `cryptography`
    frowns on (a three-letter country): it warns and reads them anyway, so the warning
    is quieted here; a name it cannot read at all is None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        try:
            name: x509.Name = getattr(certificate, which)
            return name
        except ValueError:
            return None


def describe(name: x509.Name | None) -> str:
    """A name as RFC 4514 text, for reasons and signer names."""
    if name is None:
        return "an unreadable name"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return name.rfc4514_string()
