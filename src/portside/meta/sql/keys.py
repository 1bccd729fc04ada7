"""Keys shared by every instance through the database (the token signing key)."""

from __future__ import annotations

from sqlalchemy import select

from portside.meta.sql.engine import SqlBase, now
from portside.meta.sql.schema import signing_keys

__all__ = ["SqlKeys"]


class SqlKeys(SqlBase):
    async def get_or_create(self, name: str, candidate: str) -> str:
        """The key stored as `name`; `candidate` becomes it when there is none yet (the first
        instance to start wins, every other instance gets the winner's)."""
        async with self._write() as conn:
            await conn.execute(
                self._insert(signing_keys)
                .values(name=name, pem=candidate, creation_time=now())
                .on_conflict_do_nothing()
            )
            pem = (await conn.execute(select(signing_keys.c.pem).where(signing_keys.c.name == name))).scalar()
        assert pem is not None
        return str(pem)
