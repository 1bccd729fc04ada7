"""Tag and repository listings with the spec's `n`/`last` pagination."""

from __future__ import annotations

from dataclasses import dataclass

from portside.errors import NameUnknown
from portside.meta.stores import RepoStore

__all__ = ["Page", "CatalogService"]


@dataclass(frozen=True, slots=True)
class Page:
    items: list[str]
    more: bool

    @property
    def last(self) -> str | None:
        return self.items[-1] if self.items else None


class CatalogService:
    def __init__(self, repos: RepoStore):
        self._repos = repos

    async def tags(self, repo: str, last: str | None, n: int | None) -> Page:
        items = await self._repos.list_tags(repo, last, None if n is None else n + 1)
        if items is None:
            raise NameUnknown(f"repository {repo} is not known to the registry", detail={"name": repo})
        return _page(items, n)

    async def repositories(self, last: str | None, n: int | None) -> Page:
        return _page(await self._repos.list_repositories(last, None if n is None else n + 1), n)


def _page(items: list[str], n: int | None) -> Page:
    if n is not None and len(items) > n:
        return Page(items[:n], True)
    return Page(items, False)
