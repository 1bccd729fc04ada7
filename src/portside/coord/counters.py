"""Generations: numbers that move after every committed change of one kind of metadata.

A SQL store bumps one from its after-commit hook; a cache asks it (as a `ChangeCounter`)
before trusting what it remembered. Two kinds exist: the registry's (manifests and tags,
for `registry.cache.ManifestCache`) and the accounts' (users and robots, for the
authenticator's remembered credentials).
"""

from __future__ import annotations

from typing import Protocol

from portside.meta.stores import ChangeCounter

__all__ = ["Generation", "LocalChangeCounter"]


class Generation(ChangeCounter, Protocol):
    async def bump(self) -> None:
        """Move the generation; returns once every later `current()` anywhere sees it."""


class LocalChangeCounter:
    """A generation inside one process: what a single server process needs, and all that
    one machine without Redis had before (each process notices only its own changes)."""

    def __init__(self) -> None:
        self._value = 0

    async def current(self) -> int | None:
        return self._value

    async def bump(self) -> None:
        self._value += 1
