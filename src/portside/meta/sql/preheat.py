"""P2P preheat in SQL: instances (their secret encrypted at rest under a key of its own,
sql/secrets.py), policies, executions and tasks. An execution's task counts are counted
from its tasks when it is read, so no counter can drift from them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from portside.errors import Conflict
from portside.meta.accounts import Page
from portside.meta.criteria import Criteria
from portside.meta.preheat import Execution, Instance, NewInstance, NewPolicy, Policy, Task, TaskCounts
from portside.meta.sql.criteria import Fields, conditions, ordering
from portside.meta.sql.engine import SqlBase, is_unique_violation, now, utc
from portside.meta.sql.schema import p2p_instances as ti
from portside.meta.sql.schema import preheat_cursors as tc
from portside.meta.sql.schema import preheat_executions as te
from portside.meta.sql.schema import preheat_policies as tp
from portside.meta.sql.schema import preheat_tasks as tt
from portside.meta.sql.secrets import SecretBox

__all__ = ["SqlPreheat"]

KEY_NAME = "p2p-instance-credentials"
_FINAL = ("Success", "Error", "Stopped")

_INSTANCE_FIELDS: Fields = {
    "id": ti.c.id,
    "name": ti.c.name,
    "vendor": ti.c.vendor,
    "endpoint": ti.c.endpoint,
    "description": ti.c.description,
    "status": ti.c.status,
    "enabled": ti.c.enabled,
    "default": ti.c.is_default,
}
_POLICY_FIELDS: Fields = {
    "id": tp.c.id,
    "name": tp.c.name,
    "description": tp.c.description,
    "provider_id": tp.c.provider_id,
    "enabled": tp.c.enabled,
    "creation_time": tp.c.creation_time,
    "update_time": tp.c.update_time,
}


class SqlPreheat(SqlBase):
    def __init__(self, engine: Any, *, after_commit: Callable[[], Awaitable[None]] | None = None):
        super().__init__(engine, after_commit=after_commit)
        self._secrets = SecretBox(engine, KEY_NAME)

    # --- instances --------------------------------------------------------------------

    async def _instance_values(self, new: NewInstance, with_secret: bool) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": new.name,
            "vendor": new.vendor,
            "endpoint": new.endpoint,
            "description": new.description,
            "auth_mode": new.auth_mode,
            "auth_key": new.auth_key,
            "enabled": new.enabled,
            "is_default": new.default,
            "insecure": new.insecure,
            "update_time": now(),
        }
        if with_secret:
            values["auth_secret"] = await self._secrets.seal(new.auth_secret)
        return values

    async def create_instance(self, new: NewInstance) -> Instance:
        values = await self._instance_values(new, with_secret=True)
        values.update(status="unknown", last_error="", creation_time=values["update_time"])
        try:
            async with self._write() as conn:
                if new.default:  # one default at a time, changed in the same transaction
                    await conn.execute(update(ti).values(is_default=False))
                made = await conn.execute(ti.insert().values(**values))
                instance_id = int(made.inserted_primary_key[0])  # type: ignore[index]
        except IntegrityError as error:
            if is_unique_violation(error):
                raise _instance_taken(new.name) from None
            raise
        found = await self.get_instance(instance_id)
        assert found is not None
        return found

    async def get_instance(self, key: int | str) -> Instance | None:
        where = ti.c.id == key if isinstance(key, int) else ti.c.name == key
        async with self._read() as conn:
            row = (await conn.execute(select(ti).where(where))).first()
        return None if row is None else _instance(row)

    async def list_instances(self, criteria: Criteria, offset: int, limit: int) -> Page[Instance]:
        where = conditions(_INSTANCE_FIELDS, criteria)
        order = ordering(_INSTANCE_FIELDS, criteria, bytewise=self._bytewise)
        query = select(ti).where(*where).order_by(*order, ti.c.id).offset(offset).limit(limit)
        async with self._read() as conn:
            total = (await conn.execute(select(func.count()).select_from(ti).where(*where))).scalar_one()
            rows = (await conn.execute(query)).all()
        return Page([_instance(row) for row in rows], int(total))

    async def update_instance(self, instance_id: int, new: NewInstance, keep_secret: bool) -> Instance | None:
        values = await self._instance_values(new, with_secret=not keep_secret)
        # What the last check found was about the instance as it was: check it again.
        values.update(status="unknown", last_error="")
        try:
            async with self._write() as conn:
                if new.default:
                    await conn.execute(update(ti).where(ti.c.id != instance_id).values(is_default=False))
                done = await conn.execute(update(ti).where(ti.c.id == instance_id).values(**values))
        except IntegrityError as error:
            if is_unique_violation(error):
                raise _instance_taken(new.name) from None
            raise
        return await self.get_instance(instance_id) if done.rowcount else None

    async def delete_instance(self, instance_id: int) -> Instance | None:
        found = await self.get_instance(instance_id)
        if found is not None:
            async with self._write() as conn:
                await conn.execute(delete(ti).where(ti.c.id == instance_id))
        return found

    async def instance_secret(self, instance_id: int) -> str:
        async with self._read() as conn:
            stored = (await conn.execute(select(ti.c.auth_secret).where(ti.c.id == instance_id))).scalar()
        return await self._secrets.open(str(stored or ""))

    async def record_instance_health(self, instance_id: int, status: str, error: str) -> None:
        async with self._write(notify=False) as conn:
            await conn.execute(update(ti).where(ti.c.id == instance_id).values(status=status, last_error=error))

    # --- policies ---------------------------------------------------------------------

    @staticmethod
    def _policy_values(new: NewPolicy) -> dict[str, Any]:
        return {
            "project_id": new.project_id,
            "name": new.name,
            "description": new.description,
            "provider_id": new.provider_id,
            "filters": new.filters,
            "trigger": new.trigger,
            "extra_attrs": new.extra_attrs,
            "enabled": new.enabled,
            "owner_kind": new.owner_kind,
            "owner_id": new.owner_id,
            "update_time": now(),
        }

    async def create_policy(self, new: NewPolicy) -> Policy:
        values = self._policy_values(new)
        values["creation_time"] = values["update_time"]
        try:
            async with self._write() as conn:
                made = await conn.execute(tp.insert().values(**values))
                policy_id = int(made.inserted_primary_key[0])  # type: ignore[index]
        except IntegrityError as error:
            if is_unique_violation(error):
                raise _policy_taken(new.name) from None
            raise
        found = await self.get_policy_by_id(policy_id)
        assert found is not None
        return found

    async def get_policy(self, project_id: int, name: str) -> Policy | None:
        async with self._read() as conn:
            row = (await conn.execute(select(tp).where(tp.c.project_id == project_id, tp.c.name == name))).first()
        return None if row is None else _policy(row)

    async def get_policy_by_id(self, policy_id: int) -> Policy | None:
        async with self._read() as conn:
            row = (await conn.execute(select(tp).where(tp.c.id == policy_id))).first()
        return None if row is None else _policy(row)

    async def list_policies(self, project_id: int | None, criteria: Criteria, offset: int, limit: int) -> Page[Policy]:
        where = conditions(_POLICY_FIELDS, criteria)
        if project_id is not None:
            where.append(tp.c.project_id == project_id)
        order = ordering(_POLICY_FIELDS, criteria, bytewise=self._bytewise)
        query = select(tp).where(*where).order_by(*order, tp.c.id).offset(offset).limit(limit)
        async with self._read() as conn:
            total = (await conn.execute(select(func.count()).select_from(tp).where(*where))).scalar_one()
            rows = (await conn.execute(query)).all()
        return Page([_policy(row) for row in rows], int(total))

    async def update_policy(self, policy_id: int, new: NewPolicy) -> Policy | None:
        try:
            async with self._write() as conn:
                done = await conn.execute(update(tp).where(tp.c.id == policy_id).values(**self._policy_values(new)))
        except IntegrityError as error:
            if is_unique_violation(error):
                raise _policy_taken(new.name) from None
            raise
        return await self.get_policy_by_id(policy_id) if done.rowcount else None

    async def delete_policy(self, policy_id: int) -> Policy | None:
        found = await self.get_policy_by_id(policy_id)
        if found is not None:
            executions = select(te.c.id).where(te.c.policy_id == policy_id).scalar_subquery()
            async with self._write() as conn:
                # Children first: SQLite enforces the cascade only with foreign keys on.
                await conn.execute(delete(tt).where(tt.c.execution_id.in_(executions)))
                await conn.execute(delete(te).where(te.c.policy_id == policy_id))
                await conn.execute(delete(tp).where(tp.c.id == policy_id))
        return found

    async def policies_of_instance(self, instance_id: int) -> list[Policy]:
        async with self._read() as conn:
            rows = (await conn.execute(select(tp).where(tp.c.provider_id == instance_id).order_by(tp.c.id))).all()
        return [_policy(row) for row in rows]

    # --- executions -------------------------------------------------------------------

    async def create_execution(self, policy_id: int, trigger: str, extra_attrs: str) -> Execution:
        async with self._write(notify=False) as conn:
            made = await conn.execute(
                te.insert().values(
                    policy_id=policy_id,
                    status="Running",
                    status_message="",
                    trigger=trigger,
                    extra_attrs=extra_attrs,
                    stop_requested=False,
                    start_time=now(),
                    end_time=None,
                )
            )
            execution_id = int(made.inserted_primary_key[0])  # type: ignore[index]
        found = await self.get_execution(execution_id)
        assert found is not None
        return found

    async def get_execution(self, execution_id: int) -> Execution | None:
        async with self._read() as conn:
            row = (await conn.execute(select(te).where(te.c.id == execution_id))).first()
            if row is None:
                return None
            counts = await _counts(conn, [execution_id])
        return _execution(row, counts.get(execution_id, TaskCounts()))

    async def list_executions(self, policy_id: int, offset: int, limit: int) -> Page[Execution]:
        where = te.c.policy_id == policy_id
        query = select(te).where(where).order_by(te.c.id.desc()).offset(offset).limit(limit)
        async with self._read() as conn:
            total = (await conn.execute(select(func.count()).select_from(te).where(where))).scalar_one()
            rows = (await conn.execute(query)).all()
            counts = await _counts(conn, [int(row.id) for row in rows])
        return Page([_execution(row, counts.get(int(row.id), TaskCounts())) for row in rows], int(total))

    async def end_execution(self, execution_id: int, status: str, message: str) -> None:
        async with self._write(notify=False) as conn:
            await conn.execute(
                update(te).where(te.c.id == execution_id).values(status=status, status_message=message, end_time=now())
            )

    async def request_stop(self, execution_id: int) -> bool:
        async with self._write(notify=False) as conn:
            done = await conn.execute(
                update(te).where(te.c.id == execution_id, te.c.status == "Running").values(stop_requested=True)
            )
        return bool(done.rowcount)

    # --- tasks ------------------------------------------------------------------------

    async def create_task(self, execution_id: int, extra_attrs: str) -> Task:
        at = now()
        async with self._write(notify=False) as conn:
            made = await conn.execute(
                tt.insert().values(
                    execution_id=execution_id,
                    status="Pending",
                    status_message="",
                    run_count=0,
                    extra_attrs=extra_attrs,
                    log="",
                    creation_time=at,
                    update_time=at,
                    start_time=None,
                    end_time=None,
                )
            )
            task_id = int(made.inserted_primary_key[0])  # type: ignore[index]
        found = await self.get_task(task_id)
        assert found is not None
        return found

    async def update_task(
        self,
        task_id: int,
        *,
        status: str | None = None,
        message: str | None = None,
        extra_attrs: str | None = None,
        log: str = "",
        started: bool = False,
    ) -> None:
        at = now()
        values: dict[str, Any] = {"update_time": at}
        if status is not None:
            values["status"] = status
            if status in _FINAL:
                values["end_time"] = at
        if message is not None:
            values["status_message"] = message
        if extra_attrs is not None:
            values["extra_attrs"] = extra_attrs
        if log:
            values["log"] = tt.c.log + log
        if started:
            values["run_count"] = tt.c.run_count + 1
            values["start_time"] = at
        async with self._write(notify=False) as conn:
            await conn.execute(update(tt).where(tt.c.id == task_id).values(**values))

    async def get_task(self, task_id: int) -> Task | None:
        async with self._read() as conn:
            row = (await conn.execute(select(tt).where(tt.c.id == task_id))).first()
        return None if row is None else _task(row)

    async def list_tasks(self, execution_id: int, offset: int, limit: int) -> Page[Task]:
        where = tt.c.execution_id == execution_id
        query = select(tt).where(where).order_by(tt.c.id).offset(offset).limit(limit)
        async with self._read() as conn:
            total = (await conn.execute(select(func.count()).select_from(tt).where(where))).scalar_one()
            rows = (await conn.execute(query)).all()
        return Page([_task(row) for row in rows], int(total))

    async def task_log(self, task_id: int) -> str:
        async with self._read() as conn:
            found = (await conn.execute(select(tt.c.log).where(tt.c.id == task_id))).scalar()
        return str(found or "")

    # --- reading the event outbox -----------------------------------------------------

    async def cursor(self, name: str) -> int | None:
        async with self._read() as conn:
            found = (await conn.execute(select(tc.c.position).where(tc.c.name == name))).scalar()
        return None if found is None else int(found)

    async def move_cursor(self, name: str, old: int | None, new: int) -> bool:
        async with self._write(notify=False) as conn:
            if old is None:
                done = await conn.execute(self._insert(tc).values(name=name, position=new).on_conflict_do_nothing())
            else:
                done = await conn.execute(
                    update(tc).where(tc.c.name == name, tc.c.position == old).values(position=new)
                )
        return bool(done.rowcount)


async def _counts(conn: Any, execution_ids: list[int]) -> dict[int, TaskCounts]:
    if not execution_ids:
        return {}
    rows = (
        await conn.execute(
            select(tt.c.execution_id, tt.c.status, func.count())
            .where(tt.c.execution_id.in_(execution_ids))
            .group_by(tt.c.execution_id, tt.c.status)
        )
    ).all()
    found: dict[int, dict[str, int]] = {}
    for execution_id, status, count in rows:
        found.setdefault(int(execution_id), {})[str(status).lower()] = int(count)
    return {key: TaskCounts(**by_status) for key, by_status in found.items()}


def _instance_taken(name: str) -> Conflict:
    return Conflict(f"a preheat instance named {name!r} exists already")


def _policy_taken(name: str) -> Conflict:
    return Conflict(f"the project has a preheat policy named {name!r} already")


def _maybe(when: datetime | None) -> datetime | None:
    return None if when is None else utc(when)


def _instance(row: Any) -> Instance:
    return Instance(
        id=int(row.id),
        name=row.name,
        vendor=row.vendor,
        endpoint=row.endpoint,
        description=row.description,
        auth_mode=row.auth_mode,
        auth_key=row.auth_key,
        has_secret=bool(row.auth_secret),
        enabled=bool(row.enabled),
        default=bool(row.is_default),
        insecure=bool(row.insecure),
        status=row.status,
        last_error=row.last_error,
        setup_timestamp=int(utc(row.creation_time).timestamp()),
        update_time=utc(row.update_time),
    )


def _policy(row: Any) -> Policy:
    return Policy(
        id=int(row.id),
        name=row.name,
        project_id=int(row.project_id),
        provider_id=int(row.provider_id),
        filters=row.filters,
        trigger=row.trigger,
        extra_attrs=row.extra_attrs,
        description=row.description,
        enabled=bool(row.enabled),
        owner_kind=row.owner_kind,
        owner_id=int(row.owner_id),
        creation_time=utc(row.creation_time),
        update_time=utc(row.update_time),
    )


def _execution(row: Any, counts: TaskCounts) -> Execution:
    return Execution(
        id=int(row.id),
        policy_id=int(row.policy_id),
        status=row.status,
        status_message=row.status_message,
        trigger=row.trigger,
        extra_attrs=row.extra_attrs,
        stop_requested=bool(row.stop_requested),
        counts=counts,
        start_time=utc(row.start_time),
        end_time=_maybe(row.end_time),
    )


def _task(row: Any) -> Task:
    return Task(
        id=int(row.id),
        execution_id=int(row.execution_id),
        status=row.status,
        status_message=row.status_message,
        run_count=int(row.run_count),
        extra_attrs=row.extra_attrs,
        creation_time=utc(row.creation_time),
        update_time=utc(row.update_time),
        start_time=_maybe(row.start_time),
        end_time=_maybe(row.end_time),
    )
