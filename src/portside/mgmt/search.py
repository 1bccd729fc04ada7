"""Harbor's `/search?q=`: the projects and repositories whose names contain the text,
among those the caller may see, by the same rules as `/projects` and `/repositories`
(the search never widens them)."""

from __future__ import annotations

from dataclasses import dataclass

from portside.auth.principal import Principal
from portside.mgmt.artifacts import ListedRepository, RepositoryService
from portside.mgmt.paging import MAX_PAGE_SIZE, Paging
from portside.mgmt.projects import ListedProject, ProjectService

__all__ = ["SearchService", "Found"]

# Harbor answers a search in one piece; this many of each at most.
_LIMIT = Paging(1, MAX_PAGE_SIZE)


@dataclass(frozen=True, slots=True)
class Found:
    projects: list[ListedProject]
    repositories: list[ListedRepository]


class SearchService:
    def __init__(self, projects: ProjectService, repositories: RepositoryService):
        self._projects = projects
        self._repositories = repositories

    async def search(self, who: Principal, text: str) -> Found:
        projects = await self._projects.list(who, name=text or None, public=None, owner=None, q=None, paging=_LIMIT)
        repositories = await self._repositories.list(who, None, None, "name", _LIMIT, name_contains=text or None)
        return Found(projects.items, repositories.items)
