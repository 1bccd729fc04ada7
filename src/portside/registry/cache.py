"""In-memory caches of registry lookups (manifests, blob links), for the data plane's
hottest requests.

Correctness comes first: the whole cache is dropped whenever manifests or tags changed
anywhere (a `ChangeCounter` moved), and a lookup is only cached when nothing changed while
it ran. The counter is asked on every lookup, hit or miss, so a tag moved through another
instance is seen by the next request after the push was answered (read-your-writes across
instances). Under a steady pull load that means one database read per key per change;
under a push storm it means no caching, which is still correct.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from portside.meta.stores import ChangeCounter, ManifestRecord
from portside.oci.digest import Digest

__all__ = ["LookupCache", "ManifestCache", "BlobSizeCache"]

V = TypeVar("V")


class LookupCache(Generic[V]):
    """Found values by (repository, reference); absent ones are never cached, so only
    changes that remove or replace something need to move the counter."""

    def __init__(self, counter: ChangeCounter, max_entries: int = 10_000):
        self._counter = counter
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str], V] = OrderedDict()
        self._generation: int | None = None

    async def _current(self) -> int | None:
        generation = await self._counter.current()
        if generation is None or generation != self._generation:
            self._entries.clear()
            self._generation = generation
        return generation

    async def lookup(self, repo: str, reference: str | Digest, load: Callable[[], Awaitable[V | None]]) -> V | None:
        before = await self._current()
        key = (repo, str(reference))
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            return found
        record = await load()
        if record is not None and before is not None and await self._current() == before:
            self._entries[key] = record
            if len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return record


# A manifest by tag or digest.
ManifestCache = LookupCache[ManifestRecord]
# The size of a blob linked to a repository (its absence is never cached).
BlobSizeCache = LookupCache[int]
