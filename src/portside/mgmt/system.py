"""System jobs as Harbor's `/system/gc` offers them: run now, schedule, history, log, stop.

One `SystemJobService` per kind of job: garbage collection (Harbor's permission
resource `garbage-collection`) and the integrity scrub (`scrub`, Portside's own, shaped
the same). Only system administrators, and system robots given the permission, may use
them; everyone else is told to sign in (401) or refused (403).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portside.auth.principal import Principal
from portside.errors import BadRequest, NotFound
from portside.meta.accounts import Page
from portside.meta.upkeep import JOB_STATUSES, JobRecord, JobStore, ScheduleRecord
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Listing, Paging
from portside.upkeep.jobs import JobRunner
from portside.upkeep.schedule import Scheduler

__all__ = ["SystemJobService", "MANUAL", "SCHEDULE_TYPES"]

MANUAL = "Manual"
# Harbor's ScheduleObj types besides Manual; "Schedule" is a cron of the caller's, as Custom.
SCHEDULE_TYPES = ("Hourly", "Daily", "Weekly", "Custom", "Schedule", "None")
# Harbor's GC history keys: job_status is the run's status.
_LISTING = Listing.of(
    ("id", "status", "creation_time", "update_time"),
    ("id", "creation_time", "update_time"),
    aliases={"job_status": "status"},
)


class SystemJobService:
    def __init__(
        self,
        kind: str,
        resource: str,
        guard: Guard,
        jobs: JobStore,
        runner: JobRunner,
        scheduler: Scheduler,
    ):
        self.kind = kind
        self._resource = resource
        self._guard = guard
        self._jobs = jobs
        self._runner = runner
        self._scheduler = scheduler

    def _allow(self, who: Principal, action: str) -> None:
        self._guard.system(who, self._resource, action)

    async def history(self, who: Principal, q: str | None, sort: str | None, paging: Paging) -> Page[JobRecord]:
        self._allow(who, "list")
        criteria = _LISTING.criteria(q, sort)
        for match in criteria.on("status"):
            unknown = [v for v in match.values if v not in JOB_STATUSES]
            if match.kind in ("exact", "any", "all") and unknown:
                raise BadRequest(f"unknown status {unknown[0]!r}; one of {', '.join(JOB_STATUSES)}")
        # Ties go the way of the first order asked for; none asked for: newest first.
        newest_first = criteria.order[0][1] if criteria.order else True
        return await self._jobs.list_jobs(self.kind, None, paging.offset, paging.limit, newest_first, criteria)

    async def get(self, who: Principal, job_id: int) -> JobRecord:
        self._allow(who, "read")
        return await self._found(job_id)

    async def log(self, who: Principal, job_id: int) -> str:
        self._allow(who, "read")
        await self._found(job_id)
        return await self._jobs.job_log(job_id) or ""

    async def stop(self, who: Principal, job_id: int) -> JobRecord:
        """Ask the job to stop at its next step; a finished job is left as it is."""
        self._allow(who, "stop")
        await self._found(job_id)
        job = await self._jobs.request_stop(job_id)
        if job is None:
            raise NotFound(f"{self.kind} job {job_id} not found")
        return job

    async def schedule(self, who: Principal) -> ScheduleRecord | None:
        self._allow(who, "read")
        return await self._scheduler.get(self.kind)

    async def kick(
        self, who: Principal, type: str, cron: str | None, parameters: Mapping[str, Any], *, creating: bool
    ) -> JobRecord | None:
        """Harbor's schedule body: Manual runs the job now (the job is returned; Conflict
        while one is running); Hourly, Daily, Weekly, Custom set the schedule; None removes it."""
        self._allow(who, "create" if creating else "update")
        self._runner.check(self.kind, parameters)
        if type == MANUAL:
            return await self._runner.start(self.kind, MANUAL, parameters)
        if type not in SCHEDULE_TYPES:
            raise BadRequest(f"unsupported schedule type {type!r}; use Manual, {', '.join(SCHEDULE_TYPES)}")
        await self._scheduler.set(self.kind, "Custom" if type == "Schedule" else type, cron, parameters)
        return None

    async def _found(self, job_id: int) -> JobRecord:
        job = await self._jobs.get_job(job_id)
        if job is None or job.kind != self.kind:
            raise NotFound(f"{self.kind} job {job_id} not found")
        return job
