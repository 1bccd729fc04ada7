"""Content digests (`algorithm:hex`) and the hashers that compute them."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from portside.errors import DigestInvalid

__all__ = ["Digest", "ALGORITHMS", "new_hasher"]

# Hex lengths of the algorithms the OCI image spec registers; others are refused.
ALGORITHMS: dict[str, int] = {"sha256": 64, "sha512": 128}
_DIGEST = re.compile(r"^([a-z0-9]+(?:[.+_-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")


def new_hasher(algorithm: str) -> hashlib._Hash:
    return hashlib.new(algorithm)


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str) -> Digest:
        match = _DIGEST.match(text)
        if not match:
            raise DigestInvalid(f"invalid digest {text!r}", detail={"digest": text})
        algorithm, hexpart = match.groups()
        length = ALGORITHMS.get(algorithm)
        if length is None:
            raise DigestInvalid(f"unsupported digest algorithm {algorithm!r}", detail={"digest": text})
        if len(hexpart) != length or not all(c in "0123456789abcdef" for c in hexpart):
            raise DigestInvalid(f"invalid {algorithm} digest {text!r}", detail={"digest": text})
        return cls(algorithm, hexpart)

    @classmethod
    def is_digest(cls, text: str) -> bool:
        return ":" in text

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"
