"""Records and store protocols for access control: users, projects, members, robots, audit."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from portside.meta.criteria import EVERYTHING, Criteria

T = TypeVar("T")

__all__ = [
    "User",
    "Project",
    "Member",
    "Robot",
    "RobotPermission",
    "AuditRecord",
    "AuditQuery",
    "AuditEntry",
    "Page",
    "UserUpdate",
    "UserStore",
    "ProjectStore",
    "RobotStore",
    "AuditStore",
]


@dataclass(frozen=True, slots=True)
class User:
    user_id: int
    username: str
    email: str | None
    realname: str
    comment: str
    password_hash: str
    sysadmin: bool
    totp_secret: str | None
    creation_time: datetime
    update_time: datetime
    # Moves with every password change; tokens carry the one they were issued under.
    generation: int = 0


@dataclass(frozen=True, slots=True)
class Project:
    project_id: int
    name: str
    owner_id: int
    owner_name: str
    metadata: Mapping[str, str]
    creation_time: datetime
    update_time: datetime
    repo_count: int = 0

    @property
    def public(self) -> bool:
        return self.metadata.get("public", "false").lower() == "true"


@dataclass(frozen=True, slots=True)
class Member:
    id: int
    project_id: int
    user_id: int
    username: str
    role_id: int


@dataclass(frozen=True, slots=True)
class RobotPermission:
    """Harbor's shape: kind "project" (namespace = project name, or "*") or "system"."""

    kind: str
    namespace: str
    access: tuple[tuple[str, str], ...]  # (resource, action)


@dataclass(frozen=True, slots=True)
class Robot:
    id: int
    name: str
    description: str
    secret_hash: str
    level: str  # "system" or "project"
    project_id: int | None
    duration: int  # days; -1 never expires
    expires_at: int  # epoch seconds; -1 never
    disabled: bool
    permissions: tuple[RobotPermission, ...]
    creator: str
    creation_time: datetime
    update_time: datetime
    # Moves when the secret is refreshed or the robot disabled (see User.generation).
    generation: int = 0


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """An audit record to write."""

    project_id: int | None
    username: str
    operation: str
    resource_type: str
    resource: str
    client: str
    success: bool
    op_time: datetime


@dataclass(frozen=True, slots=True)
class AuditRecord(AuditEntry):
    """An audit record as stored: the entry and the id it was given."""

    id: int


@dataclass(frozen=True, slots=True)
class AuditQuery:
    project_id: int | None = None
    username: str | None = None
    operation: str | None = None
    resource_type: str | None = None
    resource: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    # Only records of these projects (None: no restriction); for non-admin listings.
    project_ids: Sequence[int] | None = None
    # Harbor's q and sort on the fields id, username, operation, resource_type, resource,
    # op_time (ties, and no sort: newest_first).
    criteria: Criteria = EVERYTHING


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    total: int


@dataclass(frozen=True, slots=True)
class UserUpdate:
    email: str | None = None
    realname: str | None = None
    comment: str | None = None
    password_hash: str | None = None
    sysadmin: bool | None = None
    totp_secret: str | None = field(default=None)
    clear_totp: bool = False


class UserStore(Protocol):
    async def create_user(
        self, username: str, password_hash: str, *, email: str | None, realname: str, comment: str, sysadmin: bool
    ) -> User: ...

    async def get_user(self, key: int | str) -> User | None:
        """By id, or by username."""

    async def list_users(self, criteria: Criteria, offset: int, limit: int) -> Page[User]:
        """Fields: user_id, username, email, realname, comment, sysadmin_flag, creation_time,
        update_time (meta/criteria.py); by user id after the order asked for."""

    async def update_user(self, user_id: int, change: UserUpdate) -> User | None:
        """Apply `change`; a new password hash also moves the user's generation."""

    async def claim_totp_step(self, user_id: int, step: int) -> bool:
        """Record that the TOTP code of time step `step` was used, if no code of this or a
        later step was: True when it was claimed now (each code signs in once). Not an
        account change."""

    async def replace_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> bool:
        """Store `new_hash` (the same password, hashed anew) if the stored hash is still
        `old_hash`: a password changed meanwhile is never overwritten. Not an account change:
        remembered logins stay valid."""

    async def delete_user(self, user_id: int) -> bool: ...


class ProjectStore(Protocol):
    async def create_project(self, name: str, owner_id: int, metadata: Mapping[str, str]) -> Project:
        """Create the project and make its owner its projectAdmin."""

    async def get_project(self, key: int | str) -> Project | None: ...

    async def list_projects(
        self,
        *,
        name_contains: str | None,
        exact_name: str | None,
        public: bool | None,
        visible_to: int | None,
        member_of: int | None,
        offset: int,
        limit: int,
        criteria: Criteria = EVERYTHING,
    ) -> Page[Project]:
        """`visible_to`: only public projects and those the user is a member of (None: all).
        `criteria` fields: project_id, name, owner_id, owner (the owner's name), public,
        creation_time, update_time; by name after the order asked for."""

    async def update_metadata(self, project_id: int, metadata: Mapping[str, str]) -> None: ...

    async def delete_project(self, project_id: int) -> bool:
        """Delete the project, checking in the same transaction that it holds no
        repositories (raises `PreconditionFailed`): a push that checked the project a moment
        before has either committed its repository, or waits and then finds it gone."""

    async def role_of(self, project_id: int, user_id: int) -> int | None: ...

    async def roles_of_user(self, user_id: int) -> dict[str, int]:
        """Project name → role id, for every project the user is a member of."""

    async def list_members(
        self, project_id: int, name_contains: str | None, offset: int, limit: int, criteria: Criteria = EVERYTHING
    ) -> Page[Member]:
        """`criteria` fields: id, entity_id, entity_name, role_id, creation_time, update_time."""

    async def get_member(self, project_id: int, member_id: int) -> Member | None: ...

    async def add_member(self, project_id: int, user_id: int, role_id: int) -> Member: ...

    async def update_member(self, project_id: int, member_id: int, role_id: int) -> bool: ...

    async def remove_member(self, project_id: int, member_id: int) -> bool: ...


class RobotStore(Protocol):
    async def create_robot(
        self,
        name: str,
        secret_hash: str,
        *,
        description: str,
        level: str,
        project_id: int | None,
        duration: int,
        expires_at: int,
        disabled: bool,
        permissions: Sequence[RobotPermission],
        creator: str,
    ) -> Robot: ...

    async def get_robot(self, key: int | str) -> Robot | None: ...

    async def list_robots(
        self,
        project_id: int | None,
        name_contains: str | None,
        offset: int,
        limit: int,
        criteria: Criteria = EVERYTHING,
    ) -> Page[Robot]:
        """`project_id` None lists system robots and project robots alike. `criteria` fields:
        id, name, description, level, project_id, duration, expires_at, disabled, creator,
        creation_time, update_time."""

    async def update_robot(
        self,
        robot_id: int,
        *,
        description: str | None = None,
        disabled: bool | None = None,
        duration: int | None = None,
        expires_at: int | None = None,
        permissions: Sequence[RobotPermission] | None = None,
        secret_hash: str | None = None,
    ) -> Robot | None:
        """A new secret, or disabling, also moves the robot's generation."""

    async def delete_robot(self, robot_id: int) -> bool: ...


class AuditStore(Protocol):
    async def record(
        self,
        *,
        project_id: int | None,
        username: str,
        operation: str,
        resource_type: str,
        resource: str,
        client: str = "",
        success: bool = True,
    ) -> None: ...

    async def record_many(self, entries: Sequence[AuditEntry]) -> None:
        """Write many records in one transaction."""

    async def list_audit(
        self, query: AuditQuery, offset: int, limit: int, newest_first: bool = True
    ) -> Page[AuditRecord]: ...

    async def purge_audit(self, before: datetime) -> int: ...
