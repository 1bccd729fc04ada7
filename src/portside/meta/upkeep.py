"""Protocols of the upkeep jobs' metadata: GC's graph and conditional deletes, upload
sessions to purge, the blobs to scrub, job records and their schedules.

Every delete here is conditional: it re-checks in its own transaction what made the row
garbage when the plan was made, so a push that needed the row meanwhile keeps it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from portside.meta.accounts import Page
from portside.meta.criteria import EVERYTHING, Criteria

__all__ = [
    "BlobInfo",
    "GcStore",
    "GraphSnapshot",
    "JobRecord",
    "JobStore",
    "ManifestNode",
    "ScheduleRecord",
    "ScheduleStore",
    "ScrubStore",
    "UploadSweepStore",
    "JOB_STATUSES",
    "ACTIVE_STATUSES",
]


@dataclass(frozen=True, slots=True)
class ManifestNode:
    """What GC needs of a manifest: its subject, child manifests and blobs."""

    subject: str | None
    children: tuple[str, ...] = ()
    blobs: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BlobInfo:
    size: int
    touched_at: datetime


@dataclass(frozen=True)
class GraphSnapshot:
    """The registry's metadata without payloads, as GC's mark phase reads it."""

    repositories: dict[int, str] = field(default_factory=dict)
    # repository id → {manifest digest → when it was pushed into the repository}
    manifest_links: dict[int, dict[str, datetime]] = field(default_factory=dict)
    # repository id → digests of its tagged manifests
    tagged: dict[int, set[str]] = field(default_factory=dict)
    manifests: dict[str, ManifestNode] = field(default_factory=dict)
    # repository id → {blob digest → when it was linked}
    blob_links: dict[int, dict[str, datetime]] = field(default_factory=dict)
    blobs: dict[str, BlobInfo] = field(default_factory=dict)


class GcStore(Protocol):
    async def snapshot(self) -> GraphSnapshot: ...

    async def unlink_manifest(self, repo: str, digest: str, cutoff: datetime) -> bool:
        """Remove an untagged manifest from a repository, unless meanwhile it was pushed
        after `cutoff`, tagged, made a child of an index there, or its subject was tagged."""

    async def delete_manifest(self, digest: str) -> bool:
        """Delete a manifest row that no repository links to (and its references)."""

    async def unlink_blob(self, repo: str, digest: str, cutoff: datetime) -> bool:
        """Remove the blob's link to `repo` unless a manifest there needs it, or the link
        or the blob's last touch is newer than `cutoff`."""

    async def delete_blob(self, digest: str, cutoff: datetime) -> bool:
        """Delete the blob row when it is linked nowhere, needed by no linked manifest and
        untouched since `cutoff`. The caller deletes the content only when this says True."""

    async def blob_known(self, digest: str) -> bool:
        """Whether a blob row exists (orphan content has none)."""


class UploadSweepStore(Protocol):
    async def idle_uploads(self, before: datetime) -> list[str]:
        """Upload sessions not changed since `before`."""

    async def delete_idle_upload(self, upload_id: str, before: datetime) -> bool:
        """Forget the session unless it changed since `before`."""

    async def existing_uploads(self, upload_ids: Collection[str]) -> set[str]:
        """Which of `upload_ids` are sessions that have not ended."""


class ScrubStore(Protocol):
    async def blob_rows(self, after: str | None, limit: int) -> list[tuple[str, int]]:
        """(digest, size) of recorded blobs in digest order, after `after`."""

    async def blob_known(self, digest: str) -> bool: ...


JOB_STATUSES = ("Pending", "Running", "Success", "Error", "Stopped")
ACTIVE_STATUSES = ("Pending", "Running")


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    kind: str  # "gc" or "scrub"
    status: str  # one of JOB_STATUSES
    trigger: str  # "Manual" or "Schedule"
    parameters: str  # JSON
    result: str | None  # JSON summary, when finished
    stop_requested: bool
    creation_time: datetime
    update_time: datetime


class JobStore(Protocol):
    async def create_job(
        self, kind: str, trigger: str, parameters: str, abandoned_before: datetime
    ) -> JobRecord | None:
        """A new Pending job, unless another job of `kind` is Pending or Running (None).
        Active jobs not heard of since `abandoned_before` (their process died) end as Error
        first. Claims of one kind are serialised, so two instances never both win."""

    async def get_job(self, job_id: int) -> JobRecord | None: ...

    async def list_jobs(
        self,
        kind: str,
        status: str | None,
        offset: int,
        limit: int,
        newest_first: bool,
        criteria: Criteria = EVERYTHING,
    ) -> Page[JobRecord]:
        """Jobs of `kind`; `criteria` fields: id, status, trigger, creation_time, update_time
        (ties, and no order: by id, newest first when `newest_first`)."""

    async def update_job(
        self, job_id: int, *, status: str | None = None, result: str | None = None, log: str = ""
    ) -> bool:
        """Set the status and result, append `log`, and refresh the heartbeat (update_time);
        returns whether a stop was requested."""

    async def request_stop(self, job_id: int) -> JobRecord | None:
        """Ask an active job to stop (nothing to do for a finished one); None when unknown."""

    async def job_log(self, job_id: int) -> str | None: ...

    async def abandon_jobs(self, before: datetime) -> int:
        """End active jobs not heard of since `before` as Error; the count."""


@dataclass(frozen=True, slots=True)
class ScheduleRecord:
    kind: str
    type: str  # Harbor's: Hourly, Daily, Weekly, Custom
    cron: str  # six fields, seconds first
    parameters: str  # JSON
    next_run: datetime | None
    creation_time: datetime
    update_time: datetime


class ScheduleStore(Protocol):
    async def get_schedule(self, kind: str) -> ScheduleRecord | None: ...

    async def put_schedule(
        self, kind: str, type: str, cron: str, parameters: str, next_run: datetime
    ) -> ScheduleRecord: ...

    async def delete_schedule(self, kind: str) -> bool: ...

    async def due_schedules(self, at: datetime) -> Sequence[ScheduleRecord]: ...

    async def claim_run(self, kind: str, expected: datetime, following: datetime) -> bool:
        """Move `next_run` from `expected` to `following`; True for the one caller that did
        (every instance polls; exactly one runs each occurrence)."""
