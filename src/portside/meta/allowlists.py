"""Protocol of Harbor's CVE allowlists: the system's and each project's. A pull policy that
blocks vulnerable images leaves the listed CVEs out, until the list expires."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["SYSTEM", "AllowlistStore", "CveAllowlist"]

SYSTEM = 0  # the project id Harbor gives the system's allowlist


@dataclass(frozen=True, slots=True)
class CveAllowlist:
    project_id: int  # SYSTEM for the system's
    cve_ids: tuple[str, ...] = ()
    expires_at: int | None = None  # seconds since the epoch; None: never
    id: int | None = None  # None: never written (an empty list)
    creation_time: datetime | None = None
    update_time: datetime | None = None

    def in_force(self, now: float) -> frozenset[str]:
        """The CVE ids that count at `now` (seconds since the epoch): none once expired."""
        if self.expires_at is not None and now >= self.expires_at:
            return frozenset()
        return frozenset(self.cve_ids)


class AllowlistStore(Protocol):
    async def get_allowlist(self, project_id: int) -> CveAllowlist | None:
        """The allowlist of `project_id` (SYSTEM: the system's), None when never written."""

    async def put_allowlist(self, project_id: int, cve_ids: Sequence[str], expires_at: int | None) -> CveAllowlist:
        """Replace the allowlist of `project_id` (SYSTEM: the system's)."""
