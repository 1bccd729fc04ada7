"""Project members: Harbor's `/projects/{p}/members` with its five roles."""

from __future__ import annotations

from portside.auth.principal import Principal
from portside.auth.rbac import ROLE_NAMES
from portside.errors import BadRequest, Conflict, Forbidden, NotFound
from portside.meta.accounts import AuditStore, Member, Page, ProjectStore, UserStore
from portside.mgmt import limits
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Listing, Paging

__all__ = ["MemberService"]

_FIELDS = ("id", "entity_id", "entity_name", "role_id", "creation_time", "update_time")
_LISTING = Listing.of(_FIELDS, _FIELDS)


def _check_role(role_id: int) -> int:
    if role_id not in ROLE_NAMES:
        raise BadRequest(f"unknown role {role_id}; roles are {sorted(ROLE_NAMES)}")
    return role_id


class MemberService:
    def __init__(self, projects: ProjectStore, users: UserStore, audit: AuditStore, guard: Guard):
        self._projects = projects
        self._users = users
        self._audit = audit
        self._guard = guard

    async def _record(self, who: Principal, project_id: int, operation: str, username: str) -> None:
        await self._audit.record(
            project_id=project_id,
            username=who.name,
            operation=operation,
            resource_type="project_member",
            resource=username,
        )

    async def list(
        self,
        who: Principal,
        key: int | str,
        entityname: str | None,
        paging: Paging,
        q: str | None = None,
        sort: str | None = None,
    ) -> Page[Member]:
        """Harbor's `entityname` (members whose name contains it), and `q` and `sort`."""
        project = await self._guard.project_for(who, key, "member", "list")
        return await self._projects.list_members(
            project.project_id, entityname, paging.offset, paging.limit, _LISTING.criteria(q, sort)
        )

    async def get(self, who: Principal, key: int | str, member_id: int) -> Member:
        project = await self._guard.project_for(who, key, "member", "read")
        member = await self._projects.get_member(project.project_id, member_id)
        if member is None:
            raise NotFound(f"member {member_id} not found in project {project.name}")
        return member

    async def add(
        self, who: Principal, key: int | str, user_id: int | None, username: str | None, role_id: int
    ) -> Member:
        project = await self._guard.project_for(who, key, "member", "create")
        _check_role(role_id)
        if user_id is None and not username:
            raise BadRequest("member_user needs user_id or username")
        if user_id is not None and not limits.is_id(user_id):
            raise NotFound(f"user {user_id} not found")
        if username is not None:
            limits.check_text("member_user.username", username, limits.USERNAME)
        user = await self._users.get_user(user_id if user_id is not None else str(username))
        if user is None:
            raise NotFound(f"user {user_id if user_id is not None else username} not found")
        if await self._projects.role_of(project.project_id, user.user_id) is not None:
            raise Conflict(f"{user.username} is already a member of {project.name}")
        member = await self._projects.add_member(project.project_id, user.user_id, role_id)
        await self._record(who, project.project_id, "create", user.username)
        return member

    async def update(self, who: Principal, key: int | str, member_id: int, role_id: int) -> None:
        project = await self._guard.project_for(who, key, "member", "update")
        _check_role(role_id)
        member = await self._member(project.project_id, project.name, member_id)
        if member.user_id == who.user_id:
            raise Forbidden("you cannot change your own role")
        await self._projects.update_member(project.project_id, member_id, role_id)
        await self._record(who, project.project_id, "update", member.username)

    async def remove(self, who: Principal, key: int | str, member_id: int) -> None:
        project = await self._guard.project_for(who, key, "member", "delete")
        member = await self._member(project.project_id, project.name, member_id)
        if member.user_id == who.user_id:
            raise Forbidden("you cannot remove yourself")
        await self._projects.remove_member(project.project_id, member_id)
        await self._record(who, project.project_id, "delete", member.username)

    async def _member(self, project_id: int, project_name: str, member_id: int) -> Member:
        member = await self._projects.get_member(project_id, member_id)
        if member is None:
            raise NotFound(f"member {member_id} not found in project {project_name}")
        return member
