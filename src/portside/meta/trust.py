"""Protocol of trust policies: the keys, certificates and identities a project (or the
system, for every project that takes its defaults) trusts to sign its images.

A policy is stored as one JSON document per scope, checked by the management layer before
it is written (mgmt/trust_policy.py says what it holds); the store only keeps it and the
time it changed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

__all__ = ["SYSTEM", "KeyStore", "StoredTrust", "TrustStore"]

SYSTEM = 0  # the scope of the system's defaults, as for CVE allowlists


@dataclass(frozen=True, slots=True)
class StoredTrust:
    project_id: int  # SYSTEM for the system's defaults
    document: Mapping[str, Any] = field(default_factory=dict)
    creation_time: datetime | None = None  # None: never written
    update_time: datetime | None = None


class TrustStore(Protocol):
    async def get_trust(self, project_id: int) -> StoredTrust | None:
        """The trust policy of `project_id` (SYSTEM: the system's), None when never written."""

    async def put_trust(self, project_id: int, document: Mapping[str, Any]) -> StoredTrust:
        """Replace the trust policy of `project_id` (SYSTEM: the system's)."""


class KeyStore(Protocol):
    async def get_or_create(self, name: str, candidate: str) -> str:
        """The key stored as `name`; `candidate` becomes it when there is none yet (the first
        instance to ask wins, every other gets the winner's)."""
