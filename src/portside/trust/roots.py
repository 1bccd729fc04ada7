"""A sigstore trusted root (`trusted_root.json`): the keys and CAs keyless checks rest on.

An administrator imports one (the public-good instance's from sigstore's TUF
repository, or a private instance's) and Portside reads it as it is, offline: the
transparency logs (Rekor) by log id with their keys and validity windows, the Fulcio
certificate authorities with their chains and windows, the RFC 3161 timestamp
authorities likewise (leaf first, root last; `portside.trust.bundle` verifies a bundle's
timestamps with them). CT logs are read and kept but not used yet (SCTs are not verified).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from portside.trust.keys import PublicKey, load_public_key
from portside.trust.times import parse_time

__all__ = ["MEDIA_TYPE", "Window", "TransparencyLog", "CertificateAuthority", "TrustedRoot", "InvalidRoot"]

MEDIA_TYPE = "application/vnd.dev.sigstore.trustedroot+json;version=0.1"


class InvalidRoot(ValueError):
    """Not a trusted root this module can read; the message says where."""


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime | None
    end: datetime | None

    @classmethod
    def parse(cls, value: object) -> Window:
        if not isinstance(value, Mapping):
            return cls(None, None)
        start, end = value.get("start"), value.get("end")
        return cls(
            parse_time(start) if isinstance(start, str) else None,
            parse_time(end) if isinstance(end, str) else None,
        )

    def holds(self, moment: datetime) -> bool:
        return (self.start is None or self.start <= moment) and (self.end is None or moment <= self.end)


@dataclass(frozen=True, slots=True)
class TransparencyLog:
    log_id: bytes
    key: PublicKey
    window: Window
    base_url: str


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    """A CA's chain, issuing certificate first and its root last, and when it may issue."""

    chain: tuple[x509.Certificate, ...]
    window: Window
    uri: str


@dataclass(frozen=True, slots=True)
class TrustedRoot:
    tlogs: tuple[TransparencyLog, ...]
    certificate_authorities: tuple[CertificateAuthority, ...]
    ctlogs: tuple[TransparencyLog, ...] = ()
    timestamp_authorities: tuple[CertificateAuthority, ...] = ()

    @classmethod
    def parse(cls, data: bytes | str) -> TrustedRoot:
        try:
            document = json.loads(data)
        except ValueError as error:
            raise InvalidRoot(f"not JSON: {error}") from error
        if not isinstance(document, Mapping):
            raise InvalidRoot("not a JSON object")
        media_type = document.get("mediaType", "")
        if not str(media_type).startswith("application/vnd.dev.sigstore.trustedroot"):
            raise InvalidRoot(f"media type {media_type!r} is not a sigstore trusted root")
        return cls(
            tlogs=tuple(_log(entry, "tlogs") for entry in _list(document, "tlogs")),
            certificate_authorities=tuple(
                _authority(entry, "certificateAuthorities") for entry in _list(document, "certificateAuthorities")
            ),
            ctlogs=tuple(_log(entry, "ctlogs") for entry in _list(document, "ctlogs")),
            timestamp_authorities=tuple(
                _authority(entry, "timestampAuthorities") for entry in _list(document, "timestampAuthorities")
            ),
        )

    def tlog(self, log_id: bytes) -> TransparencyLog | None:
        for log in self.tlogs:
            if log.log_id == log_id:
                return log
        return None


def _list(document: Mapping[str, Any], name: str) -> Sequence[Mapping[str, Any]]:
    value = document.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
        raise InvalidRoot(f"`{name}` is not a list of objects")
    return value


def _log(entry: Mapping[str, Any], where: str) -> TransparencyLog:
    try:
        public_key = entry["publicKey"]
        key = load_public_key(base64.b64decode(public_key["rawBytes"]))
        log_id = base64.b64decode(entry["logId"]["keyId"])
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidRoot(f"an entry of `{where}` is unreadable: {error}") from error
    return TransparencyLog(log_id, key, Window.parse(public_key.get("validFor")), str(entry.get("baseUrl", "")))


def _authority(entry: Mapping[str, Any], where: str) -> CertificateAuthority:
    try:
        certificates = entry["certChain"]["certificates"]
        chain = tuple(x509.load_der_x509_certificate(base64.b64decode(c["rawBytes"])) for c in certificates)
    except (KeyError, TypeError, ValueError) as error:
        raise InvalidRoot(f"an entry of `{where}` is unreadable: {error}") from error
    if not chain:
        raise InvalidRoot(f"an entry of `{where}` has no certificates")
    return CertificateAuthority(chain, Window.parse(entry.get("validFor")), str(entry.get("uri", "")))
