"""Web UI sessions on SQLAlchemy Core."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, insert, select

from portside.meta.sessions import WebSession
from portside.meta.sql.engine import SqlBase, now, utc
from portside.meta.sql.schema import web_sessions

__all__ = ["SqlSessions"]


class SqlSessions(SqlBase):
    async def create_session(self, session: WebSession) -> None:
        async with self._write() as conn:
            await conn.execute(
                insert(web_sessions).values(
                    id_hash=session.id_hash,
                    user_id=session.user_id,
                    csrf_token=session.csrf_token,
                    created_at=now(),
                    expires_at=utc(session.expires_at),
                )
            )

    async def get_session(self, id_hash: str) -> WebSession | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(web_sessions).where(web_sessions.c.id_hash == id_hash, web_sessions.c.expires_at > now())
                )
            ).first()
        if row is None:
            return None
        return WebSession(row.id_hash, row.user_id, row.csrf_token, utc(row.expires_at))

    async def delete_session(self, id_hash: str) -> None:
        async with self._write() as conn:
            await conn.execute(delete(web_sessions).where(web_sessions.c.id_hash == id_hash))

    async def delete_user_sessions(self, user_id: int) -> None:
        async with self._write() as conn:
            await conn.execute(delete(web_sessions).where(web_sessions.c.user_id == user_id))

    async def purge_sessions(self, before: datetime) -> int:
        async with self._write() as conn:
            result = await conn.execute(delete(web_sessions).where(web_sessions.c.expires_at < utc(before)))
            return result.rowcount
