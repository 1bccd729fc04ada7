"""Throttling of failed logins, per account and per client address.

Each key may fail `limit` times within `window` seconds; after that it must wait until
the oldest of its last `limit` failures leaves the window. `LoginThrottle` counts in this
process; several instances share their counts through Redis (`coord.redis`), with the
same rules.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

from portside.errors import TooManyRequests

__all__ = ["LoginThrottle", "Throttle", "too_many_failures"]


class Throttle(Protocol):
    async def check(self, keys: Iterable[str]) -> None:
        """Raise `TooManyRequests` (with Retry-After) when any key has failed too often."""

    async def failed(self, keys: Iterable[str]) -> None: ...

    async def succeeded(self, account_key: str) -> None:
        """Forget the failures of `account_key` (an address keeps its own)."""


def too_many_failures(wait: float) -> TooManyRequests:
    """The error for a caller that must wait `wait` seconds more."""
    seconds = max(1, math.ceil(wait))
    return TooManyRequests(
        f"too many failed logins; try again in {seconds} seconds", headers={"Retry-After": str(seconds)}
    )


class LoginThrottle:
    def __init__(self, limit: int = 5, window: float = 300.0, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        horizon = self._clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    async def check(self, keys: Iterable[str]) -> None:
        wait = 0.0
        for key in keys:
            failures = self._recent(key)
            if len(failures) >= self.limit:
                wait = max(wait, failures[0] + self.window - self._clock())
        if wait > 0:
            raise too_many_failures(wait)

    async def failed(self, keys: Iterable[str]) -> None:
        when = self._clock()
        for key in keys:
            self._failures.setdefault(key, deque()).append(when)
            # Bound memory: a key never needs more than `limit` remembered failures.
            while len(self._failures[key]) > self.limit:
                self._failures[key].popleft()

    async def succeeded(self, account_key: str) -> None:
        self._failures.pop(account_key, None)
