"""Integrity scrub: re-hash every recorded blob and report the corrupted and the missing.

A blob is missing when its row exists but the store has no content, and corrupted when
the content's size or digest differs from what it was recorded as. A problem is confirmed
under the blob's lock (`blob:<digest>`) before it is reported, so a blob that GC swept or
an upload re-published meanwhile is not. With `quarantine`, corrupted content is moved
out of service (`BlobStore.quarantine`, kept for inspection): pulls of it fail instead of
serving wrong bytes, and the next push of the same blob publishes it afresh.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import anyio.to_thread

from portside.coord.locks import Locks
from portside.errors import BadRequest
from portside.meta.upkeep import ScrubStore
from portside.oci.digest import Digest
from portside.storage.driver import BlobStore
from portside.upkeep.jobs import Journal, PlainJournal

__all__ = ["ScrubResult", "Scrubber"]

# Digests listed in a result; the log names every one.
_LISTED = 1000


@dataclass
class ScrubResult:
    quarantine: bool
    checked: int = 0
    bytes_checked: int = 0
    corrupted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        summary = asdict(self)
        for name in ("corrupted", "missing", "quarantined"):
            summary[f"{name}_count"] = len(summary[name])
            summary[name] = summary[name][:_LISTED]
        return summary


class Scrubber:
    def __init__(self, store: ScrubStore, blobs: BlobStore, locks: Locks, batch: int = 500):
        self._store = store
        self._blobs = blobs
        self._locks = locks
        self._batch = batch

    @staticmethod
    def options(parameters: Mapping[str, Any]) -> bool:
        """Whether to quarantine, from a job's parameters (`quarantine`, false by default)."""
        quarantine = parameters.get("quarantine", False)
        if not isinstance(quarantine, bool):
            raise BadRequest("parameter quarantine must be true or false")
        return quarantine

    async def job(self, parameters: Mapping[str, Any], journal: Journal) -> Mapping[str, Any]:
        """The `scrub` job's handler."""
        return (await self.scrub(self.options(parameters), journal)).to_dict()

    async def scrub(self, quarantine: bool = False, journal: Journal | None = None) -> ScrubResult:
        journal = journal or PlainJournal()
        result = ScrubResult(quarantine)
        journal.info(f"scrubbing every blob{' (quarantining corrupted ones)' if quarantine else ''}")
        after: str | None = None
        while rows := await self._store.blob_rows(after, self._batch):
            for digest_text, size in rows:
                await journal.checkpoint()
                digest = Digest.parse(digest_text)
                result.checked += 1
                problem = await self._problem(digest, size)
                if problem is None:
                    result.bytes_checked += size
                    continue
                async with self._locks.hold(f"blob:{digest}"):
                    if not await self._store.blob_known(digest_text):
                        continue  # collected meanwhile
                    problem = await self._problem(digest, size)
                    if problem is None:
                        continue  # published afresh meanwhile
                    if problem == "missing":
                        result.missing.append(digest_text)
                        journal.warning(f"blob {digest} is missing from the store")
                        continue
                    result.corrupted.append(digest_text)
                    journal.warning(f"blob {digest} is corrupted: {problem}")
                    if quarantine:
                        await self._blobs.quarantine(digest)
                        result.quarantined.append(digest_text)
                        journal.warning(f"blob {digest} quarantined")
            after = rows[-1][0]
        journal.info(
            f"checked {result.checked} blobs ({result.bytes_checked} bytes intact): {len(result.corrupted)}"
            f" corrupted, {len(result.missing)} missing, {len(result.quarantined)} quarantined"
        )
        return result

    async def _problem(self, digest: Digest, size: int) -> str | None:
        """None when the stored content is intact; else "missing" or what is wrong."""
        stored = await self._blobs.size(digest)
        if stored is None:
            return "missing"
        if stored != size:
            return f"{stored} bytes stored, {size} recorded"
        hasher = hashlib.new(digest.algorithm)
        try:
            async for chunk in self._blobs.read(digest):
                await anyio.to_thread.run_sync(hasher.update, chunk)
        except FileNotFoundError:
            return "missing"
        actual = hasher.hexdigest()
        if actual != digest.hex:
            return f"content hashes to {digest.algorithm}:{actual}"
        return None
