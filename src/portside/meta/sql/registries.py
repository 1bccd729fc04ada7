"""Registries in SQL. The credential's secret is encrypted at rest under a key of its own
(sql/secrets.py): the database holds no secret in plain text."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from portside.errors import Conflict
from portside.meta.accounts import Page
from portside.meta.criteria import Criteria
from portside.meta.registries import Endpoint, Health, NewEndpoint
from portside.meta.sql.criteria import Fields, conditions, ordering
from portside.meta.sql.engine import SqlBase, is_unique_violation, now, utc
from portside.meta.sql.schema import registries as t
from portside.meta.sql.secrets import SecretBox

__all__ = ["SqlEndpoints"]

KEY_NAME = "registry-credentials"

_FIELDS: Fields = {
    "id": t.c.id,
    "name": t.c.name,
    "type": t.c.type,
    "url": t.c.url,
    "description": t.c.description,
    "status": t.c.status,
    "creation_time": t.c.creation_time,
    "update_time": t.c.update_time,
}


class SqlEndpoints(SqlBase):
    def __init__(self, engine: Any, *, after_commit: Callable[[], Awaitable[None]] | None = None):
        super().__init__(engine, after_commit=after_commit)
        self._secrets = SecretBox(engine, KEY_NAME)

    async def _values(self, new: NewEndpoint, with_secret: bool) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": new.name,
            "type": new.type,
            "url": new.url,
            "description": new.description,
            "insecure": new.insecure,
            "ca_certificate": new.ca_certificate,
            "credential_type": new.credential_type,
            "access_key": new.access_key,
            "update_time": now(),
        }
        if with_secret:
            values["access_secret"] = await self._secrets.seal(new.access_secret)
        return values

    async def create(self, new: NewEndpoint) -> Endpoint:
        values = await self._values(new, with_secret=True)
        values.update(status="unknown", last_error="", checked_at=None, creation_time=values["update_time"])
        try:
            async with self._write() as conn:
                made = await conn.execute(t.insert().values(**values))
                endpoint_id = int(made.inserted_primary_key[0])  # type: ignore[index]
        except IntegrityError as error:
            if is_unique_violation(error):
                raise _taken(new.name) from None
            raise
        found = await self.get(endpoint_id)
        assert found is not None
        return found

    async def get(self, endpoint_id: int) -> Endpoint | None:
        async with self._read() as conn:
            row = (await conn.execute(select(t).where(t.c.id == endpoint_id))).first()
        return None if row is None else _endpoint(row)

    async def list(self, criteria: Criteria, offset: int, limit: int) -> Page[Endpoint]:
        where = conditions(_FIELDS, criteria)
        order = ordering(_FIELDS, criteria, bytewise=self._bytewise)
        query = select(t).where(*where).order_by(*order, t.c.id).offset(offset).limit(limit)
        async with self._read() as conn:
            total = (await conn.execute(select(func.count()).select_from(t).where(*where))).scalar_one()
            rows = (await conn.execute(query)).all()
        return Page([_endpoint(row) for row in rows], int(total))

    async def update(self, endpoint_id: int, new: NewEndpoint, keep_secret: bool) -> Endpoint | None:
        values = await self._values(new, with_secret=not keep_secret)
        # What the last check found was about the registry as it was: check it again.
        values.update(status="unknown", last_error="", checked_at=None)
        try:
            async with self._write() as conn:
                done = await conn.execute(update(t).where(t.c.id == endpoint_id).values(**values))
        except IntegrityError as error:
            if is_unique_violation(error):
                raise _taken(new.name) from None
            raise
        return await self.get(endpoint_id) if done.rowcount else None

    async def delete(self, endpoint_id: int) -> Endpoint | None:
        found = await self.get(endpoint_id)
        if found is not None:
            async with self._write() as conn:
                await conn.execute(delete(t).where(t.c.id == endpoint_id))
        return found

    async def secret(self, endpoint_id: int) -> str:
        async with self._read() as conn:
            stored = (await conn.execute(select(t.c.access_secret).where(t.c.id == endpoint_id))).scalar()
        return await self._secrets.open(str(stored or ""))

    async def record_health(self, endpoint_id: int, health: Health) -> None:
        async with self._write() as conn:
            await conn.execute(
                update(t)
                .where(t.c.id == endpoint_id)
                .values(status=health.status, last_error=health.error, checked_at=health.checked_at)
            )


def _taken(name: str) -> Conflict:
    return Conflict(f"a registry named {name!r} exists already")


def _endpoint(row: Any) -> Endpoint:
    health = None
    if row.checked_at is not None:
        health = Health(status=row.status, error=row.last_error, checked_at=utc(row.checked_at))
    return Endpoint(
        id=int(row.id),
        name=row.name,
        type=row.type,
        url=row.url,
        description=row.description,
        insecure=bool(row.insecure),
        ca_certificate=row.ca_certificate,
        credential_type=row.credential_type,
        access_key=row.access_key,
        has_secret=bool(row.access_secret),
        health=health,
        creation_time=utc(row.creation_time),
        update_time=utc(row.update_time),
    )
