"""Throttling of failed attempts (logins, and anything else guessed), per opaque key.

The keys are opaque strings: an account (`account:<name>`), a client address
(`client:<address>`), or whatever else a caller counts guesses against. Each key may fail
`limit` times within `window` seconds; after that every attempt naming it is refused
until the oldest of its last `limit` failures leaves the window.

The limit is exact, even for attempts made at the same time: an attempt counts its
failure *before* it is judged, in one step with the check (`reserve`), and takes it back
when it turns out not to have failed (`release`). Checking first and counting after the
answer would let every attempt that arrives while the others are still being judged
(a password check takes tens of milliseconds) pass the check. An attempt whose process
dies before it is judged stays counted as a failure: the safe side.

    reservation = await throttle.reserve(keys)   # TooManyRequests (Retry-After) when over
    if not await correct():
        raise Unauthorized(...)                    # the failure is already counted
    await throttle.release(reservation)
    await throttle.forget(account_key)            # a success forgets the account's failures

`check` refuses as `reserve` does without counting anything, for an attempt known to be
right without judging it again (credentials verified moments ago).

`LoginThrottle` counts in this process: the reference implementation, for tests and
single-process use. The servers share their counts: `coord.throttle.MachineLoginThrottle`
between the processes of one machine, `coord.redis.RedisLoginThrottle` between instances.
"""

from __future__ import annotations

import itertools
import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from portside.errors import TooManyRequests

__all__ = ["LoginThrottle", "Reservation", "Throttle", "too_many_failures"]


@dataclass(frozen=True)
class Reservation:
    """A failure counted in advance against each of `keys`; `mark` tells it apart from
    the others (what it is depends on the implementation)."""

    keys: tuple[str, ...]
    mark: int


class Throttle(Protocol):
    async def check(self, keys: Iterable[str]) -> None:
        """Raise `TooManyRequests` (with Retry-After) when any key is at its limit."""

    async def reserve(self, keys: Iterable[str]) -> Reservation:
        """Count one failure against every key, in one step with `check`: when a key is
        at its limit, raise as `check` does and count nothing."""

    async def release(self, reservation: Reservation) -> None:
        """Take back the failure `reserve` counted (the attempt did not fail)."""

    async def forget(self, key: str) -> None:
        """Forget every failure of `key`."""


def too_many_failures(wait: float) -> TooManyRequests:
    """The error for a caller that must wait `wait` seconds more."""
    seconds = max(1, math.ceil(wait))
    return TooManyRequests(
        f"too many failed attempts; try again in {seconds} seconds", headers={"Retry-After": str(seconds)}
    )


def until_under_limit(times: list[float], limit: int, window: float, now: float) -> float:
    """How long until fewer than `limit` of `times` (oldest first, all within the window)
    remain in it: 0 when already fewer."""
    excess = len(times) - limit
    return 0.0 if excess < 0 else times[excess] + window - now


class LoginThrottle:
    """`Throttle` in this process's memory: each key's recent failures, at most `limit`."""

    def __init__(self, limit: int = 5, window: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[tuple[float, int]]] = {}  # key → (time, mark), oldest first
        self._marks = itertools.count(1)

    def _recent(self, key: str, now: float) -> deque[tuple[float, int]]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0][0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def _wait(self, keys: Iterable[str], now: float) -> float:
        return max(
            (until_under_limit([t for t, _ in self._recent(key, now)], self.limit, self.window, now) for key in keys),
            default=0.0,
        )

    async def check(self, keys: Iterable[str]) -> None:
        now = self._clock()
        wait = self._wait(keys, now)
        if wait > 0:
            raise too_many_failures(wait)

    async def reserve(self, keys: Iterable[str]) -> Reservation:
        # No await between the check and the count: atomic among this process's tasks.
        reservation = Reservation(tuple(keys), next(self._marks))
        now = self._clock()
        wait = self._wait(reservation.keys, now)
        if wait > 0:
            raise too_many_failures(wait)
        for key in reservation.keys:
            self._failures.setdefault(key, deque()).append((now, reservation.mark))
        return reservation

    async def release(self, reservation: Reservation) -> None:
        for key in reservation.keys:
            failures = self._failures.get(key)
            if failures is None:
                continue
            kept = deque(entry for entry in failures if entry[1] != reservation.mark)
            if kept:
                self._failures[key] = kept
            else:
                del self._failures[key]

    async def forget(self, key: str) -> None:
        self._failures.pop(key, None)
