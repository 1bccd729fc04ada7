"""Two-factor login (TOTP, RFC 6238) for interactive sign-in at /c/login.

Enabling takes two steps so a mistyped secret cannot lock anyone out: `start` stores the
secret as pending, `confirm` with a valid code turns it on. Registry clients and robots
never use TOTP; they sign in with their password or secret alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyotp

from portside.auth.principal import Principal
from portside.errors import BadRequest, Forbidden, Unauthorized
from portside.meta.accounts import AuditStore, User, UserStore, UserUpdate

__all__ = ["TotpService", "TotpEnrollment", "totp_enabled", "totp_accepts"]

# The users table has one column for the secret; a pending one carries this prefix.
_PENDING = "pending:"
ISSUER = "Portside"


@dataclass(frozen=True, slots=True)
class TotpEnrollment:
    secret: str
    uri: str


def totp_enabled(user: User) -> bool:
    return bool(user.totp_secret) and not str(user.totp_secret).startswith(_PENDING)


def totp_accepts(user: User, code: str | None) -> bool:
    if not totp_enabled(user) or not code:
        return False
    # One step of clock drift either way, as authenticator apps expect.
    return pyotp.TOTP(str(user.totp_secret)).verify(code.strip(), valid_window=1)


class TotpService:
    def __init__(self, users: UserStore, audit: AuditStore):
        self._users = users
        self._audit = audit

    @staticmethod
    def _user(who: Principal) -> User:
        if who.user is None:
            raise Unauthorized("sign in as a user") if not who.authenticated else Forbidden("robots have no TOTP")
        return who.user

    async def start(self, who: Principal) -> TotpEnrollment:
        user = self._user(who)
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
        if not pyotp.TOTP(secret).verify(code.strip(), valid_window=1):
            raise BadRequest("the code does not match")
        await self._users.update_user(user.user_id, UserUpdate(totp_secret=secret))
        await self._audit.record(
            project_id=None, username=user.username, operation="update", resource_type="user", resource=user.username
        )

    async def disable(self, who: Principal) -> None:
        user = await self._fresh(who)
        await self._users.update_user(user.user_id, UserUpdate(clear_totp=True))
        await self._audit.record(
            project_id=None, username=user.username, operation="update", resource_type="user", resource=user.username
        )

    async def _fresh(self, who: Principal) -> User:
        user = await self._users.get_user(self._user(who).user_id)
        if user is None:
            raise Unauthorized("the account no longer exists")
        return user
