"""COSE_Sign1 messages (RFC 9052) as Notation's `application/cose` envelopes carry them.

    COSE_Sign1_Tagged = 18([ protected: bstr .cbor header_map,
                             unprotected: header_map,
                             payload: bstr,
                             signature: bstr ])
    Sig_structure     = [ "Signature1", protected, external_aad: h'', payload ]

`decode` reads the tagged message into a `Sign1`: both header buckets decoded (labels are
integers or text), the payload and the signature, and `to_be_signed`, the encoded
Sig_structure the signature covers. It checks the COSE structure only; what Notation
requires of the headers is `portside.trust.notation`'s to judge.

Input is untrusted, so decoding is strict: one well-formed CBOR item with nothing after
it, definite lengths only, no duplicate map keys nor a label in both buckets (RFC 9052,
section 3), containers nested at most MAX_DEPTH deep. Tags are kept as `CBORTag` rather than turned into Python objects
(cbor2 would otherwise build sets, regular expressions and shared, even cyclic,
references from them): only the tag 18 around the message and tag 1 epoch times
(`epoch_time`) mean anything here.

This module is proven against the Notary Project's COSE envelope specification
(signature-envelope-cose.md) and RFC 9052, with envelopes the tests build as that
specification describes them; no envelope written by a real Notation tool was at hand
to check it against.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import cbor2

__all__ = [
    "ALG",
    "ALGORITHMS",
    "CONTENT_TYPE",
    "CRIT",
    "MAX_DEPTH",
    "SIGN1_TAG",
    "X5CHAIN",
    "Label",
    "Sign1",
    "decode",
    "epoch_time",
    "sig_structure",
]

SIGN1_TAG = 18
EPOCH_TIME_TAG = 1
# Header labels of the IANA COSE registry that Notation uses.
ALG = 1
CRIT = 2
CONTENT_TYPE = 3
X5CHAIN = 33
# The COSE algorithm identifiers of the signature algorithms Notation allows.
ALGORITHMS: Mapping[int, str] = {
    -37: "PS256",
    -38: "PS384",
    -39: "PS512",
    -7: "ES256",
    -35: "ES384",
    -36: "ES512",
}
MAX_DEPTH = 16

Label = int | str

# Every tag cbor2 would decode into a Python object of its own; each stays a CBORTag.
_SEMANTIC_TAGS = (0, 1, 2, 3, 4, 5, 25, 28, 29, 30, 35, 36, 37, 52, 54, 100, 256, 258, 260, 261, 1004, 55799)


def _kept(tag: int) -> Callable[[Any, bool], cbor2.CBORTag]:
    return lambda value, _immutable: cbor2.CBORTag(tag, value)


_AS_TAGS: Mapping[int, Callable[[Any, bool], Any]] = {tag: _kept(tag) for tag in _SEMANTIC_TAGS}


@dataclass(frozen=True, slots=True)
class Sign1:
    """A decoded COSE_Sign1 message."""

    protected: Mapping[Label, Any]
    unprotected: Mapping[Label, Any]
    payload: bytes
    signature: bytes
    to_be_signed: bytes


def _item(data: bytes, what: str) -> Any:
    """The one CBOR data item `data` holds, or ValueError saying why it is not one."""
    stream = io.BytesIO(data)
    decoder = cbor2.CBORDecoder(
        stream,
        semantic_decoders=_AS_TAGS,
        str_errors="strict",
        max_depth=MAX_DEPTH,
        allow_indefinite=False,
        allow_duplicate_keys=False,
    )
    try:
        value = decoder.decode()
    except (cbor2.CBORError, ValueError, TypeError, OverflowError) as error:
        raise ValueError(f"{what} is not well-formed CBOR: {error}") from error
    try:
        rest = decoder.read(1)
    except cbor2.CBORDecodeEOF:
        rest = b""
    if rest:
        raise ValueError(f"{what} has bytes after its CBOR data item")
    return value


def _header_map(value: object, bucket: str) -> Mapping[Label, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"the {bucket} header is not a CBOR map")
    for label in value:
        # bool is an int to Python, not to CBOR.
        if isinstance(label, bool) or not isinstance(label, int | str):
            raise ValueError(f"the {bucket} header has a label {label!r} that is neither an integer nor a text string")
    return value


def decode(data: bytes) -> Sign1:
    """A COSE_Sign1_Tagged message, or ValueError saying what is wrong with it."""
    message = _item(data, "the envelope")
    if not isinstance(message, cbor2.CBORTag) or message.tag != SIGN1_TAG:
        raise ValueError("the envelope is not a COSE_Sign1_Tagged message (CBOR tag 18)")
    body = message.value
    if not isinstance(body, list | tuple) or len(body) != 4:
        raise ValueError("the COSE_Sign1 message is not an array of its four members")
    protected_bytes, unprotected, payload, signature = body
    if not isinstance(protected_bytes, bytes):
        raise ValueError("the protected header is not a byte string")
    # An empty byte string stands for an empty map (RFC 9052, section 3).
    protected = _header_map(_item(protected_bytes, "the protected header") if protected_bytes else {}, "protected")
    unprotected = _header_map(unprotected, "unprotected")
    both = protected.keys() & unprotected.keys()
    if both:
        raise ValueError(f"the labels {sorted(map(str, both))} are in both the protected and unprotected headers")
    if payload is None:
        raise ValueError("the payload is detached (nil); a Notation envelope carries it")
    if not isinstance(payload, bytes):
        raise ValueError("the payload is not a byte string")
    if not isinstance(signature, bytes):
        raise ValueError("the signature is not a byte string")
    return Sign1(protected, unprotected, payload, signature, sig_structure(protected_bytes, payload))


def sig_structure(protected: bytes, payload: bytes, external_aad: bytes = b"") -> bytes:
    """The encoded Sig_structure of a COSE_Sign1 message: what its signature is over.

    The protected header goes in as the very bytes the message carries, so nothing is
    re-encoded that could come out different."""
    return cbor2.dumps(["Signature1", protected, external_aad, payload])


def epoch_time(value: object) -> datetime | None:
    """The time an epoch-based date/time (tag 1, RFC 8949 section 3.4.2) stands for, or
    None when the value is not one (an untagged number, a tag 0 text date, ...)."""
    if not isinstance(value, cbor2.CBORTag) or value.tag != EPOCH_TIME_TAG:
        return None
    seconds = value.value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    if isinstance(seconds, float) and not math.isfinite(seconds):
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
