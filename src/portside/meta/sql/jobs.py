"""Upkeep job records (GC, scrub) and their schedules on SQLAlchemy Core.

One job of a kind is active at a time across every instance: creating one is serialised
per kind (an advisory lock on PostgreSQL; SQLite's single writer), so the check for an
active job and the insert that follows it are one step. A job whose process died stops
sending heartbeats (`update_time`) and is ended as Error by the next claim or poll.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from portside.meta.accounts import Page
from portside.meta.criteria import EVERYTHING, Criteria
from portside.meta.sql.criteria import Fields, conditions, ordering
from portside.meta.sql.engine import SqlBase, lock_key, now, utc
from portside.meta.sql.schema import job_schedules, jobs
from portside.meta.upkeep import ACTIVE_STATUSES, JobRecord, ScheduleRecord

__all__ = ["SqlJobs"]


def _job(row: Any) -> JobRecord:
    return JobRecord(
        id=row.id,
        kind=row.kind,
        status=row.status,
        trigger=row.trigger,
        parameters=row.parameters,
        result=row.result,
        stop_requested=bool(row.stop_requested),
        creation_time=utc(row.creation_time),
        update_time=utc(row.update_time),
    )


def _schedule(row: Any) -> ScheduleRecord:
    return ScheduleRecord(
        kind=row.kind,
        type=row.type,
        cron=row.cron,
        parameters=row.parameters,
        next_run=utc(row.next_run) if row.next_run is not None else None,
        creation_time=utc(row.creation_time),
        update_time=utc(row.update_time),
    )


_JOB_COLUMNS = (
    jobs.c.id,
    jobs.c.kind,
    jobs.c.status,
    jobs.c.trigger,
    jobs.c.parameters,
    jobs.c.result,
    jobs.c.stop_requested,
    jobs.c.creation_time,
    jobs.c.update_time,
)


class SqlJobs(SqlBase):
    """JobStore and ScheduleStore."""

    # --- jobs -----------------------------------------------------------------------------

    async def _abandon(self, conn: AsyncConnection, before: datetime, kind: str | None = None) -> int:
        when = now()
        statement = update(jobs).where(jobs.c.status.in_(ACTIVE_STATUSES), jobs.c.update_time < before)
        if kind is not None:
            statement = statement.where(jobs.c.kind == kind)
        result = await conn.execute(
            statement.values(
                status="Error",
                log=jobs.c.log + f"{when.isoformat()} abandoned: its process stopped reporting\n",
                update_time=when,
            )
        )
        return int(result.rowcount)

    async def create_job(
        self, kind: str, trigger: str, parameters: str, abandoned_before: datetime
    ) -> JobRecord | None:
        async with self._write(notify=False) as conn:
            if self._postgresql:
                await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key("job", kind)})
            await self._abandon(conn, abandoned_before, kind)
            active = await conn.execute(
                select(jobs.c.id).where(jobs.c.kind == kind, jobs.c.status.in_(ACTIVE_STATUSES)).limit(1)
            )
            if active.first() is not None:
                return None
            when = now()
            result = await conn.execute(
                jobs.insert()
                .values(
                    kind=kind,
                    status="Pending",
                    trigger=trigger,
                    parameters=parameters,
                    log="",
                    stop_requested=False,
                    creation_time=when,
                    update_time=when,
                )
                .returning(*_JOB_COLUMNS)
            )
            return _job(result.one())

    async def get_job(self, job_id: int) -> JobRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(*_JOB_COLUMNS).where(jobs.c.id == job_id))).first()
        return _job(row) if row is not None else None

    async def list_jobs(
        self,
        kind: str,
        status: str | None,
        offset: int,
        limit: int,
        newest_first: bool,
        criteria: Criteria = EVERYTHING,
    ) -> Page[JobRecord]:
        fields: Fields = {
            "id": jobs.c.id,
            "status": jobs.c.status,
            "trigger": jobs.c.trigger,
            "creation_time": jobs.c.creation_time,
            "update_time": jobs.c.update_time,
        }
        where = [jobs.c.kind == kind, *conditions(fields, criteria)]
        if status is not None:
            where.append(jobs.c.status == status)
        order = ordering(fields, criteria, bytewise=self._bytewise)
        query = (
            select(*_JOB_COLUMNS)
            .where(*where)
            .order_by(*order, jobs.c.id.desc() if newest_first else jobs.c.id)
            .offset(offset)
            .limit(limit)
        )
        count = select(func.count()).select_from(jobs).where(*where)
        async with self._read() as conn:
            total = (await conn.execute(count)).scalar_one()
            rows = (await conn.execute(query)).all()
        return Page([_job(r) for r in rows], int(total))

    async def update_job(
        self, job_id: int, *, status: str | None = None, result: str | None = None, log: str = ""
    ) -> bool:
        values: dict[str, Any] = {"update_time": now()}
        if status is not None:
            values["status"] = status
        if result is not None:
            values["result"] = result
        if log:
            values["log"] = jobs.c.log + log
        async with self._write(notify=False) as conn:
            # A job that ended meanwhile (stopped before it started, or given up as
            # abandoned) keeps its final status.
            await conn.execute(
                update(jobs).where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE_STATUSES)).values(**values)
            )
            row = (await conn.execute(select(jobs.c.status, jobs.c.stop_requested).where(jobs.c.id == job_id))).first()
        return row is None or bool(row.stop_requested) or row.status not in ACTIVE_STATUSES

    async def request_stop(self, job_id: int) -> JobRecord | None:
        async with self._write(notify=False) as conn:
            await conn.execute(
                update(jobs)
                .where(jobs.c.id == job_id, jobs.c.status.in_(ACTIVE_STATUSES))
                .values(stop_requested=True, update_time=now())
            )
            row = (await conn.execute(select(*_JOB_COLUMNS).where(jobs.c.id == job_id))).first()
        return _job(row) if row is not None else None

    async def job_log(self, job_id: int) -> str | None:
        async with self._read() as conn:
            return (await conn.execute(select(jobs.c.log).where(jobs.c.id == job_id))).scalar()

    async def abandon_jobs(self, before: datetime) -> int:
        async with self._write(notify=False) as conn:
            return await self._abandon(conn, before)

    # --- schedules ------------------------------------------------------------------------

    async def get_schedule(self, kind: str) -> ScheduleRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(job_schedules).where(job_schedules.c.kind == kind))).first()
        return _schedule(row) if row is not None else None

    async def put_schedule(
        self, kind: str, type: str, cron: str, parameters: str, next_run: datetime
    ) -> ScheduleRecord:
        when = now()
        upsert = self._insert(job_schedules).values(
            kind=kind,
            type=type,
            cron=cron,
            parameters=parameters,
            next_run=next_run,
            creation_time=when,
            update_time=when,
        )
        async with self._write(notify=False) as conn:
            await conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[job_schedules.c.kind],
                    set_={
                        "type": type,
                        "cron": cron,
                        "parameters": parameters,
                        "next_run": next_run,
                        "update_time": when,
                    },
                )
            )
            row = (await conn.execute(select(job_schedules).where(job_schedules.c.kind == kind))).one()
        return _schedule(row)

    async def delete_schedule(self, kind: str) -> bool:
        async with self._write(notify=False) as conn:
            return (await conn.execute(delete(job_schedules).where(job_schedules.c.kind == kind))).rowcount > 0

    async def due_schedules(self, at: datetime) -> list[ScheduleRecord]:
        async with self._read() as conn:
            rows = await conn.execute(select(job_schedules).where(job_schedules.c.next_run <= at))
            return [_schedule(r) for r in rows]

    async def claim_run(self, kind: str, expected: datetime, following: datetime) -> bool:
        async with self._write(notify=False) as conn:
            result = await conn.execute(
                update(job_schedules)
                .where(job_schedules.c.kind == kind, job_schedules.c.next_run == expected)
                .values(next_run=following)
            )
            return result.rowcount > 0
