"""Scanner registrations in SQL. The adapter's credential is encrypted with Fernet under a
key kept as the token signing key is (sql/keys.py, shared by every instance), so the
database file holds no credential in plain text."""

from __future__ import annotations

import uuid as uuids
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from portside.errors import Conflict
from portside.meta.scanners import NewRegistration, ScannerRegistration
from portside.meta.sql.engine import SqlBase, is_unique_violation, now, utc
from portside.meta.sql.keys import SqlKeys
from portside.meta.sql.schema import scanner_registrations as t

__all__ = ["SqlScannerRegistrations"]

KEY_NAME = "scanner-credentials"


class SqlScannerRegistrations(SqlBase):
    def __init__(self, engine: Any, *, after_commit: Callable[[], Awaitable[None]] | None = None):
        super().__init__(engine, after_commit=after_commit)
        self._fernet: Fernet | None = None

    async def _cipher(self) -> Fernet:
        if self._fernet is None:
            key = await SqlKeys(self.engine).get_or_create(KEY_NAME, Fernet.generate_key().decode())
            self._fernet = Fernet(key.encode())
        return self._fernet

    async def _values(self, new: NewRegistration, with_credential: bool = True) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": new.name,
            "url": new.url,
            "description": new.description,
            "auth": new.auth,
            "skip_cert_verify": new.skip_cert_verify,
            "use_internal_addr": new.use_internal_addr,
            "disabled": new.disabled,
            "update_time": now(),
        }
        if with_credential:
            cipher = await self._cipher()
            values["access_credential"] = (
                cipher.encrypt(new.access_credential.encode()).decode() if new.access_credential else ""
            )
        return values

    async def create(self, new: NewRegistration) -> ScannerRegistration:
        values = await self._values(new)
        values.update(uuid=str(uuids.uuid4()), is_default=False, creation_time=values["update_time"])
        try:
            async with self._write() as conn:
                await conn.execute(t.insert().values(**values))
        except IntegrityError as error:
            if is_unique_violation(error):
                raise Conflict(f"a scanner named {new.name!r} or at {new.url!r} is registered already") from None
            raise
        found = await self.get(values["uuid"])
        assert found is not None
        return found

    async def get(self, uuid: str) -> ScannerRegistration | None:
        async with self._read() as conn:
            row = (await conn.execute(select(t).where(t.c.uuid == uuid))).first()
        return None if row is None else _registration(row)

    async def list(self) -> list[ScannerRegistration]:
        async with self._read() as conn:
            rows = (await conn.execute(select(t).order_by(t.c.creation_time, t.c.name))).all()
        return [_registration(row) for row in rows]

    async def update(self, uuid: str, new: NewRegistration, keep_credential: bool) -> ScannerRegistration | None:
        values = await self._values(new, with_credential=not keep_credential)
        try:
            async with self._write() as conn:
                done = await conn.execute(update(t).where(t.c.uuid == uuid).values(**values))
        except IntegrityError as error:
            if is_unique_violation(error):
                raise Conflict(f"a scanner named {new.name!r} or at {new.url!r} is registered already") from None
            raise
        return await self.get(uuid) if done.rowcount else None

    async def delete(self, uuid: str) -> ScannerRegistration | None:
        found = await self.get(uuid)
        if found is not None:
            async with self._write() as conn:
                await conn.execute(delete(t).where(t.c.uuid == uuid))
        return found

    async def set_default(self, uuid: str | None) -> bool:
        # One transaction: the old default is cleared as the new one is set, so there is
        # never more than one.
        async with self._write() as conn:
            if uuid is not None:
                exists = (await conn.execute(select(t.c.uuid).where(t.c.uuid == uuid))).first()
                if exists is None:
                    return False
            await conn.execute(update(t).where(t.c.is_default).values(is_default=False))
            if uuid is not None:
                await conn.execute(update(t).where(t.c.uuid == uuid).values(is_default=True))
        return True

    async def credential(self, uuid: str) -> str:
        async with self._read() as conn:
            stored = (await conn.execute(select(t.c.access_credential).where(t.c.uuid == uuid))).scalar()
        if not stored:
            return ""
        return (await self._cipher()).decrypt(str(stored).encode()).decode()


def _registration(row: Any) -> ScannerRegistration:
    return ScannerRegistration(
        uuid=row.uuid,
        name=row.name,
        description=row.description,
        url=row.url,
        auth=row.auth,
        has_credential=bool(row.access_credential),
        skip_cert_verify=bool(row.skip_cert_verify),
        use_internal_addr=bool(row.use_internal_addr),
        disabled=bool(row.disabled),
        is_default=bool(row.is_default),
        creation_time=utc(row.creation_time),
        update_time=utc(row.update_time),
    )
