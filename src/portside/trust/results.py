"""The outcome of checking one signature, the same shape for every kind.

`verified` is the whole answer; `reason` says, for a person, why a signature did not
count (and is None when it did); `signer` names who signed as far as the check could
tell: a key id, a certificate identity, a certificate subject; `signed_at` is a time
the check trusted (a transparency log's integration time) or, failing that, the time
the signature claims; `warnings` are checks a policy only logs (Notation's permissive
and audit levels) that failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["Kind", "Verification"]

Kind = Literal["cosign", "cosign-bundle", "notation", "notary"]


@dataclass(frozen=True, slots=True)
class Verification:
    kind: Kind
    verified: bool
    reason: str | None = None
    signer: str | None = None
    signed_at: datetime | None = None
    warnings: tuple[str, ...] = ()

    @classmethod
    def passed(
        cls,
        kind: Kind,
        signer: str | None,
        signed_at: datetime | None = None,
        warnings: tuple[str, ...] = (),
    ) -> Verification:
        return cls(kind, True, None, signer, signed_at, warnings)

    @classmethod
    def failed(
        cls,
        kind: Kind,
        reason: str,
        signer: str | None = None,
        signed_at: datetime | None = None,
        warnings: tuple[str, ...] = (),
    ) -> Verification:
        return cls(kind, False, reason, signer, signed_at, warnings)
