"""Everything server processes share, in one object: `LocalCoordinator` for one machine,
`coord.redis.RedisCoordinator` for several instances over one Redis."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from portside.auth.throttle import Throttle
from portside.coord.counters import Generation, MachineChangeCounter
from portside.coord.locks import LocalLocks, Locks
from portside.coord.throttle import MachineLoginThrottle

__all__ = ["Coordinator", "LocalCoordinator"]


class Coordinator(Protocol):
    @property
    def shared(self) -> bool:
        """Whether the generations reach every process and instance (else: this process)."""

    @property
    def locks(self) -> Locks: ...

    @property
    def registry_changes(self) -> Generation:
        """Bumped after commits that change manifests or tags (`SqlDatabase`'s hook)."""

    @property
    def account_changes(self) -> Generation:
        """Bumped after committed account and robot changes (`SqlAccounts`' hook)."""

    @property
    def scan_changes(self) -> Generation:
        """Bumped after commits that change what scans found or their reports' state
        (`SqlScans`' hook): the pull policies' verdicts are kept while it stands."""

    def login_throttle(self, limit: int, window: float) -> Throttle: ...

    async def check(self) -> None:
        """Raise `Unavailable` when what is shared cannot be reached."""

    async def close(self) -> None: ...


class LocalCoordinator:
    """One machine without Redis: `flock` locks, memory-mapped generations and a
    memory-mapped table of failed attempts, shared by its processes (server workers and
    CLI commands alike)."""

    shared = False

    def __init__(self, lock_directory: Path):
        self._directory = lock_directory
        self.locks = LocalLocks(lock_directory)
        self.registry_changes = MachineChangeCounter(lock_directory / "registry.generation")
        self.account_changes = MachineChangeCounter(lock_directory / "accounts.generation")
        self.scan_changes = MachineChangeCounter(lock_directory / "scans.generation")
        self._throttles: list[MachineLoginThrottle] = []

    def login_throttle(self, limit: int, window: float) -> MachineLoginThrottle:
        throttle = MachineLoginThrottle(self._directory / "attempts.table", limit, window)
        self._throttles.append(throttle)
        return throttle

    async def check(self) -> None:
        return None

    async def close(self) -> None:
        self.registry_changes.close()
        self.account_changes.close()
        self.scan_changes.close()
        for throttle in self._throttles:
            throttle.close()
