"""The event outbox: what happened that someone outside may want to hear of, written in the
same transaction as the change it reports, so an event is never lost nor told of a change
that was rolled back. Delivery (webhooks) reads it in order of `id`, which only grows.

Scanning writes Harbor's SCANNING_COMPLETED, SCANNING_FAILED and SCANNING_STOPPED when a
scan ends, and Portside's CRITICAL_VULNERABILITY_FOUND when an image's findings gain a
Critical vulnerability it did not have (a scan, an adapter's report, or re-matching after
the database moved: the image was not touched, the knowledge about it was)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = [
    "CRITICAL_SEVERITY",
    "CRITICAL_VULNERABILITY_FOUND",
    "Event",
    "EventOutbox",
    "SCANNING_COMPLETED",
    "SCANNING_FAILED",
    "SCANNING_STOPPED",
    "SCAN_STATUS_EVENTS",
]

SCANNING_COMPLETED = "SCANNING_COMPLETED"
SCANNING_FAILED = "SCANNING_FAILED"
SCANNING_STOPPED = "SCANNING_STOPPED"
CRITICAL_VULNERABILITY_FOUND = "CRITICAL_VULNERABILITY_FOUND"
# The stored severity of a Critical finding (scan/model.py's Severity.CRITICAL).
CRITICAL_SEVERITY = 5
# A finished scan's status → the event Harbor sends for it.
SCAN_STATUS_EVENTS = {"Success": SCANNING_COMPLETED, "Error": SCANNING_FAILED, "Stopped": SCANNING_STOPPED}


@dataclass(frozen=True, slots=True)
class Event:
    id: int
    event_type: str
    occurred_at: datetime
    repository: str | None  # None: about content, wherever it is held (re-matching)
    digest: str | None
    payload: Mapping[str, Any]


class EventOutbox(Protocol):
    async def events_after(self, after: int, limit: int) -> list[Event]:
        """Events with an id above `after`, oldest first."""

    async def prune_events(self, before: datetime) -> int:
        """Delete events that occurred before `before`; how many."""
