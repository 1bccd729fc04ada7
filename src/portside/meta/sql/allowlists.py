"""Harbor's CVE allowlists on SQLAlchemy Core (meta/allowlists.py): one row per scope, the
system's or a project's (deleted with its project)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from portside.meta.allowlists import SYSTEM, CveAllowlist
from portside.meta.sql.engine import SqlBase, now, retry_transient, utc
from portside.meta.sql.schema import cve_allowlists

__all__ = ["SqlAllowlists"]


def _scope(project_id: int) -> str:
    return "system" if project_id == SYSTEM else f"p{project_id}"


def _allowlist(row: Any, project_id: int) -> CveAllowlist:
    return CveAllowlist(
        project_id=project_id,
        cve_ids=tuple(json.loads(row.cve_ids)),
        expires_at=row.expires_at,
        id=row.id,
        creation_time=utc(row.creation_time),
        update_time=utc(row.update_time),
    )


class SqlAllowlists(SqlBase):
    async def get_allowlist(self, project_id: int) -> CveAllowlist | None:
        async with self._read() as conn:
            row = (
                await conn.execute(select(cve_allowlists).where(cve_allowlists.c.scope == _scope(project_id)))
            ).first()
        return None if row is None else _allowlist(row, project_id)

    @retry_transient
    async def put_allowlist(self, project_id: int, cve_ids: Sequence[str], expires_at: int | None) -> CveAllowlist:
        scope, written, ids = _scope(project_id), now(), json.dumps(list(cve_ids))
        async with self._write() as conn:
            await conn.execute(
                self._insert(cve_allowlists)
                .values(
                    scope=scope,
                    project_id=None if project_id == SYSTEM else project_id,
                    cve_ids=ids,
                    expires_at=expires_at,
                    creation_time=written,
                    update_time=written,
                )
                .on_conflict_do_update(
                    index_elements=[cve_allowlists.c.scope],
                    set_={"cve_ids": ids, "expires_at": expires_at, "update_time": written},
                )
            )
            row = (await conn.execute(select(cve_allowlists).where(cve_allowlists.c.scope == scope))).one()
        return _allowlist(row, project_id)
