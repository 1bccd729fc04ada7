"""/quotas: Harbor's quota resources (one per project, its id the project's id)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from portside.http.api.context import Caller, Id, Pages, iso, paged, services
from portside.meta.quotas import Quota
from portside.mgmt.quotas import STORAGE

__all__ = ["router", "quota_resp", "resources"]

router = APIRouter(tags=["quota"])


class QuotaUpdateReq(BaseModel):
    hard: dict[str, int] | None = None


def resources(value: int) -> dict[str, int]:
    """Harbor's ResourceList."""
    return {STORAGE: value}


def quota_resp(quota: Quota) -> dict[str, Any]:
    return {
        "id": quota.project_id,
        "ref": {"id": quota.project_id, "name": quota.project_name, "owner_name": quota.owner_name},
        "hard": resources(quota.storage_limit),
        "used": resources(quota.storage_used),
        "creation_time": iso(quota.creation_time),
        "update_time": iso(quota.update_time),
    }


@router.get("/quotas", summary="Projects' quotas (system administrators)")
async def list_quotas(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    reference: str | None = None,
    reference_id: str | None = None,
    sort: str | None = None,
) -> list[dict[str, Any]]:
    page = await services(request).quotas.list(who, reference, reference_id, sort, paging)
    paged(request, response, page, paging)
    return [quota_resp(q) for q in page.items]


@router.get("/quotas/{quota_id}", summary="A quota (its id is its project's id)")
async def get_quota(request: Request, who: Caller, quota_id: Id) -> dict[str, Any]:
    return quota_resp(await services(request).quotas.get(who, quota_id))


@router.put("/quotas/{quota_id}", summary="Change a quota's hard limits (-1: unlimited)", response_class=Response)
async def update_quota(request: Request, who: Caller, quota_id: Id, body: QuotaUpdateReq) -> None:
    await services(request).quotas.update(who, quota_id, body.hard)
