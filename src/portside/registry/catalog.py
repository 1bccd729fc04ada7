"""Tag and repository listings with the spec's `n`/`last` pagination."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from portside.errors import NameUnknown
from portside.meta.stores import RepoStore

__all__ = ["Page", "CatalogService"]

_SCAN_BATCH = 1000


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

    async def repositories(self, last: str | None, n: int | None, projects: Collection[str] | None = None) -> Page:
        """Repositories after `last`; only those of `projects` (by first component) when given."""
        if projects is None:
            return _page(await self._repos.list_repositories(last, None if n is None else n + 1), n)
        wanted = None if n is None else n + 1
        found: list[str] = []
        # Read on in batches until enough visible names are found: visibility is per
        # project, and most callers see most of what they ask for.
        while wanted is None or len(found) < wanted:
            batch = await self._repos.list_repositories(last, _SCAN_BATCH)
            found.extend(name for name in batch if name.split("/", 1)[0] in projects)
            if len(batch) < _SCAN_BATCH:
                break
            last = batch[-1]
        return _page(found if wanted is None else found[:wanted], n)


def _page(items: list[str], n: int | None) -> Page:
    if n is not None and len(items) > n:
        return Page(items[:n], True)
    return Page(items, False)
