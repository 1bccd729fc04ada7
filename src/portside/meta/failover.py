"""Failover URLs of registries: other URLs of the same registry (a mirror, a second
region), tried in order after its own when it does not answer. Kept beside the registries
store rather than in it: only the pull-through cache reads them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["FailoverStore"]


class FailoverStore(Protocol):
    async def failover_urls(self, registry_id: int) -> list[str]:
        """In the order they are tried ([] when none, or no such registry)."""

    async def set_failover_urls(self, registry_id: int, urls: Sequence[str]) -> None:
        """Replace them all (the registry must exist)."""
