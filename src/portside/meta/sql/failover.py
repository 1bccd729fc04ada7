"""Registries' failover URLs in SQL (meta/failover.py)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select

from portside.meta.sql.engine import SqlBase
from portside.meta.sql.schema import registry_failover_urls as t

__all__ = ["SqlFailover"]


class SqlFailover(SqlBase):
    async def failover_urls(self, registry_id: int) -> list[str]:
        async with self._read() as conn:
            rows = await conn.execute(select(t.c.url).where(t.c.registry_id == registry_id).order_by(t.c.position))
            return [str(url) for (url,) in rows]

    async def set_failover_urls(self, registry_id: int, urls: Sequence[str]) -> None:
        async with self._write() as conn:
            await conn.execute(delete(t).where(t.c.registry_id == registry_id))
            if urls:
                await conn.execute(
                    t.insert(), [{"registry_id": registry_id, "position": n, "url": url} for n, url in enumerate(urls)]
                )
