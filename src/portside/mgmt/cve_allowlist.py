"""Harbor's CVE allowlists: `/system/CVEAllowlist` (read by anyone signed in, written by
system administrators and system robots given `system-cve-allowlist:update`) and a
project's `cve_allowlist`, read and written with the project itself. Projects whose
metadata says `reuse_sys_cve_allowlist` use the system's list instead of their own.

A list holds CVE ids, each at most once (kept in the order given) and an optional expiry;
an expired list leaves nothing out. The vulnerability pull policy reads `governing`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from portside.auth.principal import Principal
from portside.errors import BadRequest, Unauthorized
from portside.meta.accounts import Project
from portside.meta.allowlists import SYSTEM, AllowlistStore, CveAllowlist
from portside.mgmt import limits
from portside.mgmt.guard import Guard

__all__ = ["MAX_ENTRIES", "CveAllowlistService", "clean_allowlist"]

MAX_ENTRIES = 10_000
_CVE_ID = 128
# Advisory ids of every database the scanner reads: CVE-2024-1234, GHSA-…, PYSEC-…, DLA-…
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]*$")


def clean_allowlist(cve_ids: Iterable[str], expires_at: int | None) -> tuple[tuple[str, ...], int | None]:
    """The ids stripped, checked and without repeats, and the expiry checked; or BadRequest."""
    seen: dict[str, None] = {}
    for raw in cve_ids:
        cve_id = raw.strip()
        limits.check_text("cve_id", cve_id, _CVE_ID)
        if not _ID.match(cve_id):
            raise BadRequest(f"invalid cve_id {cve_id[:40]!r}: an advisory id such as CVE-2024-1234")
        seen.setdefault(cve_id, None)
        if len(seen) > MAX_ENTRIES:
            raise BadRequest(f"an allowlist holds at most {MAX_ENTRIES} CVEs")
    if expires_at is not None and not 0 <= expires_at <= 2**53:
        raise BadRequest("expires_at must be seconds since the epoch, or null for never")
    return tuple(seen), expires_at


class CveAllowlistService:
    def __init__(self, guard: Guard, store: AllowlistStore):
        self._guard = guard
        self._store = store

    async def system(self, who: Principal) -> CveAllowlist:
        if not who.authenticated:
            raise Unauthorized("sign in to read the system's CVE allowlist")
        return await self._store.get_allowlist(SYSTEM) or CveAllowlist(SYSTEM)

    async def set_system(self, who: Principal, cve_ids: Iterable[str], expires_at: int | None) -> CveAllowlist:
        self._guard.system(who, "system-cve-allowlist", "update")
        ids, expiry = clean_allowlist(cve_ids, expires_at)
        return await self._store.put_allowlist(SYSTEM, ids, expiry)

    async def of_project(self, project: Project) -> CveAllowlist:
        """`project`'s own list (the caller has read the project already)."""
        return await self._store.get_allowlist(project.project_id) or CveAllowlist(project.project_id)

    async def set_project(self, project: Project, cve_ids: Iterable[str], expires_at: int | None) -> CveAllowlist:
        """Replace `project`'s own list (the caller may update the project, and checked the
        list with `clean_allowlist` before changing anything else)."""
        return await self._store.put_allowlist(project.project_id, *clean_allowlist(cve_ids, expires_at))

    async def governing(self, project: Project) -> CveAllowlist:
        """The list the pull policy reads in `project`: the system's when the project reuses
        it, else its own (empty when never written); `in_force` tells what counts when."""
        reuse = project.metadata.get("reuse_sys_cve_allowlist") == "true"
        scope = SYSTEM if reuse else project.project_id
        return await self._store.get_allowlist(scope) or CveAllowlist(scope)
