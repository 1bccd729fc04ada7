"""Checking credentials: user passwords (argon2) and robot secrets, with throttling.

Registry clients send the same Basic credentials on many requests; a verified pair is
remembered for a short time (by a keyed hash, never the password) so argon2's deliberate
slowness is paid once per client, not once per request.

What is remembered is dropped whenever an account changes anywhere: `account_changes`
moves on every committed account or robot change (a shared generation in Redis when
several instances serve), and it is asked on every login. A password changed, a user
deleted or a robot's secret refreshed through one instance is refused by all at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

import anyio.to_thread

from portside.auth.passwords import hash_password, needs_rehash, unmatchable_hash, verify_password, verify_secret
from portside.auth.policy import robot_active
from portside.auth.principal import Principal
from portside.auth.throttle import Throttle
from portside.errors import Unauthorized
from portside.meta.accounts import AuditStore, RobotStore, UserStore
from portside.meta.stores import ChangeCounter

__all__ = ["Authenticator", "ROBOT_PREFIX"]

log = logging.getLogger("portside.auth")

ROBOT_PREFIX = "robot$"
_REMEMBER_SECONDS = 60.0
_REMEMBERED_MAX = 10_000
# What an account's name can be: as long as the name columns (and the audit log's), no NUL.
_NAME_LENGTH = 255


def _could_be_a_name(username: str) -> bool:
    return len(username) <= _NAME_LENGTH and "\0" not in username


class Authenticator:
    def __init__(
        self,
        users: UserStore,
        robots: RobotStore,
        audit: AuditStore,
        throttle: Throttle,
        account_changes: ChangeCounter | None = None,
    ):
        self._users = users
        self._robots = robots
        self._audit = audit
        self._throttle = throttle
        self._account_changes = account_changes
        self._cache_key = secrets.token_bytes(32)
        self._verified: dict[bytes, float] = {}  # fingerprint → when it must be checked again
        self._generation: int | None = None
        self._flights: dict[bytes, asyncio.Future[Principal | None]] = {}

    def _fingerprint(self, username: str, password: str) -> bytes:
        return hmac.new(self._cache_key, f"{username}\0{password}".encode(), hashlib.sha256).digest()

    async def login(self, username: str, password: str, client: str = "", *, audit: bool = True) -> Principal:
        """The principal these credentials name; raises `Unauthorized` or `TooManyRequests`."""
        keys = (f"account:{username}", f"client:{client}")
        generation = await self._accounts_generation()
        fingerprint = self._fingerprint(username, password)
        fresh = self._verified.get(fingerprint, 0.0) > time.monotonic()
        if fresh:
            # Verified moments ago: right, so nothing to count, but refused while throttled.
            await self._throttle.check(keys)
            principal = await self._check(username, password, trust_secret=True)
        else:
            principal = await self._verify_once(fingerprint, username, password, keys)
        if principal is None:
            self._verified.pop(fingerprint, None)
            if audit:
                await self._record_login(username, client, success=False)
            raise Unauthorized("invalid username or password")
        await self._throttle.forget(keys[0])
        if not fresh:
            # Only remember a verification when no change was noticed while it ran: it may
            # have read the account as it was before that change.
            if generation is not None and await self._accounts_generation() == generation:
                if len(self._verified) >= _REMEMBERED_MAX:
                    self._verified.clear()
                self._verified[fingerprint] = time.monotonic() + _REMEMBER_SECONDS
            if audit:
                await self._record_login(username, client, success=True)
        return principal

    async def second_factor(self, username: str, client: str, valid: Callable[[], Awaitable[bool]]) -> None:
        """Check a second factor of `username` (a TOTP code, which `valid` checks), throttled
        as passwords are: per account and per address, with the same limit, so that a
        caller who knows the password cannot try every code. Raises `Unauthorized`, or
        `TooManyRequests` (even for a right code) once the limit is reached."""
        account = f"totp:{username}"
        reservation = await self._throttle.reserve((account, f"client:{client}"))
        try:
            right = await valid()
        except BaseException:
            await self._throttle.release(reservation)  # not judged: it did not fail
            raise
        if not right:
            await self._record_login(username, client, success=False)
            raise Unauthorized("a valid TOTP code is required", detail={"totp": "required"})
        await self._throttle.release(reservation)
        await self._throttle.forget(account)

    async def _verify_once(
        self, fingerprint: bytes, username: str, password: str, keys: tuple[str, ...]
    ) -> Principal | None:
        """Check the credentials, sharing one check among the requests that bring the same
        ones at the same time (a client's parallel layer uploads, a fleet's pulls when the
        remembered verification runs out): argon2 is meant to be slow, and N checks of one
        password would cost N times that for nothing. One guess, so one failure counted
        (against the keys of the request that started the check)."""
        flight = self._flights.get(fingerprint)
        if flight is None:
            flight = asyncio.ensure_future(self._counted_check(username, password, keys))
            self._flights[fingerprint] = flight
            flight.add_done_callback(lambda _done: self._flights.pop(fingerprint, None))
        else:
            # The guess is counted once, against the keys of the request that started the
            # check; this request's own address must be under its limit all the same.
            await self._throttle.check(keys[1:])
        # Shielded: one waiter giving up (its client left) must not cancel the others' check.
        return await asyncio.shield(flight)

    async def _counted_check(self, username: str, password: str, keys: tuple[str, ...]) -> Principal | None:
        """`_check`, counted as a failure before it is judged (auth/throttle.py) and taken
        back when the credentials are right."""
        reservation = await self._throttle.reserve(keys)
        try:
            principal = await self._check(username, password, trust_secret=False)
        except Exception:
            await self._throttle.release(reservation)  # not judged: no failure
            raise
        if principal is not None:
            await self._throttle.release(reservation)
        return principal

    async def _accounts_generation(self) -> int | None:
        """The accounts' generation; what is remembered is dropped when it moved, and when
        it cannot be told (None: nothing is remembered then). Without a counter, constant."""
        if self._account_changes is None:
            return 0
        generation = await self._account_changes.current()
        if generation is None or generation != self._generation:
            self._verified.clear()
            self._generation = generation
        return generation

    async def _record_login(self, username: str, client: str, success: bool) -> None:
        if not _could_be_a_name(username):  # a failed attempt with a name no account has
            username = username[:_NAME_LENGTH].replace("\0", "\ufffd")
        await self._audit.record(
            project_id=None,
            username=username,
            operation="login",
            resource_type="user",
            resource=username,
            client=client,
            success=success,
        )

    async def _check(self, username: str, password: str, *, trust_secret: bool) -> Principal | None:
        # The account is read every time, so a deleted user or disabled robot stops at once.
        if not _could_be_a_name(username):
            return None
        if username.startswith(ROBOT_PREFIX):
            robot = await self._robots.get_robot(username)
            if robot is None or not robot_active(robot):
                return None
            if not (trust_secret or verify_secret(robot.secret_hash, password)):
                return None
            return Principal.of_robot(robot)
        user = await self._users.get_user(username)
        if user is None:
            # As long as for a user who exists: how long a wrong password takes must not tell
            # which names are taken.
            await anyio.to_thread.run_sync(verify_password, unmatchable_hash(), password)
            return None
        # argon2 takes tens of milliseconds of CPU on purpose: off the event loop.
        if not (trust_secret or await anyio.to_thread.run_sync(verify_password, user.password_hash, password)):
            return None
        if not trust_secret and needs_rehash(user.password_hash):
            await self._rehash(user.user_id, user.password_hash, password)
        return Principal.of_user(user)

    async def _rehash(self, user_id: int, old_hash: str, password: str) -> None:
        """Hash a verified password again with the current parameters (a hash made with
        older, costlier ones costs every login, and memory, until then)."""
        try:
            new_hash = await anyio.to_thread.run_sync(hash_password, password)
            await self._users.replace_password_hash(user_id, old_hash, new_hash)
        except Exception:  # the login stands; the next one tries again
            log.exception("could not store user %d's password hash with the current parameters", user_id)

    async def principal(self, kind: str, key: int | str) -> Principal | None:
        """Look a principal up again by id or name (for a token's subject); None when it is
        gone or disabled."""
        if kind == "robot":
            robot = await self._robots.get_robot(key)
            return Principal.of_robot(robot) if robot and robot_active(robot) else None
        user = await self._users.get_user(key)
        return Principal.of_user(user) if user else None
