"""Scan requests Portside accepted as a scanner adapter (Harbor's pluggable scanner API):
what to pull, how far the scan got, and its result, shared by every process and instance
that may be asked for the report.

The registry's Authorization header is no part of a request here: it stays in the memory
of the process running the scan, and nowhere else."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["AdapterScan", "AdapterScans", "NewAdapterScan", "SCAN_STATES"]

# pending: accepted, waiting for a slot; running; done: `findings` (and `inventory`) set;
# failed: `error` says why.
SCAN_STATES = ("pending", "running", "done", "failed")


@dataclass(frozen=True, slots=True)
class NewAdapterScan:
    id: str
    registry_url: str
    repository: str
    digest: str
    tag: str
    mime_type: str
    capabilities: tuple[str, ...]  # the capability types asked for: vulnerability, sbom


@dataclass(frozen=True, slots=True)
class AdapterScan:
    id: str
    registry_url: str
    repository: str
    digest: str
    tag: str
    mime_type: str
    capabilities: tuple[str, ...]
    status: str
    error: str
    findings: str | None  # JSON: the stored findings, once done
    inventory: bytes | None  # the encoded inventory the SBOM is written from, once done
    generated_at: datetime | None
    created: datetime
    updated: datetime  # the last heartbeat of the process holding it, while pending or running


class AdapterScans(Protocol):
    async def create(self, new: NewAdapterScan) -> AdapterScan: ...

    async def get(self, scan_id: str) -> AdapterScan | None: ...

    async def start(self, scan_id: str) -> None:
        """pending → running."""

    async def heartbeat(self, scan_ids: list[str]) -> None:
        """The process holding these (pending or running) is alive."""

    async def finish(self, scan_id: str, findings: str, inventory: bytes | None) -> None: ...

    async def fail(self, scan_id: str, error: str) -> None: ...

    async def purge(self, finished_before: datetime, abandoned_before: datetime) -> int:
        """Delete requests that ended before `finished_before`, and those still pending or
        running whose last heartbeat is older than `abandoned_before`; how many."""
