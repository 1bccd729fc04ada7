"""Rekor transparency-log entries, checked offline against a trusted root.

An entry reaches us two ways: cosign's `dev.sigstore.cosign/bundle` annotation
(`SignedEntryTimestamp` + `Payload{body, integratedTime, logIndex, logID}`) and a
sigstore bundle's `tlogEntries[]` (`canonicalizedBody`, `inclusionPromise`,
`inclusionProof`). Either way:

- the signed entry timestamp (SET) is the log's ECDSA signature over the canonical JSON
  `{"body":…,"integratedTime":…,"logID":"<hex>","logIndex":…}`; it verifies with the
  key the trusted root gives for that log id, valid at the integration time, and makes
  `integratedTime` a time we may trust;
- an inclusion proof, when present, must lead from the entry's leaf hash
  (SHA-256 of 0x00 ‖ body) to its root hash by RFC 9162's algorithm, and its
  checkpoint (a signed note) must carry that root and verify with the log's key;
- the body must describe this signature: the payload's hash, the signature bytes and
  the verifying key (`check_body`), so a valid entry for something else does not count.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from portside.trust.keys import InvalidKey, PublicKey, load_public_key
from portside.trust.roots import TrustedRoot

__all__ = ["InclusionProof", "LogEntry", "verify_entry", "check_body", "root_from_proof"]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    log_index: int
    tree_size: int
    root_hash: bytes
    hashes: tuple[bytes, ...]
    checkpoint: str | None


@dataclass(frozen=True, slots=True)
class LogEntry:
    body_b64: str
    integrated_time: int
    log_index: int
    log_id: bytes
    signed_entry_timestamp: bytes | None
    proof: InclusionProof | None = None

    @property
    def body(self) -> bytes:
        return base64.b64decode(self.body_b64)

    @property
    def integrated_at(self) -> datetime:
        return datetime.fromtimestamp(self.integrated_time, UTC)

    @classmethod
    def from_cosign_bundle(cls, text: str) -> LogEntry:
        try:
            document = json.loads(text)
            payload = document["Payload"]
            return cls(
                body_b64=str(payload["body"]),
                integrated_time=int(payload["integratedTime"]),
                log_index=int(payload["logIndex"]),
                log_id=bytes.fromhex(payload["logID"]),
                signed_entry_timestamp=base64.b64decode(document["SignedEntryTimestamp"]),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise ValueError(f"missing or malformed {error}") from error

    @classmethod
    def from_tlog_entry(cls, entry: Mapping[str, Any]) -> LogEntry:
        try:
            promise = entry.get("inclusionPromise") or {}
            stamp = promise.get("signedEntryTimestamp")
            proof = entry.get("inclusionProof")
            return cls(
                body_b64=str(entry["canonicalizedBody"]),
                integrated_time=int(entry["integratedTime"]),
                log_index=int(entry["logIndex"]),
                log_id=base64.b64decode(entry["logId"]["keyId"]),
                signed_entry_timestamp=base64.b64decode(stamp) if stamp else None,
                proof=_proof(proof) if isinstance(proof, Mapping) else None,
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as error:
            raise ValueError(f"missing or malformed {error}") from error

    def document(self) -> Mapping[str, Any] | None:
        try:
            body = json.loads(self.body)
        except (ValueError, binascii.Error):
            return None
        return body if isinstance(body, Mapping) else None

    def logged_key(self) -> PublicKey | None:
        """The key (or certificate's key) the entry says verifies the signature."""
        body = self.document()
        spec = body.get("spec") if body else None
        if not isinstance(spec, Mapping) or body is None:
            return None
        kind = body.get("kind")
        encoded: object = None
        if kind in ("hashedrekord", "rekord"):
            encoded = _dig(spec, "signature", "publicKey", "content")
        elif kind == "dsse":
            signatures = spec.get("signatures")
            if isinstance(signatures, list) and signatures and isinstance(signatures[0], Mapping):
                encoded = signatures[0].get("verifier")
        return _key(encoded)


def _proof(proof: Mapping[str, Any]) -> InclusionProof:
    checkpoint = proof.get("checkpoint")
    envelope = checkpoint.get("envelope") if isinstance(checkpoint, Mapping) else None
    return InclusionProof(
        log_index=int(proof["logIndex"]),
        tree_size=int(proof["treeSize"]),
        root_hash=base64.b64decode(proof["rootHash"]),
        hashes=tuple(base64.b64decode(h) for h in proof.get("hashes") or []),
        checkpoint=envelope if isinstance(envelope, str) else None,
    )


def _dig(document: object, *names: str) -> object:
    for name in names:
        if not isinstance(document, Mapping):
            return None
        document = document.get(name)
    return document


def _key(encoded: object) -> PublicKey | None:
    if not isinstance(encoded, str):
        return None
    try:
        return load_public_key(base64.b64decode(encoded))
    except (InvalidKey, ValueError, binascii.Error):
        return None


def set_payload(entry: LogEntry) -> bytes:
    """What the signed entry timestamp signs: the entry as canonical JSON (keys sorted, no spaces)."""
    document = {
        "body": entry.body_b64,
        "integratedTime": entry.integrated_time,
        "logID": entry.log_id.hex(),
        "logIndex": entry.log_index,
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def verify_entry(entry: LogEntry, root: TrustedRoot) -> str | None:
    """None when the entry is one the trusted root's Rekor vouches for, else why not."""
    log = root.tlog(entry.log_id)
    if log is None:
        return f"logged by a Rekor the trusted root does not name (log id {entry.log_id.hex()})"
    if not log.window.holds(entry.integrated_at):
        return f"the Rekor key was not valid when the entry was logged ({entry.integrated_at:%Y-%m-%dT%H:%M:%SZ})"
    if entry.signed_entry_timestamp is None:
        return "the Rekor entry has no signed entry timestamp, so its time cannot be trusted"
    if not log.key.verify(entry.signed_entry_timestamp, set_payload(entry)):
        return "Rekor's signed entry timestamp does not verify: the entry was altered or not logged there"
    if entry.proof is not None:
        problem = _check_proof(entry, entry.proof, log.key)
        if problem is not None:
            return problem
    return None


def root_from_proof(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The tree root an RFC 9162 (§2.1.3.2) inclusion proof leads to, or None if it is malformed."""
    if index >= size or index < 0:
        return None
    fn, sn = index, size - 1
    result = leaf
    for sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            result = hashlib.sha256(b"\x01" + sibling + result).digest()
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            result = hashlib.sha256(b"\x01" + result + sibling).digest()
        fn >>= 1
        sn >>= 1
    return result if sn == 0 else None


def _check_proof(entry: LogEntry, proof: InclusionProof, key: PublicKey) -> str | None:
    leaf = hashlib.sha256(b"\x00" + entry.body).digest()
    if root_from_proof(proof.log_index, proof.tree_size, leaf, proof.hashes) != proof.root_hash:
        return "the Rekor inclusion proof does not lead to the tree root it names"
    if proof.checkpoint is None:
        return None
    note, _, signatures = proof.checkpoint.partition("\n\n")
    lines = note.split("\n")
    if len(lines) < 3 or lines[1] != str(proof.tree_size) or lines[2] != base64.b64encode(proof.root_hash).decode():
        return "the Rekor checkpoint is not for the tree the inclusion proof names"
    for line in signatures.splitlines():
        # "— <origin name> base64(4-byte key hint ‖ signature)"
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != "\u2014":
            continue
        try:
            blob = base64.b64decode(parts[2])
        except (binascii.Error, ValueError):
            continue
        if key.verify(blob[4:], (note + "\n").encode()):
            return None
    return "the Rekor checkpoint is not signed by the log's key"


def check_body(entry: LogEntry, *, payload_sha256: str, signature: bytes, key: PublicKey) -> str | None:
    """None when the logged entry records this very signature: its payload hash, its
    signature bytes and its key; else what differs."""
    body = entry.document()
    spec = body.get("spec") if body else None
    if body is None or not isinstance(spec, Mapping):
        return "the Rekor entry's body is unreadable"
    kind = body.get("kind")
    encoded_signature = base64.b64encode(signature).decode()
    if kind in ("hashedrekord", "rekord"):
        logged_hash = _dig(spec, "data", "hash", "value")
        logged_signature = _dig(spec, "signature", "content")
        logged_key = _key(_dig(spec, "signature", "publicKey", "content"))
    elif kind == "dsse":
        logged_hash = _dig(spec, "payloadHash", "value")
        logged_signature, logged_key = None, None
        for item in spec.get("signatures") or []:
            if isinstance(item, Mapping) and item.get("signature") == encoded_signature:
                logged_signature, logged_key = item.get("signature"), _key(item.get("verifier"))
    else:
        return f"the Rekor entry is of kind {kind!r}, which is not checked"
    if logged_hash != payload_sha256:
        return "the Rekor entry records another payload"
    if logged_signature is None or _signature_bytes(logged_signature) != signature:
        return "the Rekor entry records another signature"
    if logged_key is None or logged_key.key_id != key.key_id:
        return "the Rekor entry records another key"
    return None


def _signature_bytes(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value)
    except (binascii.Error, ValueError):
        return None
