"""The audit log: Harbor's `/audit-logs` and `/projects/{p}/logs`, and its retention.

System administrators see everything; everyone else sees the records of the projects
where their role lets them list logs (guest and up), never system-level records.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portside.auth.principal import Principal
from portside.errors import BadRequest
from portside.meta.accounts import AuditQuery, AuditRecord, AuditStore, Page
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Paging, parse_q, parse_sort

__all__ = ["AuditService", "purge_expired"]

_TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d")


def _time(text: str) -> datetime | None:
    if not text:
        return None
    for form in _TIME_FORMATS:
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            continue
    raise BadRequest(f"invalid time {text!r}; use YYYY-MM-DD HH:MM:SS")


def _query(q: str | None, project_id: int | None, project_ids: list[int] | None) -> AuditQuery:
    query = parse_q(q, ["operation", "resource_type", "resource", "username", "op_time"])
    since = until = None
    if "op_time" in query:
        match = query["op_time"]
        if match.kind != "range":
            raise BadRequest("op_time takes a range: op_time=[2024-01-01 00:00:00~2024-12-31 23:59:59]")
        since, until = _time(match.values[0]), _time(match.values[1])

    def value(key: str) -> str | None:
        return query[key].value if key in query else None

    return AuditQuery(
        project_id=project_id,
        username=value("username"),
        operation=value("operation"),
        resource_type=value("resource_type"),
        resource=value("resource"),
        since=since,
        until=until,
        project_ids=project_ids,
    )


class AuditService:
    def __init__(self, audit: AuditStore, guard: Guard):
        self._audit = audit
        self._guard = guard

    async def list(self, who: Principal, q: str | None, sort: str | None, paging: Paging) -> Page[AuditRecord]:
        self._guard.signed_in(who, "read the audit log")
        newest_first = _newest_first(sort)
        if self._guard.policy.system_permits(who, "audit-log", "list"):
            project_ids = None
        else:
            visible = await self._guard.visible(who, "log", "list")
            project_ids = [p.project_id for p in visible or []]
        return await self._audit.list_audit(_query(q, None, project_ids), paging.offset, paging.limit, newest_first)

    async def project_logs(
        self, who: Principal, project_key: str, q: str | None, sort: str | None, paging: Paging
    ) -> Page[AuditRecord]:
        project = await self._guard.project_for(who, project_key, "log", "list")
        query = _query(q, project.project_id, None)
        return await self._audit.list_audit(query, paging.offset, paging.limit, _newest_first(sort))


def _newest_first(sort: str | None) -> bool:
    order = parse_sort(sort, ["op_time"])
    return order[0][1] if order else True


async def purge_expired(audit: AuditStore, retention_days: int, now: datetime | None = None) -> int:
    """Delete audit records older than `retention_days` (0 keeps everything); the count removed."""
    if retention_days <= 0:
        return 0
    return await audit.purge_audit((now or datetime.now(UTC)) - timedelta(days=retention_days))
