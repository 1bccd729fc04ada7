"""Upload ids that prove themselves, so a session needs no database row until it holds bytes.

Most uploads are a POST followed by one PUT that carries the whole blob. Recording the
session at the POST cost a write transaction per blob for a row the PUT deleted moments
later. Instead the id carries what the row held: when it was issued, and a MAC binding it
to its repository under a secret only the registry's instances know. A row appears when a
chunk is acknowledged (its size and writer state must survive restarts), and when the
session ends, as a tombstone, so an ended id stays unknown; tombstones go with idle
sessions, once the id has expired anyway.

    <32 hex: random> <8 hex: issued, seconds since the epoch> <24 hex: HMAC-SHA256, truncated>

Sessions made before these ids (32 hex, a uuid4) keep working through their rows.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from datetime import UTC, datetime

__all__ = ["UploadIds"]

_ID = re.compile(r"(?P<nonce>[0-9a-f]{32})(?P<issued>[0-9a-f]{8})(?P<mac>[0-9a-f]{24})")
_LEGACY_ID = re.compile(r"[0-9a-f]{32}")
_MAC_HEX = 24


class UploadIds:
    def __init__(self, secret: bytes, max_idle_seconds: float):
        if len(secret) < 32:
            raise ValueError("the upload id secret needs at least 32 bytes")
        self._secret = secret
        self._max_idle = max_idle_seconds

    def issue(self, repo: str) -> tuple[str, datetime]:
        """A new id for a session in `repo`, and the moment it was issued."""
        nonce, issued = secrets.token_hex(16), int(time.time())
        stamp = f"{issued:08x}"
        return nonce + stamp + self._mac(repo, nonce, stamp), datetime.fromtimestamp(issued, UTC)

    def issued_at(self, repo: str, upload_id: str) -> datetime | None:
        """When `upload_id` was issued for `repo`; None when it was not issued for `repo`
        by a registry holding this secret (another repository's, forged, or a legacy id)."""
        match = _ID.fullmatch(upload_id)
        if match is None or not hmac.compare_digest(self._mac(repo, match["nonce"], match["issued"]), match["mac"]):
            return None
        return datetime.fromtimestamp(int(match["issued"], 16), UTC)

    def expired(self, issued: datetime) -> bool:
        """Whether a session issued then, with no row, is past the idle limit: the purge
        has removed (or would remove) whatever record it had, including its tombstone."""
        return time.time() - issued.timestamp() > self._max_idle

    def refuses(self, repo: str, upload_id: str) -> bool:
        """Whether `upload_id` can name no session of `repo`, its row unseen: it has neither
        shape this registry hands out, or it is a self-proving id not issued for `repo`.
        A legacy id is not refused here; only its row can tell."""
        if _LEGACY_ID.fullmatch(upload_id) is not None:
            return False
        return self.issued_at(repo, upload_id) is None

    def _mac(self, repo: str, nonce: str, stamp: str) -> str:
        message = f"{repo}\0{nonce}{stamp}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()[:_MAC_HEX]
