"""Named exclusive locks held across processes (and, with Redis, across instances).

Holders: an upload session while one request appends to it (`upload:<id>`), and a blob
digest while it is published and linked or swept by GC (`blob:<digest>`), so a sweep
never deletes content that a concurrent push has just linked.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import os
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Protocol

import anyio.to_thread

__all__ = ["LocalLocks", "Locks", "ProcessLocks"]


class Locks(Protocol):
    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold `key` exclusively until the block ends; waits while another holder has it."""


class ProcessLocks:
    """Locks among the tasks of one process: an asyncio lock per key, forgotten when
    nobody holds or waits for it. The other implementations queue a process's own
    contenders here first, so only one task per process waits on the shared lock."""

    def __init__(self) -> None:
        self._local: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._local.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._local[key]


class LocalLocks:
    """Locks for the processes of one machine: an asyncio lock inside the process, then
    `flock` on a file in `directory` between processes (released by the kernel when a
    holder dies, so a crash never leaves a lock behind)."""

    def __init__(self, directory: Path):
        self._dir = directory
        self._dir.mkdir(parents=True, exist_ok=True)
        self._process = ProcessLocks()
        self._kinds: set[str] = set()  # whose directories exist

    def _path(self, key: str) -> Path:
        # A fixed number of lock files per kind of key ("upload", "blob"): keys of one kind
        # share a file when their hashes collide in 3 hex digits, which costs a little
        # waiting, never correctness. Kinds never share, so an upload's holder may take a
        # blob lock; a holder must not take a second lock of the same kind.
        kind = key.partition(":")[0] or "other"
        directory = self._dir / kind
        if kind not in self._kinds:
            directory.mkdir(exist_ok=True)
            self._kinds.add(kind)
        return directory / hashlib.sha256(key.encode()).hexdigest()[:3]

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        async with self._process.hold(key):
            fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                try:
                    # Usually free: taking it here costs a system call, not a thread hop.
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    await anyio.to_thread.run_sync(fcntl.flock, fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # closing releases the flock
