"""/system/gc (Harbor's garbage collection) and /system/scrub (Portside's integrity scrub).

Both have the same endpoints: POST or PUT `…/schedule` with a `Schedule` body (type
Manual runs the job now and answers with its Location; Hourly, Daily, Weekly, Custom set
a cron schedule, six fields with seconds first; None removes it), GET `…/schedule`,
GET the history (paged), GET one job, GET its log as text, PUT a job to stop it.
Scrub's history entries also carry the job's `result` (corrupted and missing blobs).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from portside.errors import NotFound
from portside.http.api.context import Caller, Id, Pages, iso, paged, services
from portside.meta.upkeep import JobRecord, ScheduleRecord
from portside.mgmt.system import SystemJobService

__all__ = ["router"]

router = APIRouter()


class ScheduleObj(BaseModel):
    type: Literal["Hourly", "Daily", "Weekly", "Custom", "Manual", "None", "Schedule"] | None = Field(
        None, description="Manual runs now; Hourly, Daily, Weekly, Custom schedule; None removes the schedule"
    )
    cron: str | None = Field(None, description="six fields, seconds first, UTC: '0 0 3 * * *' is 03:00 daily")
    next_scheduled_time: str | None = None
    paused: bool | None = None


class ScheduleBody(BaseModel):
    """Harbor's `Schedule`."""

    schedule: ScheduleObj
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="gc: delete_untagged, dry_run (booleans; Harbor's workers is accepted and ignored);"
        " scrub: quarantine (boolean)",
    )


class JobHistory(BaseModel):
    """Harbor's `GCHistory`: one run, or (from …/schedule) the schedule."""

    id: int | None = None
    job_name: str | None = None
    job_kind: str | None = None
    job_parameters: str | None = None
    schedule: ScheduleObj | None = None
    job_status: str | None = None
    deleted: bool | None = None
    creation_time: str | None = None
    update_time: str | None = None


class ScrubHistory(JobHistory):
    result: dict[str, Any] | None = Field(
        None,
        description="when finished: checked, bytes_checked, corrupted, missing, quarantined (digests) and their counts",
    )


_JOB_NAMES = {"gc": "GARBAGE_COLLECTION", "scrub": "SCRUB", "scan_all": "SCAN_ALL"}


def _history(job: JobRecord) -> dict[str, Any]:
    return {
        "id": job.id,
        "job_name": _JOB_NAMES.get(job.kind, job.kind.upper()),
        "job_kind": job.trigger.upper(),
        "job_parameters": job.parameters,
        "schedule": {"type": job.trigger, "paused": False},
        "job_status": job.status,
        "deleted": False,
        "creation_time": iso(job.creation_time),
        "update_time": iso(job.update_time),
    }


def _scrub_history(job: JobRecord) -> dict[str, Any]:
    return {**_history(job), "result": json.loads(job.result) if job.result else None}


def _schedule(schedule: ScheduleRecord | None) -> dict[str, Any]:
    if schedule is None:
        return {"schedule": {"type": "None", "cron": "", "paused": False}}
    return {
        "job_kind": schedule.type,
        "job_parameters": schedule.parameters,
        "schedule": {
            "type": schedule.type,
            "cron": schedule.cron,
            "next_scheduled_time": iso(schedule.next_run),
            "paused": False,
        },
        "deleted": False,
        "creation_time": iso(schedule.creation_time),
        "update_time": iso(schedule.update_time),
    }


def _service(request: Request, kind: str) -> SystemJobService:
    found: SystemJobService | None = getattr(services(request), kind)
    if found is None:
        raise NotFound(f"{kind} is not available on this server")
    return found


def _add_routes(kind: str, path: str, tag: str, noun: str, model: type[JobHistory], render: Any) -> None:
    prefix = f"/system/{path}"

    async def run_or_schedule(request: Request, who: Caller, body: ScheduleBody, creating: bool) -> Response:
        job = await _service(request, kind).kick(
            who, body.schedule.type or "None", body.schedule.cron, body.parameters, creating=creating
        )
        response = Response(status_code=201 if creating else 200)
        if job is not None:
            response.headers["Location"] = f"{request.url.path.rsplit('/', 1)[0]}/{job.id}"
        return response

    async def create_schedule(request: Request, who: Caller, body: ScheduleBody) -> Response:
        return await run_or_schedule(request, who, body, creating=True)

    async def update_schedule(request: Request, who: Caller, body: ScheduleBody) -> Response:
        return await run_or_schedule(request, who, body, creating=False)

    async def get_schedule(request: Request, who: Caller) -> dict[str, Any]:
        return _schedule(await _service(request, kind).schedule(who))

    async def history(
        request: Request, response: Response, who: Caller, paging: Pages, q: str | None = None, sort: str | None = None
    ) -> list[dict[str, Any]]:
        page = await _service(request, kind).history(who, q, sort, paging)
        paged(request, response, page, paging)
        return [render(job) for job in page.items]

    async def get_job(request: Request, who: Caller, job_id: Id) -> dict[str, Any]:
        return render(await _service(request, kind).get(who, job_id))  # type: ignore[no-any-return]

    async def stop_job(request: Request, who: Caller, job_id: Id) -> Response:
        await _service(request, kind).stop(who, job_id)
        return Response(status_code=200)

    async def job_log(request: Request, who: Caller, job_id: Id) -> PlainTextResponse:
        return PlainTextResponse(await _service(request, kind).log(who, job_id))

    run_help = (
        f"Run {noun} now (schedule type Manual; answers 201 with the job's Location, 409 while one runs),"
        " or set its schedule (Hourly, Daily, Weekly, Custom with a cron; None removes it)"
    )
    # …/schedule before …/{job_id}, which would otherwise take "schedule" for an id.
    router.add_api_route(
        f"{prefix}/schedule",
        create_schedule,
        methods=["POST"],
        status_code=201,
        tags=[tag],
        summary=run_help,
        response_class=Response,
        operation_id=f"create_{kind}_schedule",
    )
    router.add_api_route(
        f"{prefix}/schedule",
        update_schedule,
        methods=["PUT"],
        tags=[tag],
        summary=run_help,
        response_class=Response,
        operation_id=f"update_{kind}_schedule",
    )
    router.add_api_route(
        f"{prefix}/schedule",
        get_schedule,
        methods=["GET"],
        tags=[tag],
        summary=f"The schedule of {noun} (type None when there is none)",
        response_model=JobHistory,
        response_model_exclude_none=True,
        operation_id=f"get_{kind}_schedule",
    )
    router.add_api_route(
        prefix,
        history,
        methods=["GET"],
        tags=[tag],
        summary=f"Runs of {noun}, newest first (q=job_status=Success; sort=creation_time for oldest first)",
        response_model=list[model],  # type: ignore[valid-type]
        response_model_exclude_none=True,
        operation_id=f"get_{kind}_history",
    )
    router.add_api_route(
        f"{prefix}/{{job_id}}",
        get_job,
        methods=["GET"],
        tags=[tag],
        summary=f"One run of {noun}",
        response_model=model,
        response_model_exclude_none=True,
        operation_id=f"get_{kind}",
    )
    router.add_api_route(
        f"{prefix}/{{job_id}}",
        stop_job,
        methods=["PUT"],
        tags=[tag],
        summary=f"Stop a run of {noun} (at its next step; a finished run is left as it is)",
        response_class=Response,
        operation_id=f"stop_{kind}",
    )
    router.add_api_route(
        f"{prefix}/{{job_id}}/log",
        job_log,
        methods=["GET"],
        tags=[tag],
        summary=f"The log of a run of {noun}, as text",
        response_class=PlainTextResponse,
        operation_id=f"get_{kind}_log",
    )


_add_routes("gc", "gc", "gc", "garbage collection", JobHistory, _history)
_add_routes("scrub", "scrub", "scrub", "the integrity scrub (re-hash every blob)", ScrubHistory, _scrub_history)
_add_routes("scan_all", "scanAll", "scanAll", "scan-all (queue a scan of every artifact)", JobHistory, _history)
