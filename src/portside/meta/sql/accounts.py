"""Users, projects, members, robots and the audit log on SQLAlchemy Core."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    delete,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from portside.errors import BadRequest, Conflict, NotFound, PreconditionFailed
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
from portside.meta.criteria import EVERYTHING, Criteria, Match
from portside.meta.sql.criteria import Fields, conditions, like_escape, ordering
from portside.meta.sql.engine import SqlBase, is_unique_violation, now, retry_transient, utc
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
_PURGE_BATCH = 10_000


def _contains(column: ColumnElement[str], text: str) -> ColumnElement[bool]:
    # Case-insensitive as SQLite's LIKE always is (for ASCII); PostgreSQL's LIKE is not.
    return column.ilike(f"%{like_escape(text)}%", escape="\\")


# The fields each listing filters and sorts by (meta/criteria.py), named as Harbor names them.
_USER_FIELDS: Fields = {
    "user_id": users.c.user_id,
    "username": users.c.username,
    "email": users.c.email,
    "realname": users.c.realname,
    "comment": users.c.comment,
    "sysadmin_flag": users.c.sysadmin,
    "creation_time": users.c.creation_time,
    "update_time": users.c.update_time,
}
_MEMBER_FIELDS: Fields = {
    "id": project_members.c.id,
    "entity_id": project_members.c.user_id,
    "entity_name": users.c.username,
    "role_id": project_members.c.role_id,
    "creation_time": project_members.c.creation_time,
    "update_time": project_members.c.update_time,
}
_ROBOT_FIELDS: Fields = {
    "id": robots.c.id,
    "name": robots.c.name,
    "description": robots.c.description,
    "level": robots.c.level,
    "project_id": robots.c.project_id,
    "duration": robots.c.duration,
    "expires_at": robots.c.expires_at,
    "disabled": robots.c.disabled,
    "creator": robots.c.creator,
    "creation_time": robots.c.creation_time,
    "update_time": robots.c.update_time,
}
_AUDIT_FIELDS: Fields = {
    "id": audit_logs.c.id,
    "username": audit_logs.c.username,
    "operation": audit_logs.c.operation,
    "resource_type": audit_logs.c.resource_type,
    "resource": audit_logs.c.resource,
    "op_time": audit_logs.c.op_time,
}


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
        utc(row.creation_time),
        utc(row.update_time),
        row.generation,
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
        utc(row.creation_time),
        utc(row.update_time),
        row.generation,
    )


class SqlAccounts(SqlBase):
    # --- users ----------------------------------------------------------------------------

    # Names are unique by constraint: whoever loses a race to create one gets Conflict from
    # the constraint, whatever the caller looked up before.

    @retry_transient
    async def create_user(
        self, username: str, password_hash: str, *, email: str | None, realname: str, comment: str, sysadmin: bool
    ) -> User:
        when = now()
        try:
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
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            if "email" in str(exc.orig):
                raise Conflict(f"email {email} is already used") from exc
            raise Conflict(f"username {username} is already used") from exc
        return _user(row)

    async def get_user(self, key: int | str) -> User | None:
        column = users.c.user_id if isinstance(key, int) else users.c.username
        async with self._read() as conn:
            row = (await conn.execute(select(users).where(column == key))).first()
        return _user(row) if row else None

    async def list_users(self, criteria: Criteria, offset: int, limit: int) -> Page[User]:
        query = select(users).where(*conditions(_USER_FIELDS, criteria))
        order = ordering(_USER_FIELDS, criteria, bytewise=self._bytewise)
        async with self._read() as conn:
            total = await self._count(conn, query)
            rows = await conn.execute(query.order_by(*order, users.c.user_id).offset(offset).limit(limit))
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
            values["totp_last_step"] = None
        if change.password_hash is not None:
            values["generation"] = users.c.generation + 1
        values["update_time"] = now()
        try:
            async with self._write() as conn:
                await conn.execute(update(users).where(users.c.user_id == user_id).values(**values))
                row = (await conn.execute(select(users).where(users.c.user_id == user_id))).first()
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            raise Conflict(f"email {change.email} is already used") from exc
        return _user(row) if row else None

    async def replace_password_hash(self, user_id: int, old_hash: str, new_hash: str) -> bool:
        async with self._write(notify=False) as conn:
            result = await conn.execute(
                update(users)
                .where(users.c.user_id == user_id, users.c.password_hash == old_hash)
                .values(password_hash=new_hash)
            )
            return result.rowcount > 0

    async def claim_totp_step(self, user_id: int, step: int) -> bool:
        async with self._write(notify=False) as conn:
            result = await conn.execute(
                update(users)
                .where(
                    users.c.user_id == user_id,
                    or_(users.c.totp_last_step.is_(None), users.c.totp_last_step < step),
                )
                .values(totp_last_step=step)
            )
            return result.rowcount > 0

    @retry_transient
    async def delete_user(self, user_id: int) -> bool:
        async with self._write() as conn:
            await conn.execute(delete(project_members).where(project_members.c.user_id == user_id))
            result = await conn.execute(delete(users).where(users.c.user_id == user_id))
            return result.rowcount > 0

    # --- projects -------------------------------------------------------------------------

    def _repositories_of(self, project_name: Any) -> Select[Any]:
        """The count of a project's repositories: those named `project_name` or beginning
        with "name/", as a range of names, from "name/" up to "name0" ("0" follows "/"),
        which the name index serves and which, unlike LIKE, takes no "_" in a project name
        for a wildcard. `project_name` is a name or the projects table's column."""
        name = self._bytewise(repositories.c.name)
        return (
            select(func.count())
            .select_from(repositories)
            .where(or_(and_(name >= project_name.concat("/"), name < project_name.concat("0")), name == project_name))
        )

    def _project_query(self) -> Select[Any]:
        repo_count = self._repositories_of(projects.c.name).scalar_subquery()
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
                utc(r.creation_time),
                utc(r.update_time),
                r.repo_count or 0,
            )
            for r in rows
        ]

    @retry_transient
    async def create_project(self, name: str, owner_id: int, metadata: Mapping[str, str]) -> Project:
        try:
            return await self._create_project(name, owner_id, metadata)
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            raise Conflict(f"project {name} already exists") from exc

    async def _create_project(self, name: str, owner_id: int, metadata: Mapping[str, str]) -> Project:
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
        criteria: Criteria = EVERYTHING,
    ) -> Page[Project]:
        query = self._project_query()
        is_public = (
            select(project_metadata.c.project_id)
            .where(project_metadata.c.name == "public", project_metadata.c.value == "true")
            .scalar_subquery()
        )

        def public_is(match: Match) -> ColumnElement[bool]:
            wanted = {str(v).lower() in ("true", "1") for v in match.values if v is not None}
            if match.kind not in ("exact", "any", "all") or not wanted:
                raise BadRequest("public is true or false")
            if len(wanted) == 2:
                return true() if match.kind == "any" else false()
            return projects.c.project_id.in_(is_public) if wanted == {True} else ~projects.c.project_id.in_(is_public)

        fields: Fields = {
            "project_id": projects.c.project_id,
            "name": projects.c.name,
            "owner_id": projects.c.owner_id,
            "owner": users.c.username,
            "public": public_is,
            "creation_time": projects.c.creation_time,
            "update_time": projects.c.update_time,
        }
        query = query.where(*conditions(fields, criteria))
        if name_contains:
            query = query.where(_contains(projects.c.name, name_contains))
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
            order = ordering(fields, criteria, bytewise=self._bytewise)
            items = await self._projects(
                conn,
                query.order_by(*order, self._bytewise(projects.c.name), projects.c.project_id)
                .offset(offset)
                .limit(limit),
            )
        return Page(items, total)

    @retry_transient
    async def update_metadata(self, project_id: int, metadata: Mapping[str, str]) -> None:
        async with self._write() as conn:
            # In key order, as every writer does, so two updates queue instead of deadlocking.
            for name, value in sorted(metadata.items()):
                await conn.execute(
                    self._insert(project_metadata)
                    .values(project_id=project_id, name=name, value=value)
                    .on_conflict_do_update(
                        index_elements=[project_metadata.c.project_id, project_metadata.c.name], set_={"value": value}
                    )
                )
            await conn.execute(update(projects).where(projects.c.project_id == project_id).values(update_time=now()))

    @retry_transient
    async def delete_project(self, project_id: int) -> bool:
        async with self._write() as conn:
            # Locked first: a push holds the row (FOR KEY SHARE, sql/quotas.py) from its
            # check of the project until it commits, so the count below sees its repository.
            locked = select(projects.c.name).where(projects.c.project_id == project_id).with_for_update()
            name = (await conn.execute(locked)).scalar()
            if name is None:
                return False
            held = (await conn.execute(self._repositories_of(literal(name, String)))).scalar() or 0
            if held:
                raise PreconditionFailed(f"project {name} still has {held} repositories; delete them first")
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

    async def list_members(
        self, project_id: int, name_contains: str | None, offset: int, limit: int, criteria: Criteria = EVERYTHING
    ) -> Page[Member]:
        query = self._member_query().where(
            project_members.c.project_id == project_id, *conditions(_MEMBER_FIELDS, criteria)
        )
        if name_contains:
            query = query.where(_contains(users.c.username, name_contains))
        order = ordering(_MEMBER_FIELDS, criteria, bytewise=self._bytewise)
        async with self._read() as conn:
            total = await self._count(conn, query)
            rows = await conn.execute(query.order_by(*order, project_members.c.id).offset(offset).limit(limit))
            return Page([self._member(r) for r in rows], total)

    async def get_member(self, project_id: int, member_id: int) -> Member | None:
        query = self._member_query().where(
            project_members.c.project_id == project_id, project_members.c.id == member_id
        )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        return self._member(row) if row else None

    @retry_transient
    async def add_member(self, project_id: int, user_id: int, role_id: int) -> Member:
        when = now()
        try:
            async with self._write() as conn:
                result = await conn.execute(
                    insert(project_members).values(
                        project_id=project_id, user_id=user_id, role_id=role_id, creation_time=when, update_time=when
                    )
                )
                member_id = result.inserted_primary_key[0]  # type: ignore[index]
                row = (await conn.execute(self._member_query().where(project_members.c.id == member_id))).one()
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise Conflict(f"user {user_id} is already a member of project {project_id}") from exc
            # A foreign key: the project or the user was deleted meanwhile.
            raise NotFound(f"project {project_id} or user {user_id} no longer exists") from exc
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
        try:
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
        except IntegrityError as exc:
            if not is_unique_violation(exc):
                raise
            raise Conflict(f"robot {name} already exists") from exc
        return _robot(row)

    async def get_robot(self, key: int | str) -> Robot | None:
        column = robots.c.id if isinstance(key, int) else robots.c.name
        async with self._read() as conn:
            row = (await conn.execute(select(robots).where(column == key))).first()
        return _robot(row) if row else None

    async def list_robots(
        self,
        project_id: int | None,
        name_contains: str | None,
        offset: int,
        limit: int,
        criteria: Criteria = EVERYTHING,
    ) -> Page[Robot]:
        query = select(robots).where(*conditions(_ROBOT_FIELDS, criteria))
        if project_id is not None:
            query = query.where(robots.c.project_id == project_id)
        if name_contains:
            query = query.where(_contains(robots.c.name, name_contains))
        order = ordering(_ROBOT_FIELDS, criteria, bytewise=self._bytewise)
        async with self._read() as conn:
            total = await self._count(conn, query)
            rows = await conn.execute(query.order_by(*order, robots.c.id).offset(offset).limit(limit))
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
        if secret_hash is not None or disabled:
            values["generation"] = robots.c.generation + 1
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
    # Audit rows change no account: they commit with notify=False, so a login's record does
    # not make every instance drop its remembered credentials.

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
        async with self._write(notify=False) as conn:
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
        async with self._write(notify=False) as conn:
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
                        "op_time": utc(e.op_time),
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
            stmt = stmt.where(_contains(audit_logs.c.resource, query.resource))
        if query.since:
            stmt = stmt.where(audit_logs.c.op_time >= utc(query.since))
        if query.until:
            stmt = stmt.where(audit_logs.c.op_time <= utc(query.until))
        stmt = stmt.where(*conditions(_AUDIT_FIELDS, query.criteria))
        # By time, then id: on PostgreSQL instances take ids in one order and commit in
        # another, and batches are written after the fact, so ids alone are not time order.
        order = (
            *ordering(_AUDIT_FIELDS, query.criteria, bytewise=self._bytewise),
            *(
                (audit_logs.c.op_time.desc(), audit_logs.c.id.desc())
                if newest_first
                else (audit_logs.c.op_time, audit_logs.c.id)
            ),
        )
        async with self._read() as conn:
            total = await self._count(conn, stmt)
            rows = await conn.execute(stmt.order_by(*order).offset(offset).limit(limit))
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
                        op_time=utc(r.op_time),
                        id=r.id,
                    )
                    for r in rows
                ],
                total,
            )

    async def purge_audit(self, before: datetime) -> int:
        # In batches, each its own transaction: a day of pull records can be millions of
        # rows, more than one statement should hold locks (or the statement timeout) for.
        doomed = select(audit_logs.c.id).where(audit_logs.c.op_time < utc(before)).limit(_PURGE_BATCH)
        purged = 0
        while True:
            async with self._write(notify=False) as conn:
                result = await conn.execute(delete(audit_logs).where(audit_logs.c.id.in_(doomed)))
            purged += result.rowcount
            if result.rowcount < _PURGE_BATCH:
                return purged

    # --- shared ---------------------------------------------------------------------------

    @staticmethod
    async def _count(conn: AsyncConnection, query: Select[Any]) -> int:
        return int((await conn.execute(select(func.count()).select_from(query.subquery()))).scalar() or 0)
