"""/projects: Harbor's project resources."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic import BaseModel, Field

from portside.auth.rbac import DEVELOPER, GUEST, LIMITED_GUEST, MAINTAINER, PROJECT_ADMIN
from portside.errors import BadRequest, NotFound
from portside.http.api.context import Caller, Pages, iso, paged, project_key, services, without_none
from portside.http.api.cve_allowlist import AllowlistReq, allowlist_resp
from portside.http.api.quotas import resources
from portside.mgmt import limits
from portside.mgmt.projects import ListedProject, ProjectSummary
from portside.mgmt.proxy_metadata import REGISTRY_ID

__all__ = ["router"]

router = APIRouter(tags=["project"])
NameHeader = Annotated[bool, Header(alias="X-Is-Resource-Name")]


MetadataKey = Annotated[str, Field(max_length=limits.METADATA_KEY)]
MetadataValue = Annotated[str, Field(max_length=limits.METADATA_VALUE)]


class ProjectReq(BaseModel):
    project_name: str | None = Field(None, max_length=limits.PROJECT_NAME)
    public: bool | None = None
    metadata: dict[MetadataKey, MetadataValue] | None = Field(None, max_length=limits.METADATA_ENTRIES)
    storage_limit: int | None = None
    registry_id: int | None = None
    cve_allowlist: AllowlistReq | None = None


def project_resp(listed: ListedProject) -> dict[str, Any]:
    p = listed.project
    metadata = {k: v for k, v in p.metadata.items() if k != REGISTRY_ID}
    registry = p.metadata.get(REGISTRY_ID)
    return without_none(
        {
            "project_id": p.project_id,
            "owner_id": p.owner_id,
            "name": p.name,
            "creation_time": iso(p.creation_time),
            "update_time": iso(p.update_time),
            "deleted": False,
            "owner_name": p.owner_name,
            "togglable": True,
            "current_user_role_id": listed.role_id or 0,
            "current_user_role_ids": [listed.role_id] if listed.role_id else [],
            "repo_count": p.repo_count,
            "metadata": {"public": "false", **metadata},
            # Harbor's field: the registry a proxy cache project proxies.
            "registry_id": int(registry) if registry and registry.isdigit() else None,
        }
    )


_MEMBER_COUNTS = {
    PROJECT_ADMIN: "project_admin_count",
    MAINTAINER: "maintainer_count",
    DEVELOPER: "developer_count",
    GUEST: "guest_count",
    LIMITED_GUEST: "limited_guest_count",
}


def summary_resp(summary: ProjectSummary) -> dict[str, Any]:
    """Harbor's ProjectSummary, with what this caller may see (no proxy-cache registry here)."""
    body: dict[str, Any] = {"repo_count": summary.project.repo_count}
    if summary.members_by_role is not None:
        body.update({field: summary.members_by_role.get(role, 0) for role, field in _MEMBER_COUNTS.items()})
    if summary.quota is not None:
        body["quota"] = {
            "hard": resources(summary.quota.storage_limit),
            "used": resources(summary.quota.storage_used),
        }
    return body


@router.post("/projects", status_code=201, summary="Create a project (any signed-in user)", response_class=Response)
async def create_project(
    request: Request,
    response: Response,
    who: Caller,
    body: ProjectReq,
    name_in_location: Annotated[bool, Header(alias="X-Resource-Name-In-Location")] = False,
) -> None:
    if not body.project_name:
        raise BadRequest("project_name is required")
    project = await services(request).projects.create(
        who,
        body.project_name,
        body.public,
        body.metadata or {},
        body.storage_limit,
        body.cve_allowlist.parts() if body.cve_allowlist is not None else None,
        body.registry_id,
    )
    key = project.name if name_in_location else project.project_id
    response.headers["Location"] = f"{request.url.path}/{key}"


@router.head("/projects", summary="Whether a project exists that the caller may see", response_class=Response)
async def project_exists(request: Request, who: Caller, project_name: Annotated[str, Query()]) -> None:
    if not await services(request).projects.exists(who, project_name):
        raise NotFound(f"project {project_name} not found")


@router.get("/projects", summary="Projects the caller may see")
async def list_projects(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    q: str | None = None,
    sort: str | None = None,
    name: str | None = None,
    public: bool | None = None,
    owner: str | None = None,
    with_detail: bool = True,
) -> list[dict[str, Any]]:
    page = await services(request).projects.list(
        who, name=name, public=public, owner=owner, q=q, paging=paging, sort=sort
    )
    paged(request, response, page, paging)
    return [project_resp(p) for p in page.items]


@router.get("/projects/{project_name_or_id}", summary="A project")
async def get_project(
    request: Request, who: Caller, project_name_or_id: str, is_name: NameHeader = False
) -> dict[str, Any]:
    projects = services(request).projects
    listed = await projects.get(who, project_key(project_name_or_id, is_name))
    found = project_resp(listed)
    if projects.allowlists is not None:
        found["cve_allowlist"] = allowlist_resp(await projects.allowlists.of_project(listed.project))
    return found


@router.get("/projects/{project_name_or_id}/summary", summary="A project's repository, member and quota figures")
async def get_project_summary(
    request: Request, who: Caller, project_name_or_id: str, is_name: NameHeader = False
) -> dict[str, Any]:
    return summary_resp(await services(request).projects.summary(who, project_key(project_name_or_id, is_name)))


@router.put("/projects/{project_name_or_id}", summary="Update a project's metadata", response_class=Response)
async def update_project(
    request: Request, who: Caller, project_name_or_id: str, body: ProjectReq, is_name: NameHeader = False
) -> None:
    await services(request).projects.update(
        who,
        project_key(project_name_or_id, is_name),
        body.public,
        body.metadata or {},
        body.cve_allowlist.parts() if body.cve_allowlist is not None else None,
    )


@router.delete(
    "/projects/{project_name_or_id}", summary="Delete a project without repositories", response_class=Response
)
async def delete_project(request: Request, who: Caller, project_name_or_id: str, is_name: NameHeader = False) -> None:
    await services(request).projects.delete(who, project_key(project_name_or_id, is_name))
