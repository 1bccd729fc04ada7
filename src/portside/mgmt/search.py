"""Searching what the caller may see.

`search` is Harbor's `/search?q=`: the projects and repositories whose names contain the
text, by the same rules as `/projects` and `/repositories` (the search never widens them).

`find` is the web UI's search, which reads more into the text: names of projects and
repositories, tags (`v1`, or `app:v1` for tags of repositories named like `app`), and
digests (`sha256:` and its hex digits, in full or their first 12 or more, or the digits
alone): the manifests with that digest, and the manifests that use a blob with that digest
as a layer or config. Each group is bounded, and comes only from the projects where the
caller holds the permission the API asks for that kind of thing (`Guard.visible`): a
project the caller may not see adds nothing to any group, nor to any count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from portside.auth.principal import Principal
from portside.errors import NotFound
from portside.meta.accounts import Project
from portside.meta.search import BlobUse, ManifestHit, SearchStore, TagHit
from portside.mgmt.artifacts import ListedRepository, RepositoryService, project_of
from portside.mgmt.guard import Guard
from portside.mgmt.paging import MAX_PAGE_SIZE, Paging
from portside.mgmt.projects import ListedProject, ProjectService
from portside.oci.digest import ALGORITHMS

__all__ = [
    "SearchService",
    "Found",
    "Query",
    "Results",
    "Group",
    "Placed",
    "read_query",
    "GROUP_LIMIT",
    "MIN_DIGEST_PREFIX",
]

T = TypeVar("T")
Hit = TypeVar("Hit", TagHit, ManifestHit, BlobUse)

# Harbor answers a search in one piece; this many of each at most.
_LIMIT = Paging(1, MAX_PAGE_SIZE)
# The UI's groups: enough to pick from, few enough to read; more asks for a longer text.
GROUP_LIMIT = 50
# Fewer hex digits than this match too much to be meant as a digest.
MIN_DIGEST_PREFIX = 12
# No name, tag or digest is longer (repository names: 255).
_MAX_TEXT = 300
_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class Found:
    projects: list[ListedProject]
    repositories: list[ListedRepository]


@dataclass(frozen=True, slots=True)
class Query:
    """What a search text asks for; None or () where it asks for none of that kind."""

    text: str
    name: str | None  # a part of project and repository names
    tag: str | None  # a part of tag names
    tag_repository: str | None  # with `tag`: a part of the names of the tags' repositories
    digests: tuple[str, ...]  # digest prefixes, lowercase `algorithm:hex`


@dataclass(frozen=True, slots=True)
class Group(Generic[T]):
    items: list[T]
    more: bool  # more matched than `items` holds


@dataclass(frozen=True, slots=True)
class Placed(Generic[T]):
    """A hit with the project its repository belongs to."""

    project: Project
    hit: T


@dataclass(frozen=True, slots=True)
class Results:
    query: Query
    projects: Group[ListedProject]
    repositories: Group[ListedRepository]
    tags: Group[Placed[TagHit]]
    artifacts: Group[Placed[ManifestHit]]
    blob_uses: Group[Placed[BlobUse]]

    @property
    def empty(self) -> bool:
        return not any(g.items for g in (self.projects, self.repositories, self.tags, self.artifacts, self.blob_uses))


def _without_host(text: str) -> str:
    """A reference as pulled (`registry.example:5000/lib/app:v1`) names its repository
    after the registry's host, which no repository name holds."""
    first, slash, rest = text.partition("/")
    if slash and rest and ("." in first or ":" in first or first == "localhost"):
        return rest
    return text


def _digest_prefixes(text: str) -> tuple[str, ...]:
    text = text.lower()
    algorithm, colon, digits = text.partition(":")
    if colon:
        algorithms = [algorithm] if algorithm in ALGORITHMS else []
    else:
        algorithms, digits = list(ALGORITHMS), text
    if len(digits) < MIN_DIGEST_PREFIX or not _HEX.issuperset(digits):
        return ()
    return tuple(f"{a}:{digits}" for a in algorithms if len(digits) <= ALGORITHMS[a])


def read_query(text: str) -> Query:
    text = text.strip()
    if not text or len(text) > _MAX_TEXT or not text.isprintable():
        return Query(text, None, None, None, ())
    digests = _digest_prefixes(text)
    if ":" in text and digests:
        return Query(text, None, None, None, digests)
    reference = _without_host(text)
    name, colon, tag = reference.rpartition(":")
    if colon and "/" not in tag:
        return Query(text, name or None, tag or None, name or None, ())
    return Query(text, reference, reference, None, digests)


class SearchService:
    def __init__(self, projects: ProjectService, repositories: RepositoryService, store: SearchStore, guard: Guard):
        self._projects = projects
        self._repositories = repositories
        self._store = store
        self._guard = guard

    async def search(self, who: Principal, text: str) -> Found:
        projects = await self._projects.list(who, name=text or None, public=None, owner=None, q=None, paging=_LIMIT)
        repositories = await self._repositories.list(who, None, None, "name", _LIMIT, name_contains=text or None)
        return Found(projects.items, repositories.items)

    async def find(self, who: Principal, text: str) -> Results:
        query = read_query(text)
        projects: Group[ListedProject] = Group([], False)
        repositories: Group[ListedRepository] = Group([], False)
        limit = Paging(1, GROUP_LIMIT)
        if query.name:
            found_projects = await self._projects.list(
                who, name=query.name, public=None, owner=None, q=None, paging=limit
            )
            projects = Group(found_projects.items, found_projects.total > len(found_projects.items))
            found = await self._repositories.list(who, None, None, "name", limit, name_contains=query.name)
            repositories = Group(found.items, found.total > len(found.items))
        placing = _Placing(self._guard)
        tags: Group[Placed[TagHit]] = Group([], False)
        if query.tag:
            visible = await placing.visible(who, "tag", "list")
            hits = await self._store.tags_named(
                projects=visible,
                tag_contains=query.tag,
                repository_contains=query.tag_repository,
                limit=GROUP_LIMIT + 1,
            )
            tags = await placing.group(hits)
        artifacts: Group[Placed[ManifestHit]] = Group([], False)
        blob_uses: Group[Placed[BlobUse]] = Group([], False)
        if query.digests:
            visible = await placing.visible(who, "artifact", "list")
            artifacts = await placing.group(
                await self._store.manifests_by_digest(projects=visible, prefixes=query.digests, limit=GROUP_LIMIT + 1)
            )
            blob_uses = await placing.group(
                await self._store.blob_uses(projects=visible, prefixes=query.digests, limit=GROUP_LIMIT + 1)
            )
        return Results(query, projects, repositories, tags, artifacts, blob_uses)


class _Placing:
    """Which projects a kind of hit may come from, and the project of each hit, each
    looked up once."""

    def __init__(self, guard: Guard):
        self._guard = guard
        self._known: dict[str, Project | None] = {}

    async def visible(self, who: Principal, resource: str, action: str) -> list[str] | None:
        projects = await self._guard.visible(who, resource, action)
        if projects is None:
            return None
        self._known.update((p.name, p) for p in projects)
        return [p.name for p in projects]

    async def group(self, hits: Sequence[Hit]) -> Group[Placed[Hit]]:
        placed = []
        for hit in hits[:GROUP_LIMIT]:
            name = project_of(hit.repository)
            if name not in self._known:
                try:
                    self._known[name] = await self._guard.project(name)
                except NotFound:  # a repository of an open registry, outside any project
                    self._known[name] = None
            project = self._known[name]
            if project is not None:
                placed.append(Placed(project, hit))
        return Group(placed, len(hits) > GROUP_LIMIT)
