"""Harbor's `/statistics`: how many projects and repositories there are, and the storage.

System administrators get every count and the total storage; anyone else signed in gets
the public projects and the private ones they may see (as `/projects` lists them), with
their repositories, and nothing of the rest: no totals, no storage.
"""

from __future__ import annotations

from dataclasses import dataclass

from portside.auth.principal import Principal
from portside.meta.accounts import Project, ProjectStore
from portside.meta.artifacts import ArtifactStore
from portside.meta.criteria import EVERYTHING
from portside.mgmt.guard import Guard

__all__ = ["StatisticsService", "Statistics"]


@dataclass(frozen=True, slots=True)
class Statistics:
    public_project_count: int
    public_repo_count: int
    private_project_count: int
    private_repo_count: int
    # System administrators only (None for everyone else):
    total_project_count: int | None = None
    total_repo_count: int | None = None
    total_storage_consumption: int | None = None


class StatisticsService:
    def __init__(self, guard: Guard, projects: ProjectStore, artifacts: ArtifactStore):
        self._guard = guard
        self._projects = projects
        self._artifacts = artifacts

    async def _repositories(self, projects: list[Project] | None) -> int:
        names = None if projects is None else [p.name for p in projects]
        found = await self._artifacts.list_repositories(projects=names, criteria=EVERYTHING, offset=0, limit=1)
        return found.total

    async def of(self, who: Principal) -> Statistics:
        self._guard.signed_in(who, "read statistics")
        every = await self._guard.every_project() if who.sysadmin else None
        visible = every if every is not None else await self._guard.visible(who, "project", "read") or []
        public = [p for p in visible if p.public]
        private = [p for p in visible if not p.public]
        public_repos = await self._repositories(public)
        private_repos = await self._repositories(private)
        if every is None:
            return Statistics(len(public), public_repos, len(private), private_repos)
        total_repos = await self._repositories(None)
        return Statistics(
            len(public),
            public_repos,
            len(private),
            total_repos - public_repos,
            total_project_count=len(every),
            total_repo_count=total_repos,
            total_storage_consumption=await self._artifacts.storage_consumption(),
        )
