"""Harbor's CVE allowlists over HTTP: `/system/CVEAllowlist`, and the shapes a project's
`cve_allowlist` has in /projects (mgmt/cve_allowlist.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from portside.errors import NotFound
from portside.http.api.context import Caller, iso, services, without_none
from portside.meta.allowlists import CveAllowlist
from portside.mgmt.cve_allowlist import MAX_ENTRIES, CveAllowlistService

__all__ = ["AllowlistReq", "allowlist_resp", "router"]

router = APIRouter(tags=["SystemCVEAllowlist"])


class AllowlistItem(BaseModel):
    cve_id: Annotated[str, Field(max_length=128)]


class AllowlistReq(BaseModel):
    """Harbor's CVEAllowlist as a request: `id`, `project_id` and the times are the server's."""

    id: int | None = None
    project_id: int | None = None
    expires_at: int | None = None
    items: list[AllowlistItem] = Field(default_factory=list, max_length=MAX_ENTRIES)

    def parts(self) -> tuple[list[str], int | None]:
        return [item.cve_id for item in self.items], self.expires_at


def allowlist_resp(found: CveAllowlist) -> dict[str, Any]:
    return without_none(
        {
            "id": found.id or 0,
            "project_id": found.project_id,
            "expires_at": found.expires_at,
            "items": [{"cve_id": cve_id} for cve_id in found.cve_ids],
            "creation_time": iso(found.creation_time),
            "update_time": iso(found.update_time),
        }
    )


def _allowlists(request: Request) -> CveAllowlistService:
    found = services(request).allowlists
    if found is None:
        raise NotFound("CVE allowlists are not available on this server")
    return found


@router.get("/system/CVEAllowlist", summary="The system's CVE allowlist (anyone signed in)")
async def get_system_allowlist(request: Request, who: Caller) -> dict[str, Any]:
    return allowlist_resp(await _allowlists(request).system(who))


@router.put(
    "/system/CVEAllowlist",
    summary="Replace the system's CVE allowlist (system administrators)",
    response_class=Response,
)
async def put_system_allowlist(request: Request, who: Caller, body: AllowlistReq) -> None:
    await _allowlists(request).set_system(who, *body.parts())
