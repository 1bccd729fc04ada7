"""DSSE envelopes and the in-toto statements they carry.

A DSSE signature is over the pre-authentication encoding, never the bare payload:
`PAE(type, body) = "DSSEv1" SP len(type) SP type SP len(body) SP body`, lengths as
ASCII decimal byte counts (`pae`). The envelope's JSON has `payloadType`, `payload`
(standard base64) and `signatures[]` of `{keyid, sig}`.

An in-toto statement (`_type` `https://in-toto.io/Statement/v0.1` or `/v1`) names what
it speaks of in `subject[]`, each with a `digest` map of algorithm → hex; `subjects`
reads them as `algorithm:hex` strings.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["IN_TOTO", "STATEMENT_TYPES", "Signature", "Envelope", "pae", "subjects"]

IN_TOTO = "application/vnd.in-toto+json"
STATEMENT_TYPES = ("https://in-toto.io/Statement/v0.1", "https://in-toto.io/Statement/v1")


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


@dataclass(frozen=True, slots=True)
class Signature:
    sig: bytes
    keyid: str = ""


@dataclass(frozen=True, slots=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    @classmethod
    def parse(cls, document: Mapping[str, Any]) -> Envelope:
        """Raises ValueError saying what is missing or malformed."""
        try:
            payload = base64.b64decode(document["payload"], validate=True)
            signatures = tuple(
                Signature(base64.b64decode(item["sig"], validate=True), str(item.get("keyid") or ""))
                for item in document.get("signatures") or []
            )
            return cls(str(document["payloadType"]), payload, signatures)
        except (KeyError, TypeError, binascii.Error) as error:
            raise ValueError(f"not a DSSE envelope: missing or malformed {error}") from error

    def signed_bytes(self) -> bytes:
        return pae(self.payload_type, self.payload)


def subjects(statement: bytes) -> list[str] | str:
    """The `algorithm:hex` digests an in-toto statement's subjects carry, or why it is not one."""
    try:
        document = json.loads(statement)
    except (UnicodeDecodeError, ValueError):
        return "the envelope's payload is not JSON"
    if not isinstance(document, Mapping) or document.get("_type") not in STATEMENT_TYPES:
        return "the envelope's payload is not an in-toto statement"
    found: list[str] = []
    for subject in document.get("subject") or []:
        digests = subject.get("digest") if isinstance(subject, Mapping) else None
        if isinstance(digests, Mapping):
            found += [f"{algorithm}:{value}".lower() for algorithm, value in digests.items() if isinstance(value, str)]
    return found
