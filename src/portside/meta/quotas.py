"""Per-project storage quotas: the record and the store protocol.

A project's usage is not a counter kept beside the content: it is computed from what its
repositories hold (every distinct blob and manifest once, whichever repositories link it),
so deletes and garbage collection change it without bookkeeping. The registry's stores
check it in the same transaction as every write that makes a project grow. Reads (the
quota API, the project list and summary) may answer from what a process remembers, as
long as nothing any process or instance committed since could have changed it.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from portside.meta.accounts import Page

__all__ = ["UNLIMITED", "Quota", "QuotaQuery", "QuotaStore"]

UNLIMITED = -1


@dataclass(frozen=True, slots=True)
class Quota:
    project_id: int  # also the quota's id
    project_name: str
    owner_name: str
    storage_limit: int  # bytes; UNLIMITED (-1) for none
    storage_used: int  # bytes
    creation_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True)
class QuotaQuery:
    project_id: int | None = None
    # (field, descending): fields "hard.storage", "used.storage"; project id breaks ties
    sort: Sequence[tuple[str, bool]] = ()


class QuotaStore(Protocol):
    async def get_quota(self, project_id: int) -> Quota | None:
        """None when there is no such project; a project without a quota row gets one
        with the default limit."""

    async def quotas_of(self, project_ids: Collection[int]) -> dict[int, Quota]:
        """`get_quota` of several projects at once (a page of them), by project id; the
        projects that do not exist are left out."""

    async def list_quotas(self, query: QuotaQuery, offset: int, limit: int) -> Page[Quota]: ...

    async def set_storage_limit(self, project_id: int, limit: int) -> bool:
        """Create or change the project's quota; False when there is no such project."""
