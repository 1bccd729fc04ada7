"""/robots: Harbor's robot accounts. Secrets are shown once, at creation and refresh."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from portside.http.api.context import Caller, Id, Pages, iso, paged, services, without_none
from portside.meta.accounts import Robot, RobotPermission
from portside.mgmt import limits
from portside.mgmt.robots import RobotSpec

__all__ = ["router"]

router = APIRouter(tags=["robot"])


class Access(BaseModel):
    resource: str
    action: str
    effect: str | None = None


class Permission(BaseModel):
    kind: str
    namespace: str
    access: list[Access] = []


class RobotCreate(BaseModel):
    name: str = ""
    description: str = Field("", max_length=limits.ROBOT_DESCRIPTION)
    secret: str | None = None
    level: str
    disable: bool = False
    duration: int | None = Field(None, ge=-1, le=limits.MAX_INTEGER, description="days; -1 never expires")
    permissions: list[Permission] = Field([], max_length=limits.ROBOT_PERMISSIONS)


class RobotSec(BaseModel):
    secret: str | None = None


def _spec(body: RobotCreate) -> RobotSpec:
    permissions = tuple(
        RobotPermission(p.kind, p.namespace, tuple((a.resource, a.action) for a in p.access)) for p in body.permissions
    )
    return RobotSpec(body.name, body.level, permissions, body.description, body.duration, body.disable, body.secret)


def robot_resp(robot: Robot) -> dict[str, Any]:
    return without_none(
        {
            "id": robot.id,
            "name": robot.name,
            "description": robot.description,
            "level": robot.level,
            "duration": robot.duration,
            "editable": True,
            "disable": robot.disabled,
            "expires_at": robot.expires_at,
            "permissions": [
                {
                    "kind": p.kind,
                    "namespace": p.namespace,
                    "access": [{"resource": r, "action": a} for r, a in p.access],
                }
                for p in robot.permissions
            ],
            "creator_type": "local",
            "creation_time": iso(robot.creation_time),
            "update_time": iso(robot.update_time),
        }
    )


@router.post("/robots", status_code=201, summary="Create a robot account; the secret is returned only now")
async def create_robot(request: Request, response: Response, who: Caller, body: RobotCreate) -> dict[str, Any]:
    created = await services(request).robots.create(who, _spec(body))
    response.headers["Location"] = f"{request.url.path}/{created.robot.id}"
    return without_none(
        {
            "id": created.robot.id,
            "name": created.robot.name,
            "secret": created.secret,
            "creation_time": iso(created.robot.creation_time),
            "expires_at": created.robot.expires_at,
        }
    )


@router.get("/robots", summary="Robot accounts (q=Level=project,ProjectID=<id> for a project's)")
async def list_robots(
    request: Request, response: Response, who: Caller, paging: Pages, q: str | None = None, sort: str | None = None
) -> list[dict[str, Any]]:
    page = await services(request).robots.list(who, q, paging, sort)
    paged(request, response, page, paging)
    return [robot_resp(r) for r in page.items]


@router.get("/robots/{robot_id}", summary="A robot account")
async def get_robot(request: Request, who: Caller, robot_id: Id) -> dict[str, Any]:
    return robot_resp(await services(request).robots.get(who, robot_id))


@router.put(
    "/robots/{robot_id}",
    summary="Update a robot's description, permissions, duration or disable it",
    response_class=Response,
)
async def update_robot(request: Request, who: Caller, robot_id: Id, body: RobotCreate) -> None:
    await services(request).robots.update(who, robot_id, _spec(body))


@router.patch("/robots/{robot_id}", summary="Refresh a robot's secret (or set the one given)")
async def refresh_robot_secret(request: Request, who: Caller, robot_id: Id, body: RobotSec) -> dict[str, str]:
    return {"secret": await services(request).robots.refresh_secret(who, robot_id, body.secret)}


@router.delete("/robots/{robot_id}", summary="Delete a robot account", response_class=Response)
async def delete_robot(request: Request, who: Caller, robot_id: Id) -> None:
    await services(request).robots.delete(who, robot_id)
