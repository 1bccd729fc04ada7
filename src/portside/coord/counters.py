"""Generations: numbers that move after every committed change of one kind of metadata.

A SQL store bumps one from its after-commit hook; a cache asks it (as a `ChangeCounter`)
before trusting what it remembered. Two kinds exist: the registry's (manifests and tags,
for `registry.cache.ManifestCache`) and the accounts' (users and robots, for the
authenticator's remembered credentials).
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path
from typing import Protocol

from portside.meta.stores import ChangeCounter

__all__ = ["Generation", "MachineChangeCounter"]

_COUNTER = struct.Struct("<Q")


class Generation(ChangeCounter, Protocol):
    async def bump(self) -> None:
        """Move the generation; returns once every later `current()` anywhere sees it."""


class MachineChangeCounter:
    """A generation shared by every process of one machine: eight bytes of a file that each
    process maps into memory, so reading it is a memory read (the hottest requests ask it
    every time) and a bump is seen by every process at once.

    Bumps take `flock` for the read-modify-write; reads take nothing: an aligned 8-byte
    read is atomic on the machines Portside runs on, and a value caught mid-change could
    only read as different, which costs a cache refill, never a stale answer. A process
    bumps once when it starts, in case the one it replaces died between a commit and
    its bump."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if os.fstat(self._fd).st_size < _COUNTER.size:
                os.ftruncate(self._fd, _COUNTER.size)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._map = mmap.mmap(self._fd, _COUNTER.size)
        self._bump()

    async def current(self) -> int | None:
        return int(_COUNTER.unpack_from(self._map)[0])

    async def bump(self) -> None:
        self._bump()

    def _bump(self) -> None:
        # Microseconds under a lock only writers take; not worth a thread hop.
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            value = _COUNTER.unpack_from(self._map)[0]
            _COUNTER.pack_into(self._map, 0, (value + 1) % 2**64)
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
