"""The event outbox in SQL (meta/events.py). Writers add their row inside their own
transaction with `outbox_row`; this module reads and prunes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from portside.meta.events import Event, EventOutbox
from portside.meta.sql.engine import SqlBase, now, utc
from portside.meta.sql.schema import event_outbox

__all__ = ["SqlEvents", "outbox_row"]


def outbox_row(
    event_type: str, repository: str | None, digest: str | None, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """The values of one outbox row, for `insert(event_outbox)` in the writer's transaction."""
    return {
        "event_type": event_type,
        "occurred_at": now(),
        "repository": repository,
        "digest": digest,
        "payload": json.dumps(dict(payload), sort_keys=True),
    }


class SqlEvents(SqlBase, EventOutbox):
    async def events_after(self, after: int, limit: int) -> list[Event]:
        statement = select(event_outbox).where(event_outbox.c.id > after).order_by(event_outbox.c.id).limit(limit)
        async with self._read() as conn:
            rows = (await conn.execute(statement)).all()
        return [
            Event(
                id=row.id,
                event_type=row.event_type,
                occurred_at=utc(row.occurred_at),
                repository=row.repository,
                digest=row.digest,
                payload=json.loads(row.payload),
            )
            for row in rows
        ]

    async def prune_events(self, before: datetime) -> int:
        async with self._write(notify=False) as conn:
            result = await conn.execute(delete(event_outbox).where(event_outbox.c.occurred_at < before))
        return int(result.rowcount or 0)
