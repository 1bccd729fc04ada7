"""The audit log: Harbor's `/audit-logs` and `/projects/{p}/logs`, and its retention.

System administrators see everything; everyone else sees the records of the projects
where their role lets them list logs (guest and up), never system-level records.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portside.auth.principal import Principal
from portside.meta.accounts import AuditQuery, AuditRecord, AuditStore, Page
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Listing, Paging, parse_sort

__all__ = ["AuditService", "purge_expired"]

_FIELDS = ("id", "username", "operation", "resource_type", "resource", "op_time")
_LISTING = Listing.of(_FIELDS, ("id", "op_time", "username", "operation", "resource_type", "resource"))


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
        query = AuditQuery(project_ids=project_ids, criteria=_LISTING.criteria(q, sort))
        return await self._audit.list_audit(query, paging.offset, paging.limit, newest_first)

    async def project_logs(
        self, who: Principal, project_key: str, q: str | None, sort: str | None, paging: Paging
    ) -> Page[AuditRecord]:
        project = await self._guard.project_for(who, project_key, "log", "list")
        query = AuditQuery(project_id=project.project_id, criteria=_LISTING.criteria(q, sort))
        return await self._audit.list_audit(query, paging.offset, paging.limit, _newest_first(sort))


def _newest_first(sort: str | None) -> bool:
    """Ties after the order asked for, and no order: newest first unless sorted by op_time."""
    order = parse_sort(sort, {"op_time": "op_time"})
    return order[0][1] if order else True


async def purge_expired(audit: AuditStore, retention_days: int, now: datetime | None = None) -> int:
    """Delete audit records older than `retention_days` (0 keeps everything); the count removed."""
    if retention_days <= 0:
        return 0
    return await audit.purge_audit((now or datetime.now(UTC)) - timedelta(days=retention_days))
