"""What a principal may do in a project: roles for users, permission lists for robots."""

from __future__ import annotations

import time

from portside.auth.principal import Principal
from portside.auth.rbac import public_permits, role_permits
from portside.meta.accounts import Project, ProjectStore, Robot

__all__ = ["Policy", "robot_active", "robot_permits"]


def robot_active(robot: Robot, now: float | None = None) -> bool:
    if robot.disabled:
        return False
    return robot.expires_at == -1 or robot.expires_at > (now if now is not None else time.time())


def robot_permits(robot: Robot, project: Project | None, resource: str, action: str) -> bool:
    for permission in robot.permissions:
        if permission.kind == "project":
            if project is None or permission.namespace not in ("*", project.name):
                continue
            if robot.level == "project" and robot.project_id != project.project_id:
                continue
        elif permission.kind == "system":
            if project is not None:
                continue
        else:
            continue
        if any(r == resource and a in (action, "*") for r, a in permission.access):
            return True
    return False


class Policy:
    def __init__(self, projects: ProjectStore):
        self._projects = projects

    async def role(self, who: Principal, project: Project) -> int | None:
        if who.user is None:
            return None
        return await self._projects.role_of(project.project_id, who.user.user_id)

    async def permits(self, who: Principal, project: Project, resource: str, action: str) -> bool:
        if who.sysadmin:
            return True
        if project.public and public_permits(resource, action):
            return True
        if who.robot is not None:
            return robot_active(who.robot) and robot_permits(who.robot, project, resource, action)
        if who.user is not None:
            return role_permits(await self.role(who, project), resource, action)
        return False

    async def sees(self, who: Principal, project: Project) -> bool:
        """Whether `who` may know that `project` exists: it is public, or `who` is a system
        administrator, a member (any role), or a robot given any permission in it. Whoever
        may not is answered as if there were no such project."""
        if who.sysadmin or project.public:
            return True
        if who.robot is not None:
            robot = who.robot
            return robot_active(robot) and any(
                p.kind == "project"
                and p.namespace in ("*", project.name)
                and (robot.level != "project" or robot.project_id == project.project_id)
                for p in robot.permissions
            )
        return who.user is not None and await self.role(who, project) is not None

    def system_permits(self, who: Principal, resource: str, action: str) -> bool:
        """System-level resources (users, all robots, audit log of everything): admins, and
        system robots given that permission."""
        if who.sysadmin:
            return True
        return who.robot is not None and robot_active(who.robot) and robot_permits(who.robot, None, resource, action)
