"""Quotas: Harbor's `/quotas`, one per project (its id is the project's id), storage only.

System administrators (and system robots granted `quota`) list, read and change quotas;
a project's members whose role may read its quota (`quota:read`) see it in the project
summary. A new project starts with the configured default limit; only a system
administrator may ask for another. Limits are bytes, -1 meaning unlimited; a limit below
what a project already uses is allowed (as in Harbor) and refuses its next growth.

The registry enforces the limits in its stores, in the transaction of each push.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from portside.auth.principal import Principal
from portside.digits import parse_decimal
from portside.errors import BadRequest, Forbidden, NotFound
from portside.meta.accounts import AuditStore, Page, Project
from portside.meta.quotas import UNLIMITED, Quota, QuotaQuery, QuotaStore
from portside.mgmt.guard import Guard
from portside.mgmt.limits import is_id
from portside.mgmt.paging import Paging, parse_sort

__all__ = ["QuotaService", "check_storage_limit", "STORAGE", "PROJECT_REFERENCE"]

STORAGE = "storage"  # the one resource a quota limits
PROJECT_REFERENCE = "project"  # what every quota belongs to
_LARGEST = 2**63 - 1


def check_storage_limit(value: int) -> int:
    """Harbor's rule: -1 (unlimited) or a positive number of bytes."""
    if value != UNLIMITED and not 0 < value <= _LARGEST:
        raise BadRequest(f"invalid storage limit {value}: use -1 (unlimited) or a positive number of bytes")
    return value


def _storage_of(hard: Mapping[str, int] | None) -> int:
    if not hard or STORAGE not in hard:
        raise BadRequest('hard.storage is required: {"hard": {"storage": BYTES}}, -1 for unlimited')
    unsupported = sorted(set(hard) - {STORAGE})
    if unsupported:
        raise BadRequest(f"unsupported quota resources {', '.join(unsupported)}; only storage is limited")
    return check_storage_limit(hard[STORAGE])


class QuotaService:
    def __init__(self, quotas: QuotaStore, audit: AuditStore, guard: Guard, default_limit: int):
        self._quotas = quotas
        self._audit = audit
        self._guard = guard
        self.default_limit = default_limit

    # --- a new project's quota (ProjectService) ------------------------------------------

    def may_choose(self, who: Principal, requested: int | None) -> None:
        """Refuse anyone but a system administrator a limit other than the default."""
        if requested is not None and requested != self.default_limit:
            if not self._guard.policy.system_permits(who, "quota", "update"):
                raise Forbidden("only a system administrator may set a project's storage_limit")

    def initial_limit(self, requested: int | None) -> int:
        """The limit a new project starts with; no permission check (the CLI)."""
        if requested is None or requested == self.default_limit:
            return self.default_limit
        return check_storage_limit(requested)

    async def start(self, project: Project, limit: int) -> None:
        await self._quotas.set_storage_limit(project.project_id, limit)

    async def of_project(self, who: Principal, project: Project) -> Quota | None:
        """The project's quota when `who` may read it (the project summary), else None."""
        if not await self._guard.policy.permits(who, project, "quota", "read"):
            return None
        return await self._quotas.get_quota(project.project_id)

    async def of_projects(self, who: Principal, projects: Sequence[Project]) -> dict[int, Quota]:
        """`of_project` of each of `projects` (a page of a list), read together: the quotas
        `who` may read, by project id."""
        readable = [p.project_id for p in projects if await self._guard.policy.permits(who, p, "quota", "read")]
        return await self._quotas.quotas_of(readable)

    # --- /quotas --------------------------------------------------------------------------

    async def list(
        self, who: Principal, reference: str | None, reference_id: str | None, sort: str | None, paging: Paging
    ) -> Page[Quota]:
        self._guard.system(who, "quota", "list")
        order = parse_sort(sort, {"hard.storage": "hard.storage", "used.storage": "used.storage"})
        if reference and reference != PROJECT_REFERENCE:
            return Page([], 0)
        project_id = None
        if reference_id:
            project_id = parse_decimal(reference_id.strip())
            if project_id is None:
                raise BadRequest(f"invalid reference_id {reference_id!r}: a project id")
            if not is_id(project_id):
                return Page([], 0)
        return await self._quotas.list_quotas(QuotaQuery(project_id, order), paging.offset, paging.limit)

    async def get(self, who: Principal, quota_id: int) -> Quota:
        self._guard.system(who, "quota", "read")
        return await self._found(quota_id)

    async def update(self, who: Principal, quota_id: int, hard: Mapping[str, int] | None) -> Quota:
        self._guard.system(who, "quota", "update")
        limit = _storage_of(hard)
        quota = await self._found(quota_id)
        if not await self._quotas.set_storage_limit(quota_id, limit):
            raise NotFound(f"quota {quota_id} not found")
        await self._audit.record(
            project_id=quota.project_id,
            username=who.name,
            operation="update",
            resource_type="quota",
            resource=quota.project_name,
        )
        return await self._found(quota_id)

    async def _found(self, quota_id: int) -> Quota:
        quota = await self._quotas.get_quota(quota_id)
        if quota is None:
            raise NotFound(f"quota {quota_id} not found")
        return quota
