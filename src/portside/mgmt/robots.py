"""Robot accounts: Harbor's `/robots`.

System robots (`robot$<name>`) need a system administrator; project robots
(`robot$<project>+<name>`) may be managed by their project's admins. A robot never
receives a permission its creator could not use: escalation through robots is refused.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from portside.auth.authn import ROBOT_PREFIX
from portside.auth.passwords import hash_secret, new_robot_secret, password_problem
from portside.auth.principal import Principal
from portside.digits import parse_decimal
from portside.errors import BadRequest, Conflict, NotFound
from portside.meta.accounts import AuditStore, Page, Project, Robot, RobotPermission, RobotStore
from portside.meta.criteria import Match
from portside.mgmt import limits
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Listing, Paging

__all__ = ["RobotService", "RobotSpec", "CreatedRobot"]

_NAME = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*$")
_DAY = 86400
_DEFAULT_DAYS = 30  # Harbor's default when no duration is given
_FIELDS = (
    "id",
    "name",
    "description",
    "level",
    "project_id",
    "duration",
    "expires_at",
    "disabled",
    "creator",
    "creation_time",
    "update_time",
)
_LISTING = Listing.of(
    _FIELDS,
    ("id", "name", "level", "project_id", "duration", "expires_at", "creation_time", "update_time"),
    aliases={"Level": "level", "ProjectID": "project_id", "Name": "name", "ID": "id", "Disabled": "disabled"},
)


@dataclass(frozen=True, slots=True)
class RobotSpec:
    name: str
    level: str
    permissions: tuple[RobotPermission, ...]
    description: str = ""
    duration: int | None = None
    disable: bool = False
    secret: str | None = None


@dataclass(frozen=True, slots=True)
class CreatedRobot:
    robot: Robot
    secret: str


def _expires_at(duration: int, start: float) -> int:
    if duration == -1:
        return -1
    if not 0 < duration <= limits.MAX_INTEGER:
        raise BadRequest(f"duration must be -1 (never expires) or a number of days from 1 to {limits.MAX_INTEGER}")
    return int(start) + duration * _DAY


def _project_id(match: Match) -> int:
    """The project id of `q=ProjectID=<id>`: a number, or 400; one no project can have, 404."""
    if match.kind != "exact":
        raise BadRequest("ProjectID takes one project id: q=ProjectID=<id>")
    text = str(match.value).strip()
    project_id = parse_decimal(text)
    if project_id is None:
        raise BadRequest("ProjectID must be a number")
    if not limits.is_id(project_id):
        raise NotFound(f"project {text[:40]} not found")
    return project_id


def _check_spec(spec: RobotSpec) -> None:
    """The shape of a robot: lengths and counts its columns and permission list can hold."""
    limits.check_text("description", spec.description, limits.ROBOT_DESCRIPTION)
    if len(spec.permissions) > limits.ROBOT_PERMISSIONS:
        raise BadRequest(f"a robot may have at most {limits.ROBOT_PERMISSIONS} permissions")
    for permission in spec.permissions:
        if len(permission.access) > limits.ROBOT_PERMISSIONS:
            raise BadRequest(f"a permission may have at most {limits.ROBOT_PERMISSIONS} accesses")
        limits.check_text("permissions.kind", permission.kind, limits.PERMISSION_WORD)
        limits.check_text("permissions.namespace", permission.namespace, limits.PERMISSION_WORD)
        for resource, action in permission.access:
            limits.check_text("permissions.access.resource", resource, limits.PERMISSION_WORD)
            limits.check_text("permissions.access.action", action, limits.PERMISSION_WORD)


def _check_name(name: str) -> None:
    if len(name) > 200 or not _NAME.match(name):
        raise BadRequest(f"invalid robot name {name[:200]!r}: lowercase letters, digits and ._- between them")


def _check_secret(secret: str) -> None:
    if problem := password_problem(secret):
        raise BadRequest(f"secret: {problem}")


class RobotService:
    def __init__(self, robots: RobotStore, audit: AuditStore, guard: Guard):
        self._robots = robots
        self._audit = audit
        self._guard = guard

    async def _record(self, who: Principal, robot: Robot, operation: str) -> None:
        await self._audit.record(
            project_id=robot.project_id,
            username=who.name,
            operation=operation,
            resource_type="robot",
            resource=robot.name,
        )

    async def _scope(
        self, who: Principal, level: str, permissions: Sequence[RobotPermission], action: str
    ) -> Project | None:
        """Check that `who` may `action` robots at `level` and could use every permission given;
        returns the project of a project robot."""
        if level == "system":
            self._guard.system(who, "robot", action)
            for permission in permissions:
                for resource, act in permission.access:
                    if permission.kind == "system":
                        self._guard.system(who, resource, act)
                    elif permission.kind == "project":
                        await self._check_project_permission(who, permission.namespace, resource, act)
                    else:
                        raise BadRequest(f"unknown permission kind {permission.kind!r}")
            return None
        if level != "project":
            raise BadRequest("level must be system or project")
        if len(permissions) != 1 or permissions[0].kind != "project" or permissions[0].namespace == "*":
            raise BadRequest("a project robot has exactly one permission of kind project naming its project")
        project = await self._guard.project_for(who, permissions[0].namespace, "robot", action)
        for resource, act in permissions[0].access:
            await self._guard.require(who, project, resource, act)
        return project

    async def _check_project_permission(self, who: Principal, namespace: str, resource: str, action: str) -> None:
        if namespace == "*":
            # Every project at once: only for those who hold the permission system-wide.
            self._guard.system(who, resource, action)
            return
        await self._guard.require(who, await self._guard.project(namespace), resource, action)

    async def create(self, who: Principal, spec: RobotSpec) -> CreatedRobot:
        # The shape first: a malformed robot is refused before any permission is looked up.
        _check_name(spec.name)
        _check_spec(spec)
        project = await self._scope(who, spec.level, spec.permissions, "create")
        return await self.add(spec, project, by=who.name)

    async def add(self, spec: RobotSpec, project: Project | None, *, by: str) -> CreatedRobot:
        """Create without a permission check (the CLI, or after `create` checked)."""
        _check_name(spec.name)
        _check_spec(spec)
        full = f"{ROBOT_PREFIX}{project.name}+{spec.name}" if project else f"{ROBOT_PREFIX}{spec.name}"
        if len(full) > limits.ROBOT_NAME:
            raise BadRequest(f"the robot's full name {full!r} must be at most {limits.ROBOT_NAME} characters long")
        if await self._robots.get_robot(full) is not None:
            raise Conflict(f"robot {full} already exists")
        if spec.secret is not None:
            _check_secret(spec.secret)
        secret = spec.secret or new_robot_secret()
        duration = spec.duration if spec.duration not in (None, 0) else _DEFAULT_DAYS
        assert duration is not None
        robot = await self._robots.create_robot(
            full,
            hash_secret(secret),
            description=spec.description,
            level=spec.level,
            project_id=project.project_id if project else None,
            duration=duration,
            expires_at=_expires_at(duration, time.time()),
            disabled=spec.disable,
            permissions=spec.permissions,
            creator=by,
        )
        await self._audit.record(
            project_id=robot.project_id, username=by, operation="create", resource_type="robot", resource=full
        )
        return CreatedRobot(robot, secret)

    async def _robot(self, who: Principal, robot_id: int, action: str) -> Robot:
        robot = await self._robots.get_robot(robot_id)
        if robot is None:
            raise NotFound(f"robot {robot_id} not found")
        if robot.level == "project" and robot.project_id is not None:
            project = await self._guard.seen(who, robot.project_id)
            if project is None:
                # A robot of a project the caller may not see does not exist for it either.
                raise NotFound(f"robot {robot_id} not found")
            await self._guard.require(who, project, "robot", action)
        else:
            self._guard.system(who, "robot", action)
        return robot

    async def get(self, who: Principal, robot_id: int) -> Robot:
        return await self._robot(who, robot_id, "read")

    async def list(self, who: Principal, q: str | None, paging: Paging, sort: str | None = None) -> Page[Robot]:
        """Harbor's robot list: a project's robots (q=ProjectID=<id>) for those who may list
        them there; every robot for those who may list them system-wide."""
        criteria = _LISTING.criteria(q, sort)
        projects = criteria.on("project_id")
        if projects:
            project_ids = {_project_id(m) for m in projects}
            if len(project_ids) != 1:
                raise BadRequest("ProjectID takes one project id")
            project_id = project_ids.pop()
            await self._guard.project_for(who, project_id, "robot", "list")
            return await self._robots.list_robots(
                project_id, None, paging.offset, paging.limit, criteria.without("project_id")
            )
        self._guard.system(who, "robot", "list")
        return await self._robots.list_robots(None, None, paging.offset, paging.limit, criteria)

    async def update(self, who: Principal, robot_id: int, spec: RobotSpec) -> None:
        robot = await self._robot(who, robot_id, "update")
        _check_spec(spec)
        if spec.level != robot.level:
            raise BadRequest("the level of a robot cannot change")
        short = robot.name.removeprefix(ROBOT_PREFIX)
        if spec.name and spec.name not in (robot.name, short, short.rpartition("+")[2]):
            raise BadRequest("the name of a robot cannot change")
        project = await self._scope(who, spec.level, spec.permissions, "update")
        if project is not None and project.project_id != robot.project_id:
            raise BadRequest("a project robot cannot move to another project")
        duration = spec.duration if spec.duration not in (None, 0) else robot.duration
        assert duration is not None
        await self._robots.update_robot(
            robot_id,
            description=spec.description,
            disabled=spec.disable,
            duration=duration,
            expires_at=_expires_at(duration, robot.creation_time.timestamp()),
            permissions=spec.permissions,
        )
        await self._record(who, robot, "update")

    async def refresh_secret(self, who: Principal, robot_id: int, secret: str | None) -> str:
        robot = await self._robot(who, robot_id, "update")
        if secret:
            _check_secret(secret)
        new = secret or new_robot_secret()
        await self._robots.update_robot(robot_id, secret_hash=hash_secret(new))
        await self._record(who, robot, "update")
        return new

    async def delete(self, who: Principal, robot_id: int) -> None:
        robot = await self._robot(who, robot_id, "delete")
        await self._robots.delete_robot(robot_id)
        await self._record(who, robot, "delete")

    async def remove(self, robot: Robot, *, by: str) -> None:
        """Delete without a permission check (a robot the server made for itself)."""
        await self._robots.delete_robot(robot.id)
        await self._audit.record(
            project_id=robot.project_id, username=by, operation="delete", resource_type="robot", resource=robot.name
        )

    async def page(self, paging: Paging) -> Page[Robot]:
        return await self._robots.list_robots(None, None, paging.offset, paging.limit)
