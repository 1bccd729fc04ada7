"""/audit-logs and /projects/{project_name}/logs: Harbor's audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from portside.http.api.context import Caller, Pages, iso, paged, services
from portside.meta.accounts import AuditRecord

__all__ = ["router"]

router = APIRouter(tags=["auditlog"])


def audit_resp(record: AuditRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "username": record.username,
        "resource": record.resource,
        "resource_type": record.resource_type,
        "operation": record.operation,
        "op_time": iso(record.op_time),
    }


@router.get("/audit-logs", summary="Audit records the caller may see (q=operation=…,resource_type=…,op_time=[a~b])")
async def list_audit_logs(
    request: Request, response: Response, who: Caller, paging: Pages, q: str | None = None, sort: str | None = None
) -> list[dict[str, Any]]:
    page = await services(request).audit.list(who, q, sort, paging)
    paged(request, response, page, paging)
    return [audit_resp(r) for r in page.items]


@router.get("/projects/{project_name}/logs", summary="Audit records of a project")
async def list_project_logs(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    project_name: str,
    q: str | None = None,
    sort: str | None = None,
) -> list[dict[str, Any]]:
    page = await services(request).audit.project_logs(who, project_name, q, sort, paging)
    paged(request, response, page, paging)
    return [audit_resp(r) for r in page.items]
