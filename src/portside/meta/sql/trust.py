"""Trust policies on SQLAlchemy Core (meta/trust.py): one row per scope, the system's or a
project's (deleted with its project)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from portside.meta.sql.engine import SqlBase, now, retry_transient, utc
from portside.meta.sql.schema import trust_policies
from portside.meta.trust import SYSTEM, StoredTrust

__all__ = ["SqlTrust"]


def _scope(project_id: int) -> str:
    return "system" if project_id == SYSTEM else f"p{project_id}"


def _stored(row: Any, project_id: int) -> StoredTrust:
    return StoredTrust(project_id, json.loads(row.document), utc(row.creation_time), utc(row.update_time))


class SqlTrust(SqlBase):
    async def get_trust(self, project_id: int) -> StoredTrust | None:
        async with self._read() as conn:
            row = (
                await conn.execute(select(trust_policies).where(trust_policies.c.scope == _scope(project_id)))
            ).first()
        return None if row is None else _stored(row, project_id)

    @retry_transient
    async def put_trust(self, project_id: int, document: Mapping[str, Any]) -> StoredTrust:
        scope, written, text = _scope(project_id), now(), json.dumps(document, sort_keys=True)
        async with self._write() as conn:
            await conn.execute(
                self._insert(trust_policies)
                .values(
                    scope=scope,
                    project_id=None if project_id == SYSTEM else project_id,
                    document=text,
                    creation_time=written,
                    update_time=written,
                )
                .on_conflict_do_update(
                    index_elements=[trust_policies.c.scope], set_={"document": text, "update_time": written}
                )
            )
            row = (await conn.execute(select(trust_policies).where(trust_policies.c.scope == scope))).one()
        return _stored(row, project_id)
