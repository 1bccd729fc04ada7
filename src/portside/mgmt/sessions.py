"""Web UI sessions: Harbor's `/c/login` and `/c/log_out`, and the CSRF token that guards
cookie-authenticated changes.

The cookie holds a random id; the store keeps only its SHA-256, so reading the database
does not open sessions. Each session has its own CSRF token, which the UI echoes in the
X-Harbor-CSRF-Token header: a cross-site form can send the cookie but cannot read the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portside.auth.authn import Authenticator
from portside.auth.principal import Principal
from portside.errors import Unauthorized
from portside.meta.accounts import UserStore
from portside.meta.sessions import SessionStore, WebSession
from portside.mgmt.totp import TotpService, totp_enabled

__all__ = ["SessionService", "OpenSession", "SignedIn"]


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class OpenSession:
    session_id: str  # for the cookie; never stored
    csrf_token: str
    max_age: int


@dataclass(frozen=True, slots=True)
class SignedIn:
    principal: Principal
    csrf_token: str


class SessionService:
    def __init__(
        self,
        store: SessionStore,
        users: UserStore,
        authenticator: Authenticator,
        totp: TotpService,
        ttl_seconds: int,
    ):
        self._store = store
        self._users = users
        self._authenticator = authenticator
        self._totp = totp
        self.ttl_seconds = ttl_seconds

    async def login(self, username: str, password: str, totp: str | None, client: str) -> OpenSession:
        """Check the password (throttled), then the TOTP code when the user enabled it."""
        principal = await self._authenticator.login(username, password, client)
        if principal.user is None:
            raise Unauthorized("robot accounts cannot sign in to the web UI")
        if totp_enabled(principal.user):
            await self._totp.accept(principal.user, totp, client)
        session_id = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = datetime.now(UTC) + timedelta(seconds=self.ttl_seconds)
        await self._store.create_session(WebSession(_hash(session_id), principal.user.user_id, csrf, expires))
        return OpenSession(session_id, csrf, self.ttl_seconds)

    async def resolve(self, session_id: str) -> SignedIn | None:
        session = await self._store.get_session(_hash(session_id))
        if session is None:
            return None
        user = await self._users.get_user(session.user_id)
        if user is None:
            return None
        return SignedIn(Principal.of_user(user), session.csrf_token)

    async def logout(self, session_id: str) -> None:
        await self._store.delete_session(_hash(session_id))

    async def purge_expired(self) -> int:
        return await self._store.purge_sessions(datetime.now(UTC))

    @staticmethod
    def csrf_matches(expected: str, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(expected, presented)
