"""Coordination of several instances through one shared Redis.

Keys, all under the deployment's prefix (`redis_key_prefix`):

    lock:<key>          a held lock: SET NX PX <lease> to the holder's random token; the
                        holder renews the lease while it holds, and a holder that dies
                        loses the lock when the lease runs out
    gen:registry        the registry's generation: INCR after each commit that changes a
                        manifest or tag (the manifest caches ask it on every lookup)
    gen:accounts        the accounts' generation: INCR after each committed account or
                        robot change (the authenticators ask it on every login)
    throttle:<key>      recent failed attempts of a key (an account, an address): a sorted
                        set of failure times (milliseconds, Redis's own clock, so instances'
                        clocks need not agree), one member per failure counted

A generation that is missing (Redis restarted, or evicted the key) starts again from a
random number, never from a value a cache may still hold.

Every call has a deadline (the client's socket timeouts, one retry). A Redis that does not
answer becomes `errors.Unavailable` (503), and for a moment after that, calls fail at once
rather than each waiting out the timeout. Reading a generation is the exception: it then
answers None ("cannot tell"), so caches go to the database, which is slower but correct.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from portside.auth.throttle import Reservation, too_many_failures
from portside.coord.locks import ProcessLocks
from portside.errors import Unavailable

__all__ = ["RedisChangeCounter", "RedisCoordinator", "RedisLink", "RedisLocks", "RedisLoginThrottle"]

log = logging.getLogger("portside.coord")

_RETRY_AFTER = {"Retry-After": "1"}


class RedisLink:
    """The client, the key prefix, and the translation of an unreachable Redis."""

    def __init__(self, client: Redis, prefix: str, cooldown: float = 1.0):
        self.client = client
        self.prefix = prefix
        self._cooldown = cooldown
        self._down_until = 0.0

    def key(self, kind: str, name: str) -> str:
        return f"{self.prefix}{kind}:{name}"

    @asynccontextmanager
    async def calling(self, *, insist: bool = False) -> AsyncIterator[None]:
        """Run Redis calls; an unreachable Redis raises `Unavailable`, and so does every
        call for `cooldown` seconds after (`insist`: try anyway, to let go of a lock)."""
        if not insist and time.monotonic() < self._down_until:
            raise Unavailable("the shared Redis is unreachable; try again shortly", headers=_RETRY_AFTER)
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError) as error:
            if time.monotonic() >= self._down_until:
                log.warning("Redis did not answer: %s", error)
            self._down_until = time.monotonic() + self._cooldown
            raise Unavailable("the shared Redis did not answer; try again shortly", headers=_RETRY_AFTER) from error


# --- locks --------------------------------------------------------------------------------

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisLocks:
    """`Locks` across instances. A process's own contenders queue on an asyncio lock
    first; the one in front polls Redis with a growing wait (`first_wait` up to
    `max_wait`, jittered). Leases are `lease` seconds, renewed every third of that."""

    def __init__(self, link: RedisLink, lease: float = 30.0, *, first_wait: float = 0.005, max_wait: float = 0.25):
        self._link = link
        self._lease_ms = max(1, int(lease * 1000))
        self._renew_every = lease / 3
        self._first_wait = first_wait
        self._max_wait = max_wait
        self._process = ProcessLocks()
        self._renew = link.client.register_script(_RENEW)
        self._release = link.client.register_script(_RELEASE)

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self._process.hold(key):
            name = self._link.key("lock", key)
            token = secrets.token_hex(16)
            await self._acquire(name, token)
            released = asyncio.Event()
            keeper = asyncio.create_task(self._keep(name, token, released), name=f"lease of {name}")
            try:
                yield
            finally:
                # Told to stop, not cancelled: a cancellation that lands inside a renewal is
                # turned by the Redis client into a connection error, which the keeper takes
                # for an unreachable Redis and waits out; the holder then waited for it for
                # ever. A renewal under way ends within the client's timeouts.
                released.set()
                await asyncio.wait([keeper])
                await self._let_go(name, token)

    async def _acquire(self, name: str, token: str) -> None:
        wait = self._first_wait
        try:
            while True:
                async with self._link.calling():
                    if await self._link.client.set(name, token, nx=True, px=self._lease_ms):
                        return
                    # A SET whose reply was lost and that the client then sent again finds
                    # the lock taken, by this very token: it is ours.
                    if await self._link.client.get(name) == token.encode():
                        return
                await asyncio.sleep(wait * random.uniform(0.5, 1.0))
                wait = min(wait * 2, self._max_wait)
        except asyncio.CancelledError:
            # A SET cut short may still have taken the lock.
            await self._let_go(name, token)
            raise

    async def _keep(self, name: str, token: str, released: asyncio.Event) -> None:
        """Renew the lease every third of it until the holder lets go (`released`)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(released.wait(), self._renew_every)
            if released.is_set():
                return
            try:
                async with self._link.calling(insist=True):
                    kept = await self._renew(keys=[name], args=[token, self._lease_ms])
            except Unavailable:
                continue  # the lease still runs; the next attempt may reach Redis again
            if not kept:
                log.error("lock %s was lost: its lease ran out before it could be renewed", name)
                return

    async def _let_go(self, name: str, token: str) -> None:
        try:
            async with self._link.calling(insist=True):
                await self._release(keys=[name], args=[token])
        except Unavailable:
            log.warning("could not release lock %s; it frees itself when its lease runs out", name)


# --- generations --------------------------------------------------------------------------

_BUMP = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('SET', KEYS[1], ARGV[1])
end
return redis.call('INCR', KEYS[1])
"""


class RedisChangeCounter:
    """A generation every instance reads and bumps (a `coord.counters.Generation`)."""

    def __init__(self, link: RedisLink, name: str):
        self._link = link
        self._key = link.key("gen", name)
        self._bump = link.client.register_script(_BUMP)
        self._missed = False

    async def current(self) -> int | None:
        try:
            if self._missed:
                await self._increment()
                self._missed = False
            async with self._link.calling():
                value = await self._link.client.get(self._key)
            return int(value) if value is not None else await self._increment()
        except Unavailable:
            return None

    async def bump(self) -> None:
        try:
            await self._increment()
        except Unavailable as error:
            # Told at this instance's next use of Redis; until then others may serve
            # what they remembered, so the writer hears of it.
            self._missed = True
            raise Unavailable(
                "the change is saved, but the shared Redis did not answer, so other instances may not see"
                " it yet; try again shortly",
                headers=_RETRY_AFTER,
            ) from error

    async def _increment(self) -> int:
        async with self._link.calling():
            # A fresh start is random: never a number some cache may still hold.
            return int(await self._bump(keys=[self._key], args=[secrets.randbelow(2**53)]))


# --- login throttle -----------------------------------------------------------------------

# Each key is a sorted set of failure times (Redis's own clock, in milliseconds), one
# member per counted failure (its reservation's mark), expiring with its window. One
# script checks every key and counts the attempt against all of them, or against none:
# Redis runs it whole, so parallel attempts through any instances are counted exactly.
_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
"""

# The wait (ms) until each key is under its limit: once fewer than `limit` failures are
# left, that is when the one at index count - limit leaves the window.
_WAIT = """
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  local excess = redis.call('ZCARD', key) - limit
  if excess >= 0 then
    local oldest = redis.call('ZRANGE', key, excess, excess, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now)
  end
end
"""

_CHECK = _NOW_MS + _WAIT + "return wait\n"

_RESERVE = (
    _NOW_MS
    + _WAIT
    + """
if wait > 0 then
  return wait
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, ARGV[3])
  redis.call('PEXPIRE', key, window)
end
return 0
"""
)

_RELEASE_FAILURE = """
for _, key in ipairs(KEYS) do
  redis.call('ZREM', key, ARGV[1])
end
return 0
"""


class RedisLoginThrottle:
    """`auth.throttle.Throttle` shared by every instance, with `LoginThrottle`'s rules:
    `limit` failures per `window` seconds, then wait until the oldest of the last `limit`
    leaves the window. Each key keeps at most `limit` failures and expires with its window."""

    def __init__(self, link: RedisLink, limit: int, window: float):
        self._link = link
        self.limit = limit
        self.window = window
        self._window_ms = max(1, int(window * 1000))
        self._check = link.client.register_script(_CHECK)
        self._reserve = link.client.register_script(_RESERVE)
        self._release = link.client.register_script(_RELEASE_FAILURE)

    def _keys(self, keys: Iterable[str]) -> list[str]:
        return [self._link.key("throttle", k) for k in keys]

    async def check(self, keys: Iterable[str]) -> None:
        async with self._link.calling():
            wait_ms = int(await self._check(keys=self._keys(dict.fromkeys(keys)), args=[self._window_ms, self.limit]))
        if wait_ms > 0:
            raise too_many_failures(wait_ms / 1000)

    async def reserve(self, keys: Iterable[str]) -> Reservation:
        reservation = Reservation(tuple(dict.fromkeys(keys)), secrets.randbits(63))
        async with self._link.calling():
            wait_ms = int(
                await self._reserve(
                    keys=self._keys(reservation.keys), args=[self._window_ms, self.limit, reservation.mark]
                )
            )
        if wait_ms > 0:
            raise too_many_failures(wait_ms / 1000)
        return reservation

    async def release(self, reservation: Reservation) -> None:
        async with self._link.calling():
            await self._release(keys=self._keys(reservation.keys), args=[reservation.mark])

    async def forget(self, key: str) -> None:
        async with self._link.calling():
            await self._link.client.delete(self._link.key("throttle", key))


# --- all of it ----------------------------------------------------------------------------


class RedisCoordinator:
    """What the instances of one deployment share through Redis (a `coord.Coordinator`).

    One per server process. The client connects on first use; `check()` pings (for start
    up and readiness), `close()` closes its connections."""

    shared = True

    def __init__(self, client: Redis, prefix: str, *, lock_lease: float = 30.0, cooldown: float = 1.0):
        self._link = RedisLink(client, prefix, cooldown)
        self.locks = RedisLocks(self._link, lock_lease)
        self.registry_changes = RedisChangeCounter(self._link, "registry")
        self.account_changes = RedisChangeCounter(self._link, "accounts")
        self.scan_changes = RedisChangeCounter(self._link, "scans")

    @classmethod
    def from_url(
        cls, url: str, prefix: str, *, timeout: float = 1.0, lock_lease: float = 30.0, cooldown: float = 1.0
    ) -> RedisCoordinator:
        """`timeout`: seconds a connection or a reply may take; one retry at most."""
        client = Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 1)
        )
        return cls(client, prefix, lock_lease=lock_lease, cooldown=cooldown)

    @classmethod
    async def open(cls, url: str, prefix: str, *, timeout: float = 1.0, lock_lease: float = 30.0) -> RedisCoordinator:
        """`from_url`, then a ping: raises `Unavailable` when Redis does not answer."""
        coordinator = cls.from_url(url, prefix, timeout=timeout, lock_lease=lock_lease)
        try:
            await coordinator.check()
        except BaseException:
            await coordinator.close()
            raise
        return coordinator

    def login_throttle(self, limit: int, window: float) -> RedisLoginThrottle:
        return RedisLoginThrottle(self._link, limit, window)

    async def check(self) -> None:
        async with self._link.calling(insist=True):
            await self._link.client.ping()

    async def close(self) -> None:
        await self._link.client.aclose()
