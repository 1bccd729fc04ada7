"""The CVE exports' files on SQLAlchemy Core (meta/cve_exports.py): one row per export job,
the CSV stored gzip-compressed, since a CSV of 100,000 findings repeats its text often."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Collection
from datetime import datetime

from sqlalchemy import delete, insert, select

from portside.meta.sql.engine import SqlBase, now, utc
from portside.meta.sql.schema import cve_export_files

__all__ = ["SqlExportFiles"]


class SqlExportFiles(SqlBase):
    async def put_file(self, job_id: int, owner: str, content: bytes, rows: int) -> None:
        # Off the event loop (a large CSV takes a while); mtime=0: the same rows, the same bytes.
        packed = await asyncio.to_thread(gzip.compress, content, 6, mtime=0)
        async with self._write() as conn:
            await conn.execute(delete(cve_export_files).where(cve_export_files.c.job_id == job_id))
            await conn.execute(
                insert(cve_export_files).values(job_id=job_id, owner=owner, content=packed, rows=rows, created=now())
            )

    async def get_file(self, job_id: int, owner: str) -> bytes | None:
        async with self._read() as conn:
            packed = await conn.scalar(
                select(cve_export_files.c.content).where(
                    cve_export_files.c.job_id == job_id, cve_export_files.c.owner == owner
                )
            )
        return None if packed is None else await asyncio.to_thread(gzip.decompress, packed)

    async def present(self, job_ids: Collection[int]) -> set[int]:
        if not job_ids:
            return set()
        async with self._read() as conn:
            found = await conn.execute(
                select(cve_export_files.c.job_id).where(cve_export_files.c.job_id.in_(sorted(job_ids)))
            )
            return {job_id for (job_id,) in found.all()}

    async def expire_files(self, before: datetime) -> int:
        async with self._write() as conn:
            gone = await conn.execute(delete(cve_export_files).where(cve_export_files.c.created < utc(before)))
            return gone.rowcount or 0
