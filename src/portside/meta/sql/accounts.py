"""Users, projects, members, robots and the audit log on SQLAlchemy Core."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, func, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from portside.meta.accounts import (
    AuditEntry,
    AuditQuery,
    AuditRecord,
    Member,
    Page,
    Project,
    Robot,
    RobotPermission,
    User,
    UserUpdate,
)
from portside.meta.sql.engine import SqlBase, now
from portside.meta.sql.schema import (
    audit_logs,
    project_members,
    project_metadata,
    projects,
    repositories,
    robots,
    users,
)

__all__ = ["SqlAccounts", "PROJECT_ADMIN_ROLE"]

PROJECT_ADMIN_ROLE = 1


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _user(row: Row[Any]) -> User:
    return User(
        row.user_id,
        row.username,
        row.email,
        row.realname,
        row.comment,
        row.password_hash,
        bool(row.sysadmin),
        row.totp_secret,
        row.creation_time,
        row.update_time,
    )


def _permissions_to_json(permissions: Sequence[RobotPermission]) -> str:
    return json.dumps(
        [
            {"kind": p.kind, "namespace": p.namespace, "access": [{"resource": r, "action": a} for r, a in p.access]}
            for p in permissions
        ]
    )


def _permissions_from_json(text: str) -> tuple[RobotPermission, ...]:
    return tuple(
        RobotPermission(p["kind"], p["namespace"], tuple((a["resource"], a["action"]) for a in p["access"]))
        for p in json.loads(text)
    )


def _robot(row: Row[Any]) -> Robot:
    return Robot(
        row.id,
        row.name,
        row.description,
        row.secret_hash,
        row.level,
        row.project_id,
        row.duration,
        row.expires_at,
        bool(row.disabled),
        _permissions_from_json(row.permissions),
        row.creator,
        row.creation_time,
        row.update_time,
    )


class SqlAccounts(SqlBase):
    # --- users ----------------------------------------------------------------------------

    async def create_user(
        self, username: str, password_hash: str, *, email: str | None, realname: str, comment: str, sysadmin: bool
    ) -> User:
        when = now()
        async with self._write() as conn:
            result = await conn.execute(
                insert(users).values(
                    username=username,
                    email=email or None,
                    realname=realname,
                    comment=comment,
                    password_hash=password_hash,
                    sysadmin=sysadmin,
                    creation_time=when,
                    update_time=when,
                )
            )
            user_id = result.inserted_primary_key[0]  # type: ignore[index]
            row = (await conn.execute(select(users).where(users.c.user_id == user_id))).one()
        return _user(row)

    async def get_user(self, key: int | str) -> User | None:
        column = users.c.user_id if isinstance(key, int) else users.c.username
        async with self._read() as conn:
            row = (await conn.execute(select(users).where(column == key))).first()
        return _user(row) if row else None

    async def list_users(self, name_contains: str | None, offset: int, limit: int) -> Page[User]:
        query = select(users)
        if name_contains:
            query = query.where(users.c.username.like(_like(name_contains), escape="\\"))
        async with self._read() as conn:
            total = await self._count(conn, query)
            rows = await conn.execute(query.order_by(users.c.user_id).offset(offset).limit(limit))
            return Page([_user(r) for r in rows], total)

    async def update_user(self, user_id: int, change: UserUpdate) -> User | None:
        values: dict[str, Any] = {
            k: v
            for k, v in {
                "email": change.email,
                "realname": change.realname,
                "comment": change.comment,
                "password_hash": change.password_hash,
                "sysadmin": change.sysadmin,
                "totp_secret": change.totp_secret,
            }.items()
            if v is not None
        }
        if change.clear_totp:
            values["totp_secret"] = None
        values["update_time"] = now()
        async with self._write() as conn:
            await conn.execute(update(users).where(users.c.user_id == user_id).values(**values))
            row = (await conn.execute(select(users).where(users.c.user_id == user_id))).first()
        return _user(row) if row else None

    async def delete_user(self, user_id: int) -> bool:
        async with self._write() as conn:
            await conn.execute(delete(project_members).where(project_members.c.user_id == user_id))
            result = await conn.execute(delete(users).where(users.c.user_id == user_id))
            return result.rowcount > 0

    # --- projects -------------------------------------------------------------------------

    def _project_query(self) -> Select[Any]:
        repo_count = (
            select(func.count())
            .select_from(repositories)
            .where(
                or_(
                    repositories.c.name.like(projects.c.name.concat("/%")),
                    repositories.c.name == projects.c.name,
                )
            )
            .scalar_subquery()
        )
        return select(projects, users.c.username.label("owner_name"), repo_count.label("repo_count")).join(
            users, users.c.user_id == projects.c.owner_id
        )

    async def _projects(self, conn: AsyncConnection, query: Select[Any]) -> list[Project]:
        rows = (await conn.execute(query)).all()
        if not rows:
            return []
        ids = [r.project_id for r in rows]
        meta: dict[int, dict[str, str]] = {i: {} for i in ids}
        for m in await conn.execute(select(project_metadata).where(project_metadata.c.project_id.in_(ids))):
            meta[m.project_id][m.name] = m.value
        return [
            Project(
                r.project_id,
                r.name,
                r.owner_id,
                r.owner_name,
                meta[r.project_id],
                r.creation_time,
                r.update_time,
                r.repo_count or 0,
            )
            for r in rows
        ]

    async def create_project(self, name: str, owner_id: int, metadata: Mapping[str, str]) -> Project:
        when = now()
        async with self._write() as conn:
            result = await conn.execute(
                insert(projects).values(name=name, owner_id=owner_id, creation_time=when, update_time=when)
            )
            project_id = result.inserted_primary_key[0]  # type: ignore[index]
            if metadata:
                await conn.execute(
                    insert(project_metadata),
                    [{"project_id": project_id, "name": k, "value": v} for k, v in metadata.items()],
                )
            await conn.execute(
                insert(project_members).values(
                    project_id=project_id,
                    user_id=owner_id,
                    role_id=PROJECT_ADMIN_ROLE,
                    creation_time=when,
                    update_time=when,
                )
            )
            found = await self._projects(conn, self._project_query().where(projects.c.project_id == project_id))
        return found[0]

    async def get_project(self, key: int | str) -> Project | None:
        column = projects.c.project_id if isinstance(key, int) else projects.c.name
        async with self._read() as conn:
            found = await self._projects(conn, self._project_query().where(column == key))
        return found[0] if found else None

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
    ) -> Page[Project]:
        query = self._project_query()
        is_public = (
            select(project_metadata.c.project_id)
            .where(project_metadata.c.name == "public", project_metadata.c.value == "true")
            .scalar_subquery()
        )
        if name_contains:
            query = query.where(projects.c.name.like(_like(name_contains), escape="\\"))
        if exact_name:
            query = query.where(projects.c.name == exact_name)
        if public is not None:
            query = query.where(
                projects.c.project_id.in_(is_public) if public else ~projects.c.project_id.in_(is_public)
            )
        if member_of is not None or visible_to is not None:
            user_id = member_of if member_of is not None else visible_to
            membership = select(project_members.c.project_id).where(project_members.c.user_id == user_id)
            if member_of is not None:
                query = query.where(projects.c.project_id.in_(membership))
            else:
                query = query.where(or_(projects.c.project_id.in_(membership), projects.c.project_id.in_(is_public)))
        async with self._read() as conn:
            total = await self._count(conn, query)
            items = await self._projects(conn, query.order_by(projects.c.name).offset(offset).limit(limit))
        return Page(items, total)

    async def update_metadata(self, project_id: int, metadata: Mapping[str, str]) -> None:
        async with self._write() as conn:
            for name, value in metadata.items():
                await conn.execute(
                    self._insert(project_metadata)
                    .values(project_id=project_id, name=name, value=value)
                    .on_conflict_do_update(
                        index_elements=[project_metadata.c.project_id, project_metadata.c.name], set_={"value": value}
                    )
                )
            await conn.execute(update(projects).where(projects.c.project_id == project_id).values(update_time=now()))

    async def delete_project(self, project_id: int) -> bool:
        async with self._write() as conn:
            await conn.execute(delete(project_metadata).where(project_metadata.c.project_id == project_id))
            await conn.execute(delete(project_members).where(project_members.c.project_id == project_id))
            await conn.execute(delete(robots).where(robots.c.project_id == project_id))
            result = await conn.execute(delete(projects).where(projects.c.project_id == project_id))
            return result.rowcount > 0

    # --- members --------------------------------------------------------------------------

    def _member_query(self) -> Select[Any]:
        return select(project_members, users.c.username).join(users, users.c.user_id == project_members.c.user_id)

    @staticmethod
    def _member(row: Row[Any]) -> Member:
        return Member(row.id, row.project_id, row.user_id, row.username, row.role_id)

    async def role_of(self, project_id: int, user_id: int) -> int | None:
        async with self._read() as conn:
            return (
                await conn.execute(
                    select(project_members.c.role_id).where(
                        project_members.c.project_id == project_id, project_members.c.user_id == user_id
                    )
                )
            ).scalar()

    async def roles_of_user(self, user_id: int) -> dict[str, int]:
        async with self._read() as conn:
            rows = await conn.execute(
                select(projects.c.name, project_members.c.role_id)
                .join(projects, projects.c.project_id == project_members.c.project_id)
                .where(project_members.c.user_id == user_id)
            )
            return {r.name: r.role_id for r in rows}

    async def list_members(self, project_id: int, name_contains: str | None, offset: int, limit: int) -> Page[Member]:
        query = self._member_query().where(project_members.c.project_id == project_id)
        if name_contains:
            query = query.where(users.c.username.like(_like(name_contains), escape="\\"))
        async with self._read() as conn:
            total = await self._count(conn, query)
            rows = await conn.execute(query.order_by(project_members.c.id).offset(offset).limit(limit))
            return Page([self._member(r) for r in rows], total)

    async def get_member(self, project_id: int, member_id: int) -> Member | None:
        query = self._member_query().where(
            project_members.c.project_id == project_id, project_members.c.id == member_id
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return self._member(row) if row else None

    async def add_member(self, project_id: int, user_id: int, role_id: int) -> Member:
        when = now()
        async with self._write() as conn:
            result = await conn.execute(
                insert(project_members).values(
                    project_id=project_id, user_id=user_id, role_id=role_id, creation_time=when, update_time=when
                )
            )
            member_id = result.inserted_primary_key[0]  # type: ignore[index]
            row = (await conn.execute(self._member_query().where(project_members.c.id == member_id))).one()
        return self._member(row)

    async def update_member(self, project_id: int, member_id: int, role_id: int) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                update(project_members)
                .where(project_members.c.project_id == project_id, project_members.c.id == member_id)
                .values(role_id=role_id, update_time=now())
            )
            return result.rowcount > 0

    async def remove_member(self, project_id: int, member_id: int) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                delete(project_members).where(
                    project_members.c.project_id == project_id, project_members.c.id == member_id
                )
            )
            return result.rowcount > 0

    # --- robots ---------------------------------------------------------------------------

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
    ) -> Robot:
        when = now()
        async with self._write() as conn:
            result = await conn.execute(
                insert(robots).values(
                    name=name,
                    description=description,
                    secret_hash=secret_hash,
                    level=level,
                    project_id=project_id,
                    duration=duration,
                    expires_at=expires_at,
                    disabled=disabled,
                    permissions=_permissions_to_json(permissions),
                    creator=creator,
                    creation_time=when,
                    update_time=when,
                )
            )
            robot_id = result.inserted_primary_key[0]  # type: ignore[index]
            row = (await conn.execute(select(robots).where(robots.c.id == robot_id))).one()
        return _robot(row)

    async def get_robot(self, key: int | str) -> Robot | None:
        column = robots.c.id if isinstance(key, int) else robots.c.name
        async with self._read() as conn:
            row = (await conn.execute(select(robots).where(column == key))).first()
        return _robot(row) if row else None

    async def list_robots(
        self, project_id: int | None, name_contains: str | None, offset: int, limit: int
    ) -> Page[Robot]:
        query = select(robots)
        if project_id is not None:
            query = query.where(robots.c.project_id == project_id)
        if name_contains:
            query = query.where(robots.c.name.like(_like(name_contains), escape="\\"))
        async with self._read() as conn:
            total = await self._count(conn, query)
            rows = await conn.execute(query.order_by(robots.c.id).offset(offset).limit(limit))
            return Page([_robot(r) for r in rows], total)

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
        values: dict[str, Any] = {
            k: v
            for k, v in {
                "description": description,
                "disabled": disabled,
                "duration": duration,
                "expires_at": expires_at,
                "secret_hash": secret_hash,
            }.items()
            if v is not None
        }
        if permissions is not None:
            values["permissions"] = _permissions_to_json(permissions)
        values["update_time"] = now()
        async with self._write() as conn:
            await conn.execute(update(robots).where(robots.c.id == robot_id).values(**values))
            row = (await conn.execute(select(robots).where(robots.c.id == robot_id))).first()
        return _robot(row) if row else None

    async def delete_robot(self, robot_id: int) -> bool:
        async with self._write() as conn:
            result = await conn.execute(delete(robots).where(robots.c.id == robot_id))
            return result.rowcount > 0

    # --- audit ----------------------------------------------------------------------------

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
    ) -> None:
        async with self._write() as conn:
            await conn.execute(
                insert(audit_logs).values(
                    project_id=project_id,
                    username=username,
                    operation=operation,
                    resource_type=resource_type,
                    resource=resource[:1024],
                    client=client[:64],
                    success=success,
                    op_time=now(),
                )
            )

    async def record_many(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        async with self._write() as conn:
            await conn.execute(
                insert(audit_logs),
                [
                    {
                        "project_id": e.project_id,
                        "username": e.username,
                        "operation": e.operation,
                        "resource_type": e.resource_type,
                        "resource": e.resource[:1024],
                        "client": e.client[:64],
                        "success": e.success,
                        "op_time": e.op_time,
                    }
                    for e in entries
                ],
            )

    async def list_audit(
        self, query: AuditQuery, offset: int, limit: int, newest_first: bool = True
    ) -> Page[AuditRecord]:
        stmt = select(audit_logs)
        if query.project_id is not None:
            stmt = stmt.where(audit_logs.c.project_id == query.project_id)
        if query.project_ids is not None:
            stmt = stmt.where(audit_logs.c.project_id.in_(list(query.project_ids)))
        for column, value in (
            (audit_logs.c.username, query.username),
            (audit_logs.c.operation, query.operation),
            (audit_logs.c.resource_type, query.resource_type),
        ):
            if value:
                stmt = stmt.where(column == value)
        if query.resource:
            stmt = stmt.where(audit_logs.c.resource.like(_like(query.resource), escape="\\"))
        if query.since:
            stmt = stmt.where(audit_logs.c.op_time >= query.since)
        if query.until:
            stmt = stmt.where(audit_logs.c.op_time <= query.until)
        order = audit_logs.c.id.desc() if newest_first else audit_logs.c.id
        async with self._read() as conn:
            total = await self._count(conn, stmt)
            rows = await conn.execute(stmt.order_by(order).offset(offset).limit(limit))
            return Page(
                [
                    AuditRecord(
                        project_id=r.project_id,
                        username=r.username,
                        operation=r.operation,
                        resource_type=r.resource_type,
                        resource=r.resource,
                        client=r.client,
                        success=bool(r.success),
                        op_time=r.op_time,
                        id=r.id,
                    )
                    for r in rows
                ],
                total,
            )

    async def purge_audit(self, before: datetime) -> int:
        async with self._write() as conn:
            result = await conn.execute(delete(audit_logs).where(audit_logs.c.op_time < before))
            return result.rowcount

    # --- shared ---------------------------------------------------------------------------

    @staticmethod
    async def _count(conn: AsyncConnection, query: Select[Any]) -> int:
        return int((await conn.execute(select(func.count()).select_from(query.subquery()))).scalar() or 0)
