"""/projects/{project_name_or_id}/members: Harbor's project members."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from pydantic import BaseModel, Field

from portside.auth.rbac import ROLE_NAMES
from portside.http.api.context import Caller, Id, Pages, paged, project_key, services
from portside.meta.accounts import Member
from portside.mgmt import limits

__all__ = ["router"]

router = APIRouter(tags=["member"])
NameHeader = Annotated[bool, Header(alias="X-Is-Resource-Name")]
_PATH = "/projects/{project_name_or_id}/members"


class UserEntity(BaseModel):
    user_id: Id | None = None
    username: str | None = Field(default=None, max_length=limits.USERNAME)


class ProjectMember(BaseModel):
    role_id: int
    member_user: UserEntity | None = None


class RoleRequest(BaseModel):
    role_id: int


def member_resp(member: Member) -> dict[str, Any]:
    return {
        "id": member.id,
        "project_id": member.project_id,
        "entity_name": member.username,
        "role_name": ROLE_NAMES.get(member.role_id, ""),
        "role_id": member.role_id,
        "entity_id": member.user_id,
        "entity_type": "u",
    }


@router.get(_PATH, summary="Members of a project")
async def list_members(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    project_name_or_id: str,
    entityname: str | None = None,
    q: str | None = None,
    sort: str | None = None,
    is_name: NameHeader = False,
) -> list[dict[str, Any]]:
    page = await services(request).members.list(
        who, project_key(project_name_or_id, is_name), entityname, paging, q, sort
    )
    paged(request, response, page, paging)
    return [member_resp(m) for m in page.items]


@router.post(_PATH, status_code=201, summary="Add a user to a project with a role", response_class=Response)
async def add_member(
    request: Request,
    response: Response,
    who: Caller,
    project_name_or_id: str,
    body: ProjectMember,
    is_name: NameHeader = False,
) -> None:
    user = body.member_user or UserEntity()
    member = await services(request).members.add(
        who, project_key(project_name_or_id, is_name), user.user_id, user.username, body.role_id
    )
    response.headers["Location"] = f"{request.url.path}/{member.id}"


@router.get(_PATH + "/{mid}", summary="A project member")
async def get_member(
    request: Request, who: Caller, project_name_or_id: str, mid: Id, is_name: NameHeader = False
) -> dict[str, Any]:
    return member_resp(await services(request).members.get(who, project_key(project_name_or_id, is_name), mid))


@router.put(_PATH + "/{mid}", summary="Change a member's role", response_class=Response)
async def update_member(
    request: Request, who: Caller, project_name_or_id: str, mid: Id, body: RoleRequest, is_name: NameHeader = False
) -> None:
    await services(request).members.update(who, project_key(project_name_or_id, is_name), mid, body.role_id)


@router.delete(_PATH + "/{mid}", summary="Remove a member", response_class=Response)
async def remove_member(
    request: Request, who: Caller, project_name_or_id: str, mid: Id, is_name: NameHeader = False
) -> None:
    await services(request).members.remove(who, project_key(project_name_or_id, is_name), mid)
