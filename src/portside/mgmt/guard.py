"""Permission checks shared by the services: who may see or change which project.

A project the caller may not see (private, and not theirs) is answered as one that does
not exist (404), whoever asks, so private names cannot be found by probing. In a project
the caller may see, anonymous callers are told to sign in (401) and signed-in callers
without the permission are refused (403), as Harbor answers.
"""

from __future__ import annotations

from portside.auth.policy import Policy
from portside.auth.principal import Principal
from portside.errors import Forbidden, NotFound, Unauthorized
from portside.meta.accounts import Project, ProjectStore
from portside.mgmt.limits import is_id

__all__ = ["Guard"]

_ALL = 1_000_000


class Guard:
    def __init__(self, policy: Policy, projects: ProjectStore):
        self.policy = policy
        self._projects = projects

    @staticmethod
    def refuse(who: Principal, what: str) -> Exception:
        if not who.authenticated:
            return Unauthorized(f"sign in to {what}")
        return Forbidden(f"{who.name} may not {what}")

    def signed_in(self, who: Principal, what: str) -> None:
        if not who.authenticated:
            raise Unauthorized(f"sign in to {what}")

    def system(self, who: Principal, resource: str, action: str) -> None:
        if not self.policy.system_permits(who, resource, action):
            raise self.refuse(who, f"{action} {resource}")

    async def project(self, key: int | str) -> Project:
        """The project, without a permission check (for the operator, or before one)."""
        project = None if isinstance(key, int) and not is_id(key) else await self._projects.get_project(key)
        if project is None:
            raise _no_such_project(key)
        return project

    async def require(
        self, who: Principal, project: Project, resource: str, action: str, key: int | str | None = None
    ) -> None:
        """Refuse unless `who` may do `action` on `resource` in `project`, which the caller
        named by `key` (its name when None): as a missing project when it may not see it."""
        if await self.policy.permits(who, project, resource, action):
            return
        if not await self.policy.sees(who, project):
            raise _no_such_project(project.name if key is None else key)
        raise self.refuse(who, f"{action} {resource} in project {project.name}")

    async def project_for(self, who: Principal, key: int | str, resource: str, action: str) -> Project:
        project = await self.project(key)
        await self.require(who, project, resource, action, key)
        return project

    async def seen(self, who: Principal, key: int | str) -> Project | None:
        """The project, when it exists and `who` may see it."""
        project = await self._projects.get_project(key)
        return project if project is not None and await self.policy.sees(who, project) else None

    async def visible(self, who: Principal, resource: str, action: str) -> list[Project] | None:
        """Projects where `who` may do `action` on `resource`; None means every project."""
        if who.sysadmin:
            return None
        candidates = await self._projects.list_projects(
            name_contains=None,
            exact_name=None,
            public=None,
            visible_to=None if who.robot is not None else (who.user_id if who.user else -1),
            member_of=None,
            offset=0,
            limit=_ALL,
        )
        return [p for p in candidates.items if await self.policy.permits(who, p, resource, action)]

    async def every_project(self) -> list[Project]:
        found = await self._projects.list_projects(
            name_contains=None, exact_name=None, public=None, visible_to=None, member_of=None, offset=0, limit=_ALL
        )
        return found.items


def _no_such_project(key: int | str) -> NotFound:
    return NotFound(f"project {key} not found")
