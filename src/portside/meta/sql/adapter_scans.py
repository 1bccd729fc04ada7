"""Scan requests of the scanner adapter API in SQL (see meta/adapter_scans.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, or_, select, update

from portside.meta.adapter_scans import AdapterScan, NewAdapterScan
from portside.meta.sql.engine import SqlBase, now, utc
from portside.meta.sql.schema import adapter_scan_requests as t

__all__ = ["SqlAdapterScans"]

_ACTIVE = ("pending", "running")
_ENDED = ("done", "failed")


class SqlAdapterScans(SqlBase):
    async def create(self, new: NewAdapterScan) -> AdapterScan:
        when = now()
        async with self._write(notify=False) as conn:
            await conn.execute(
                t.insert().values(
                    id=new.id,
                    registry_url=new.registry_url,
                    repository=new.repository,
                    digest=new.digest,
                    tag=new.tag,
                    mime_type=new.mime_type,
                    capabilities=",".join(new.capabilities),
                    status="pending",
                    error="",
                    created=when,
                    updated=when,
                )
            )
        found = await self.get(new.id)
        assert found is not None
        return found

    async def get(self, scan_id: str) -> AdapterScan | None:
        async with self._read() as conn:
            row = (await conn.execute(select(t).where(t.c.id == scan_id))).first()
        return None if row is None else _scan(row)

    async def start(self, scan_id: str) -> None:
        async with self._write(notify=False) as conn:
            await conn.execute(
                update(t).where(t.c.id == scan_id, t.c.status == "pending").values(status="running", updated=now())
            )

    async def heartbeat(self, scan_ids: list[str]) -> None:
        if not scan_ids:
            return
        async with self._write(notify=False) as conn:
            await conn.execute(update(t).where(t.c.id.in_(scan_ids), t.c.status.in_(_ACTIVE)).values(updated=now()))

    async def finish(self, scan_id: str, findings: str, inventory: bytes | None) -> None:
        when = now()
        async with self._write(notify=False) as conn:
            await conn.execute(
                update(t)
                .where(t.c.id == scan_id)
                .values(status="done", findings=findings, inventory=inventory, generated_at=when, updated=when)
            )

    async def fail(self, scan_id: str, error: str) -> None:
        async with self._write(notify=False) as conn:
            await conn.execute(
                update(t).where(t.c.id == scan_id).values(status="failed", error=error[:4000], updated=now())
            )

    async def purge(self, finished_before: datetime, abandoned_before: datetime) -> int:
        async with self._write(notify=False) as conn:
            done = await conn.execute(
                delete(t).where(
                    or_(
                        and_(t.c.status.in_(_ENDED), t.c.updated < finished_before),
                        and_(t.c.status.in_(_ACTIVE), t.c.updated < abandoned_before),
                    )
                )
            )
        return int(done.rowcount or 0)


def _scan(row: Any) -> AdapterScan:
    return AdapterScan(
        id=row.id,
        registry_url=row.registry_url,
        repository=row.repository,
        digest=row.digest,
        tag=row.tag,
        mime_type=row.mime_type,
        capabilities=tuple(kind for kind in str(row.capabilities).split(",") if kind),
        status=row.status,
        error=row.error,
        findings=row.findings,
        inventory=None if row.inventory is None else bytes(row.inventory),
        generated_at=None if row.generated_at is None else utc(row.generated_at),
        created=utc(row.created),
        updated=utc(row.updated),
    )
