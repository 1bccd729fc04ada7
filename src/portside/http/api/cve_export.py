"""Harbor's CVE export: `POST /export/cve` starts an export of one project's findings,
`/export/cve/executions` and `/export/cve/execution/{id}` tell how the caller's exports
went, `/export/cve/download/{id}` sends the CSV (mgmt/cve_export.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from portside.errors import BadRequest, NotFound
from portside.http.api.context import Caller, Id, iso, services
from portside.mgmt.cve_export import CveExportService, Execution, ExportCriteria

__all__ = ["router"]

router = APIRouter(tags=["scan data export"])


class ScanDataExportRequest(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    job_name: str = Field("", max_length=255)
    projects: list[Id] = Field(default_factory=list, max_length=16)
    labels: list[Id] = Field(default_factory=list, max_length=64)
    repositories: str = Field("", max_length=1024)
    cve_ids: str = Field("", alias="cveIds", max_length=16384)
    tags: str = Field("", max_length=1024)


def _exports(request: Request) -> CveExportService:
    found = services(request).cve_exports
    if found is None:
        raise NotFound("CVE export is not available on this server: scanning is off")
    return found


def _execution(execution: Execution) -> dict[str, Any]:
    return {
        "id": execution.id,
        "user_id": execution.user_id,
        "user_name": execution.user_name,
        "status": execution.status,
        "trigger": "MANUAL",  # Harbor's word for an export someone asked for
        "start_time": iso(execution.start_time),
        "end_time": iso(execution.end_time),
        "status_text": execution.status_text,
        "file_present": execution.file_present,
        "job_name": execution.job_name,
    }


@router.post("/export/cve", summary="Export the findings of one project's artifacts as CSV")
async def export_cve(
    request: Request,
    who: Caller,
    criteria: ScanDataExportRequest,
    data_type: Annotated[str | None, Header(alias="X-Scan-Data-Type", max_length=256)] = None,
) -> dict[str, int]:
    """`projects`: exactly one project id; `repositories` and `tags`: doublestar patterns
    (`{nginx,redis}`, `release-*`; empty or `**`: all); `cveIds`: ids separated by commas
    (empty: all). `X-Scan-Data-Type` must be `application/vnd.security.vulnerability.report;
    version=1.1`. 409 while the caller's previous export runs."""
    job = await _exports(request).start(
        who,
        ExportCriteria(
            criteria.job_name,
            tuple(criteria.projects),
            tuple(criteria.labels),
            criteria.repositories,
            criteria.cve_ids,
            criteria.tags,
        ),
        data_type,
    )
    return {"id": job.id}


@router.get("/export/cve/executions", summary="The caller's CVE exports, newest first")
async def export_executions(request: Request, who: Caller) -> dict[str, list[dict[str, Any]]]:
    return {"items": [_execution(e) for e in await _exports(request).executions(who)]}


@router.get("/export/cve/execution/{execution_id}", summary="One of the caller's CVE exports")
async def export_execution(
    request: Request, who: Caller, execution_id: Annotated[int, Path(ge=1, le=2**31 - 1)]
) -> dict[str, Any]:
    return _execution(await _exports(request).execution(who, execution_id))


@router.get(
    "/export/cve/download/{execution_id}",
    summary="The CSV of one of the caller's finished CVE exports",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_download(
    request: Request, who: Caller, execution_id: Annotated[int, Path(ge=1, le=2**31 - 1)], format: str = "csv"
) -> Response:
    if format.lower() != "csv":
        raise BadRequest("the export is a CSV file: format=csv")
    name, content = await _exports(request).download(who, execution_id)
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )
