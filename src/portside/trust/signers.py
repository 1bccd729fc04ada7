"""Who made a signature, as far as a project's trust goes: one of its keys, or a keyless
identity it trusts. Shared by the formats that carry sigstore material (`cosign`,
`bundle`); each hands in how to check its signature with a key (`Check`).

When no trusted key verifies, the key the Rekor entry logged (if one came along) tells
"signed by a key this project does not trust" from "the payload was altered": a
signature its own logged key verifies is merely untrusted. Without an entry, a bundle's
key hint does the same the other way round: a signature that names a trusted key which
does not verify it was altered (the hint is not signed, so it decides only the reason).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography import x509

from portside.trust import keyless, rekor
from portside.trust.keys import PublicKey
from portside.trust.roots import TrustedRoot

__all__ = ["Check", "Signer", "by_key", "by_certificate"]

Check = Callable[[PublicKey], bool]


@dataclass(frozen=True, slots=True)
class Signer:
    key: PublicKey
    name: str
    # The log entry that vouched for a keyless signer's time, already verified.
    entry: rekor.LogEntry | None = None


def by_key(
    check: Check, keys: Sequence[PublicKey], entry: rekor.LogEntry | None, *, hint: str | None = None
) -> Signer | str:
    for key in keys:
        if check(key):
            return Signer(key, key.key_id)
    altered = "signature does not verify: the payload was altered or the signature is corrupt"
    logged = entry.logged_key() if entry is not None else None
    if logged is not None:
        if check(logged):
            return f"signed by a key this project does not trust (key {logged.key_id})"
        return altered
    if hint and any(key.hint == hint for key in keys):
        return altered
    if not keys:
        return "signed by a key this project does not trust (the project trusts no keys)"
    return "signed by a key this project does not trust (none of its keys verifies the signature)"


def by_certificate(
    certificate: x509.Certificate,
    check: Check,
    keys: Sequence[PublicKey],
    entry: rekor.LogEntry | None,
    identities: Sequence[keyless.Identity],
    root: TrustedRoot | None,
    timestamped: Sequence[datetime] = (),
) -> Signer | str:
    """`timestamped`: the times of the signature's verified RFC 3161 timestamps, which
    vouch for when it was made as Rekor's integration time does; the certificate must
    have been valid at each trusted time there is, and there must be one."""
    try:
        key = PublicKey.from_certificate(certificate)
    except ValueError as error:
        return f"the signing certificate's key is not usable: {error}"
    for trusted in keys:
        # A certificate over one of the project's own keys counts as that key.
        if trusted.key_id == key.key_id and check(trusted):
            return Signer(trusted, trusted.key_id)
    if not check(key):
        return "signature does not verify with its certificate: the payload was altered"
    who = keyless.CertificateIdentity.of(certificate)
    if root is None or not identities:
        return f"signed keylessly by {who}, and the project trusts no keyless identities"
    if entry is None and not timestamped:
        return (
            f"signed keylessly by {who} without a Rekor entry or a verified timestamp: there is no trusted signing time"
        )
    if entry is not None:
        problem = rekor.verify_entry(entry, root)
        if problem is not None:
            return problem
        problem = keyless.verify_certificate(certificate, root, entry.integrated_at)
        if problem is not None:
            return problem
    for moment in timestamped:
        problem = keyless.verify_certificate(certificate, root, moment, event="timestamped")
        if problem is not None:
            return problem
    problem = keyless.check_identity(who, identities)
    if problem is not None:
        return problem
    return Signer(key, str(who), entry)
