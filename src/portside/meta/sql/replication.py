"""Replication policies, executions and tasks in SQL (meta/replication.py).

Claims are conditional updates (the row is taken only if it is still as it was read), so
two workers, in one process or several, never run one task at once. A task's outcome and
its execution's status are written in one transaction: a reader never sees a finished
execution with a task still running."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from portside.errors import Conflict
from portside.meta.accounts import Page
from portside.meta.replication import Execution, Filter, NewPolicy, NewTask, Policy, Task, TaskOutcome
from portside.meta.sql.engine import SqlBase, is_unique_violation, now, utc
from portside.meta.sql.schema import replication_executions as ex
from portside.meta.sql.schema import replication_policies as pt
from portside.meta.sql.schema import replication_tasks as tt

__all__ = ["SqlReplication"]

_OPEN = ("Pending", "Running")
_LOG_LIMIT = 256 * 1024  # a task's log keeps its last 256 KiB


class SqlReplication(SqlBase):
    # --- policies --------------------------------------------------------------------

    async def create_policy(self, new: NewPolicy, next_run: datetime | None) -> Policy:
        values = _policy_values(new, next_run)
        values["creation_time"] = values["update_time"]
        try:
            async with self._write(notify=False) as conn:
                made = await conn.execute(pt.insert().values(**values))
                policy_id = int(made.inserted_primary_key[0])  # type: ignore[index]
        except IntegrityError as error:
            if is_unique_violation(error):
                raise _taken(new.name) from None
            raise
        found = await self.get_policy(policy_id)
        assert found is not None
        return found

    async def get_policy(self, policy_id: int) -> Policy | None:
        async with self._read() as conn:
            row = (await conn.execute(select(pt).where(pt.c.id == policy_id))).first()
        return None if row is None else _policy(row)

    async def list_policies(self, name: str | None, offset: int, limit: int) -> Page[Policy]:
        where = [pt.c.name.contains(name, autoescape=True)] if name else []
        async with self._read() as conn:
            total = (await conn.execute(select(func.count()).select_from(pt).where(*where))).scalar_one()
            rows = (await conn.execute(select(pt).where(*where).order_by(pt.c.id).offset(offset).limit(limit))).all()
        return Page([_policy(row) for row in rows], int(total))

    async def update_policy(self, policy_id: int, new: NewPolicy, next_run: datetime | None) -> Policy | None:
        try:
            async with self._write(notify=False) as conn:
                done = await conn.execute(
                    update(pt).where(pt.c.id == policy_id).values(**_policy_values(new, next_run))
                )
        except IntegrityError as error:
            if is_unique_violation(error):
                raise _taken(new.name) from None
            raise
        return await self.get_policy(policy_id) if done.rowcount else None

    async def delete_policy(self, policy_id: int) -> bool:
        async with self._write(notify=False) as conn:
            # Children first: SQLite enforces ON DELETE CASCADE only with its pragma on.
            executions = select(ex.c.id).where(ex.c.policy_id == policy_id)
            await conn.execute(delete(tt).where(tt.c.execution_id.in_(executions)))
            await conn.execute(delete(ex).where(ex.c.policy_id == policy_id))
            done = await conn.execute(delete(pt).where(pt.c.id == policy_id))
        return bool(done.rowcount)

    async def policies_using(self, registry_id: int) -> list[str]:
        statement = select(pt.c.name).where(
            or_(pt.c.src_registry_id == registry_id, pt.c.dest_registry_id == registry_id)
        )
        async with self._read() as conn:
            return [str(name) for name in (await conn.execute(statement.order_by(pt.c.id))).scalars()]

    async def event_policies(self) -> list[Policy]:
        statement = select(pt).where(pt.c.enabled.is_(True), pt.c.trigger == "event_based").order_by(pt.c.id)
        async with self._read() as conn:
            return [_policy(row) for row in (await conn.execute(statement)).all()]

    async def due_policies(self, now: datetime) -> list[Policy]:
        statement = select(pt).where(
            pt.c.enabled.is_(True), pt.c.trigger == "scheduled", pt.c.next_run.is_not(None), pt.c.next_run <= now
        )
        async with self._read() as conn:
            return [_policy(row) for row in (await conn.execute(statement.order_by(pt.c.id))).all()]

    async def claim_schedule(self, policy_id: int, due: datetime, following: datetime) -> bool:
        async with self._write(notify=False) as conn:
            done = await conn.execute(
                update(pt).where(pt.c.id == policy_id, pt.c.next_run == due).values(next_run=following)
            )
        return bool(done.rowcount)

    # --- executions ------------------------------------------------------------------

    async def create_execution(
        self, policy_id: int, trigger: str, tasks: Sequence[NewTask], *, listing_until: datetime | None = None
    ) -> int:
        async with self._write(notify=False) as conn:
            made = await conn.execute(
                ex.insert().values(
                    policy_id=policy_id,
                    status="InProgress",
                    status_text="",
                    trigger=trigger,
                    listed=listing_until is None,
                    listing_until=listing_until,
                    listing_failed=False,
                    stop_requested=False,
                    start_time=now(),
                    end_time=None,
                )
            )
            execution_id = int(made.inserted_primary_key[0])  # type: ignore[index]
            await _insert_tasks(conn, execution_id, policy_id, tasks)
            await _settle(conn, execution_id)
        return execution_id

    async def add_tasks(self, execution_id: int, tasks: Sequence[NewTask], listing_until: datetime) -> None:
        async with self._write(notify=False) as conn:
            policy_id = (await conn.execute(select(ex.c.policy_id).where(ex.c.id == execution_id))).scalar()
            if policy_id is None:
                return
            await _insert_tasks(conn, execution_id, int(policy_id), tasks)
            await conn.execute(update(ex).where(ex.c.id == execution_id).values(listing_until=listing_until))

    async def expire_listings(self, now: datetime) -> int:
        cut = select(ex.c.id).where(ex.c.listed.is_(False), ex.c.listing_until < now)
        async with self._read() as conn:  # every server asks each round: a write only when needed
            ids = [int(i) for i in (await conn.execute(cut)).scalars()]
        if not ids:
            return 0
        async with self._write(notify=False) as conn:
            for execution_id in ids:
                await conn.execute(
                    update(ex)
                    .where(ex.c.id == execution_id, ex.c.listed.is_(False))
                    .values(
                        listed=True,
                        listing_until=None,
                        listing_failed=True,
                        status_text="the listing stopped with its server",
                    )
                )
                await _settle(conn, execution_id)
        return len(ids)

    async def end_execution(self, execution_id: int, status: str, status_text: str) -> None:
        async with self._write(notify=False) as conn:
            await conn.execute(
                update(ex)
                .where(ex.c.id == execution_id)
                .values(
                    listed=True, listing_until=None, listing_failed=status == "Failed", status_text=status_text[:4096]
                )
            )
            await _settle(conn, execution_id)

    async def get_execution(self, execution_id: int) -> Execution | None:
        async with self._read() as conn:
            row = (await conn.execute(select(ex).where(ex.c.id == execution_id))).first()
            if row is None:
                return None
            counts = await _counts(conn, [execution_id])
        return _execution(row, counts.get(execution_id, {}))

    async def list_executions(
        self, policy_id: int | None, status: str | None, trigger: str | None, offset: int, limit: int
    ) -> Page[Execution]:
        where = []
        if policy_id is not None:
            where.append(ex.c.policy_id == policy_id)
        if status:
            where.append(ex.c.status == status)
        if trigger:
            where.append(ex.c.trigger == trigger)
        query = select(ex).where(*where).order_by(ex.c.id.desc()).offset(offset).limit(limit)
        async with self._read() as conn:
            total = (await conn.execute(select(func.count()).select_from(ex).where(*where))).scalar_one()
            rows = (await conn.execute(query)).all()
            counts = await _counts(conn, [int(row.id) for row in rows])
        return Page([_execution(row, counts.get(int(row.id), {})) for row in rows], int(total))

    async def active_execution(self, policy_id: int) -> int | None:
        statement = select(ex.c.id).where(ex.c.policy_id == policy_id, ex.c.status == "InProgress").limit(1)
        async with self._read() as conn:
            found = (await conn.execute(statement)).scalar()
        return None if found is None else int(found)

    async def stop_execution(self, execution_id: int) -> bool:
        async with self._write(notify=False) as conn:
            done = await conn.execute(update(ex).where(ex.c.id == execution_id).values(stop_requested=True))
            if not done.rowcount:
                return False
            await conn.execute(
                update(tt)
                .where(tt.c.execution_id == execution_id, tt.c.status == "Pending")
                .values(status="Stopped", end_time=now())
            )
            await _settle(conn, execution_id)
        return True

    # --- tasks -----------------------------------------------------------------------

    async def claim_tasks(self, now: datetime, lease_until: datetime, limit: int, worker: str) -> list[Task]:
        due = or_(
            and_(tt.c.status == "Pending", tt.c.next_attempt <= now),
            and_(tt.c.status == "Running", tt.c.lease_until < now),  # its worker died
        )
        claimed: list[Task] = []
        async with self._read() as conn:  # every server asks each round: a write only when needed
            rows = (await conn.execute(select(tt).where(due).order_by(tt.c.next_attempt, tt.c.id).limit(limit))).all()
        if not rows:
            return claimed
        async with self._write(notify=False) as conn:
            for row in rows:
                taken = await conn.execute(
                    update(tt)
                    .where(tt.c.id == row.id, tt.c.status == row.status, tt.c.worker == row.worker)
                    .values(
                        status="Running",
                        worker=worker,
                        lease_until=lease_until,
                        attempts=tt.c.attempts + 1,
                        start_time=func.coalesce(tt.c.start_time, now),
                    )
                )
                if taken.rowcount:
                    claimed.append(_task(row, status="Running", attempts=int(row.attempts) + 1))
        return claimed

    async def renew_lease(self, task_id: int, worker: str, lease_until: datetime) -> bool:
        stopping = select(ex.c.stop_requested).where(ex.c.id == tt.c.execution_id).scalar_subquery()
        async with self._write(notify=False) as conn:
            done = await conn.execute(
                update(tt)
                .where(tt.c.id == task_id, tt.c.worker == worker, tt.c.status == "Running", stopping.is_(False))
                .values(lease_until=lease_until)
            )
        return bool(done.rowcount)

    async def finish_task(self, task_id: int, worker: str, outcome: TaskOutcome) -> None:
        async with self._write(notify=False) as conn:
            row = (await conn.execute(select(tt).where(tt.c.id == task_id))).first()
            if row is None or row.worker != worker or row.status != "Running":
                return  # taken by another worker after this one's lease ran out
            status = outcome.status
            stopping = (await conn.execute(select(ex.c.stop_requested).where(ex.c.id == row.execution_id))).scalar()
            text = outcome.log
            if status == "Pending" and stopping:
                status, text = "Stopped", text + "the execution was stopped: not tried again\n"
            log = (str(row.log) + text)[-_LOG_LIMIT:]
            values: dict[str, Any] = {
                "status": status,
                "log": log,
                "lease_until": None,
                "unreachable": status == "Failed" and outcome.unreachable,
            }
            if outcome.src_resource:
                values["src_resource"] = outcome.src_resource
            if outcome.dst_resource:
                values["dst_resource"] = outcome.dst_resource
            if outcome.tags:
                values["tags"] = json.dumps(list(outcome.tags))
            if status == "Pending":
                assert outcome.retry_at is not None
                values["next_attempt"] = outcome.retry_at
            else:
                values["end_time"] = now()
            await conn.execute(update(tt).where(tt.c.id == task_id).values(**values))
            await _settle(conn, int(row.execution_id))

    async def revive(self, policy_id: int, failed_before: datetime, note: str) -> int:
        events = select(ex.c.id).where(
            ex.c.policy_id == policy_id, ex.c.trigger == "event_based", ex.c.stop_requested.is_(False)
        )
        stranded = select(tt.c.id, tt.c.execution_id).where(
            tt.c.policy_id == policy_id,
            tt.c.status == "Failed",
            tt.c.unreachable.is_(True),
            tt.c.end_time < failed_before,
            tt.c.execution_id.in_(events),
        )
        async with self._read() as conn:  # asked each round: a write only when needed
            rows = (await conn.execute(stranded)).all()
        if not rows:
            return 0
        async with self._write(notify=False) as conn:
            for row in rows:
                await conn.execute(
                    update(tt)
                    .where(tt.c.id == row.id, tt.c.status == "Failed")
                    .values(
                        status="Pending",
                        attempts=0,
                        unreachable=False,
                        next_attempt=now(),
                        end_time=None,
                        log=tt.c.log + note,
                    )
                )
            for execution_id in {int(row.execution_id) for row in rows}:
                await _settle(conn, execution_id)
        return len(rows)

    async def list_tasks(self, execution_id: int, offset: int, limit: int) -> Page[Task]:
        where = tt.c.execution_id == execution_id
        async with self._read() as conn:
            total = (await conn.execute(select(func.count()).select_from(tt).where(where))).scalar_one()
            rows = (await conn.execute(select(tt).where(where).order_by(tt.c.id).offset(offset).limit(limit))).all()
        return Page([_task(row) for row in rows], int(total))

    async def task_log(self, execution_id: int, task_id: int) -> str | None:
        statement = select(tt.c.log).where(tt.c.id == task_id, tt.c.execution_id == execution_id)
        async with self._read() as conn:
            found = (await conn.execute(statement)).scalar()
        return None if found is None else str(found)


async def _insert_tasks(conn: AsyncConnection, execution_id: int, policy_id: int, tasks: Sequence[NewTask]) -> None:
    if not tasks:
        return
    when = now()
    await conn.execute(
        insert(tt),
        [
            {
                "execution_id": execution_id,
                "policy_id": policy_id,
                "status": "Pending",
                "operation": task.operation,
                "resource_type": task.resource_type,
                "src_repository": task.src_repository,
                "reference": task.reference,
                "dst_repository": task.dst_repository,
                "tags": json.dumps(list(task.tags)),
                "src_resource": _resource(task.src_repository, task.reference, task.tags),
                "dst_resource": _resource(task.dst_repository, task.reference, task.tags),
                "attempts": 0,
                "unreachable": False,
                "next_attempt": when,
                "worker": "",
                "lease_until": None,
                "log": "",
                "start_time": None,
                "end_time": None,
            }
            for task in tasks
        ],
    )


def _resource(repository: str, reference: str, tags: Sequence[str]) -> str:
    """Harbor's src_resource/dst_resource: `repo:[tag,…]`, or `repo@digest` with no tags."""
    return f"{repository}:[{','.join(tags)}]" if tags else f"{repository}@{reference}"


async def _counts(conn: AsyncConnection, execution_ids: Sequence[int]) -> dict[int, dict[str, int]]:
    if not execution_ids:
        return {}
    statement = (
        select(tt.c.execution_id, tt.c.status, func.count())
        .where(tt.c.execution_id.in_(execution_ids))
        .group_by(tt.c.execution_id, tt.c.status)
    )
    found: dict[int, dict[str, int]] = {}
    for execution_id, status, count in (await conn.execute(statement)).all():
        found.setdefault(int(execution_id), {})[str(status)] = int(count)
    return found


async def _settle(conn: AsyncConnection, execution_id: int) -> None:
    """Set the execution's status from its tasks: InProgress while any is open (or the
    listing goes on), then Stopped when asked to stop, Failed when any task failed (or the
    listing did), else Succeed."""
    row = (await conn.execute(select(ex).where(ex.c.id == execution_id))).first()
    if row is None:
        return
    counts = (await _counts(conn, [execution_id])).get(execution_id, {})
    if not row.listed or any(counts.get(s, 0) for s in _OPEN):
        status, end = "InProgress", None
    elif row.stop_requested:
        status, end = "Stopped", now()
    elif row.listing_failed or counts.get("Failed", 0):
        status, end = "Failed", now()
    else:
        status, end = "Succeed", now()
    if status != row.status or (end is None) != (row.end_time is None):
        await conn.execute(update(ex).where(ex.c.id == execution_id).values(status=status, end_time=end))


def _execution(row: Any, counts: dict[str, int]) -> Execution:
    return Execution(
        id=int(row.id),
        policy_id=int(row.policy_id),
        status=str(row.status),
        status_text=str(row.status_text),
        trigger=str(row.trigger),
        start_time=utc(row.start_time),
        end_time=utc(row.end_time) if row.end_time is not None else None,
        total=sum(counts.values()),
        failed=counts.get("Failed", 0),
        succeed=counts.get("Succeed", 0),
        in_progress=sum(counts.get(s, 0) for s in _OPEN),
        stopped=counts.get("Stopped", 0),
        stop_requested=bool(row.stop_requested),
    )


def _task(row: Any, **override: Any) -> Task:
    values: dict[str, Any] = {
        "id": int(row.id),
        "execution_id": int(row.execution_id),
        "policy_id": int(row.policy_id),
        "status": str(row.status),
        "operation": str(row.operation),
        "resource_type": str(row.resource_type),
        "src_repository": str(row.src_repository),
        "reference": str(row.reference),
        "dst_repository": str(row.dst_repository),
        "tags": tuple(json.loads(row.tags)),
        "attempts": int(row.attempts),
        "next_attempt": utc(row.next_attempt),
        "start_time": utc(row.start_time) if row.start_time is not None else None,
        "end_time": utc(row.end_time) if row.end_time is not None else None,
        "job_id": f"replication-task-{int(row.id)}",
        "src_resource": str(row.src_resource),
        "dst_resource": str(row.dst_resource),
    }
    values.update(override)
    return Task(**values)


def _policy_values(new: NewPolicy, next_run: datetime | None) -> dict[str, Any]:
    return {
        "name": new.name,
        "description": new.description,
        "src_registry_id": new.src_registry_id,
        "dest_registry_id": new.dest_registry_id,
        "dest_namespace": new.dest_namespace,
        "dest_namespace_replace_count": new.dest_namespace_replace_count,
        "filters": json.dumps(
            [
                {
                    "type": f.type,
                    "value": list(f.value) if isinstance(f.value, tuple) else f.value,
                    "decoration": f.decoration,
                }
                for f in new.filters
            ]
        ),
        "trigger": new.trigger,
        "cron": new.cron,
        "next_run": next_run,
        "replicate_deletion": new.replicate_deletion,
        "override": new.override,
        "enabled": new.enabled,
        "speed": new.speed,
        "copy_by_chunk": new.copy_by_chunk,
        "single_active_replication": new.single_active_replication,
        "update_time": now(),
    }


def _policy(row: Any) -> Policy:
    filters = tuple(
        Filter(
            type=str(f["type"]),
            value=tuple(f["value"]) if isinstance(f["value"], list) else str(f["value"]),
            decoration=str(f.get("decoration", "")),
        )
        for f in json.loads(row.filters)
    )
    return Policy(
        id=int(row.id),
        name=str(row.name),
        description=str(row.description),
        src_registry_id=row.src_registry_id,
        dest_registry_id=row.dest_registry_id,
        dest_namespace=str(row.dest_namespace),
        dest_namespace_replace_count=int(row.dest_namespace_replace_count),
        filters=filters,
        trigger=str(row.trigger),
        cron=str(row.cron),
        next_run=utc(row.next_run) if row.next_run is not None else None,
        replicate_deletion=bool(row.replicate_deletion),
        override=bool(row.override),
        enabled=bool(row.enabled),
        speed=int(row.speed),
        copy_by_chunk=bool(row.copy_by_chunk),
        single_active_replication=bool(row.single_active_replication),
        creation_time=utc(row.creation_time),
        update_time=utc(row.update_time),
    )


def _taken(name: str) -> Conflict:
    return Conflict(f"a replication policy named {name!r} exists already")
