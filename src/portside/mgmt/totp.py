"""Two-factor login (TOTP, RFC 6238) for interactive sign-in at /c/login.

Enabling takes two steps so a mistyped secret cannot lock anyone out: `start` stores the
secret as pending, `confirm` with a valid code turns it on. Registry clients and robots
never use TOTP; they sign in with their password or secret alone.

A code is accepted once: the user's row keeps the time step of the last code accepted, and
a code of that step or an earlier one is refused (RFC 6238 §5.2), so a code seen over a
shoulder or in a proxy's log cannot be played again. Code attempts are throttled like
passwords (`Authenticator.second_factor`). Turning two-factor off takes a current code,
from a signed-in web session: a password alone (Basic auth) cannot remove the second factor.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import pyotp

from portside.auth.authn import Authenticator
from portside.auth.principal import Principal
from portside.errors import BadRequest, Forbidden, Unauthorized
from portside.meta.accounts import AuditStore, User, UserStore, UserUpdate

__all__ = ["TotpService", "TotpEnrollment", "totp_enabled"]

# The users table has one column for the secret; a pending one carries this prefix.
_PENDING = "pending:"
ISSUER = "Portside"
# One step of clock drift either way, as authenticator apps expect.
_DRIFT_STEPS = 1


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    secret: str
    uri: str


def totp_enabled(user: User) -> bool:
    return bool(user.totp_secret) and not str(user.totp_secret).startswith(_PENDING)


def _matching_step(secret: str, code: str | None, now: float) -> int | None:
    """The time step whose code `code` is, within the drift allowed; None when none is."""
    totp = pyotp.TOTP(secret)
    text = (code or "").strip()
    if len(text) != totp.digits or not text.isascii() or not text.isdigit():
        return None
    current = totp.timecode(datetime.fromtimestamp(now, UTC))
    for step in range(current - _DRIFT_STEPS, current + _DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), text):
            return step
    return None


class TotpService:
    def __init__(self, users: UserStore, audit: AuditStore, authenticator: Authenticator):
        self._users = users
        self._audit = audit
        self._authenticator = authenticator

    @staticmethod
    def _user(who: Principal) -> User:
        if who.user is None:
            raise Unauthorized("sign in as a user") if not who.authenticated else Forbidden("robots have no TOTP")
        return who.user

    async def accept(self, user: User, code: str | None, client: str) -> None:
        """Check a sign-in's code for `user` (who enabled TOTP), throttled; each code once.
        Raises `Unauthorized`, or `TooManyRequests` after too many wrong codes."""

        async def valid() -> bool:
            step = _matching_step(str(user.totp_secret), code, time.time())
            return step is not None and await self._users.claim_totp_step(user.user_id, step)

        await self._authenticator.second_factor(user.username, client, valid)

    async def start(self, who: Principal) -> TotpEnrollment:
        user = await self._fresh(who)
        if totp_enabled(user):
            raise BadRequest("TOTP is already enabled; disable it first")
        secret = pyotp.random_base32()
        await self._users.update_user(user.user_id, UserUpdate(totp_secret=_PENDING + secret))
        uri = pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=ISSUER)
        return TotpEnrollment(secret, uri)

    async def confirm(self, who: Principal, code: str) -> None:
        user = await self._fresh(who)
        pending = user.totp_secret or ""
        if not pending.startswith(_PENDING):
            raise BadRequest("no TOTP enrollment is pending; POST first")
        secret = pending[len(_PENDING) :]
        step = _matching_step(secret, code, time.time())
        if step is None:
            raise BadRequest("the code does not match")
        await self._users.update_user(user.user_id, UserUpdate(totp_secret=secret))
        # The code that turned it on has been seen: it does not sign in as well.
        await self._users.claim_totp_step(user.user_id, step)
        await self._record(user)

    async def disable(self, who: Principal, code: str | None, *, from_session: bool, client: str) -> None:
        """Turn two-factor sign-in off: from a signed-in web session, with a current code."""
        user = await self._fresh(who)
        if not totp_enabled(user):
            if user.totp_secret:  # an enrollment never confirmed: it protected nothing yet
                await self._users.update_user(user.user_id, UserUpdate(clear_totp=True))
            return
        if not from_session:
            raise Forbidden("two-factor sign-in is turned off from a signed-in web session, with a current code")
        await self.accept(user, code, client)
        await self._users.update_user(user.user_id, UserUpdate(clear_totp=True))
        await self._record(user)

    async def _record(self, user: User) -> None:
        await self._audit.record(
            project_id=None, username=user.username, operation="update", resource_type="user", resource=user.username
        )

    async def _fresh(self, who: Principal) -> User:
        user = await self._users.get_user(self._user(who).user_id)
        if user is None:
            raise Unauthorized("the account no longer exists")
        return user
