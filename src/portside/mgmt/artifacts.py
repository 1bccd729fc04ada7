"""Repositories, artifacts and tags: Harbor's `/projects/{p}/repositories/...`.

Reads come from `ArtifactStore`; deleting and tagging go through `ManifestService`, the
same path as `/v2`, so both APIs always agree on what a repository holds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import unquote

from portside.auth.principal import Principal
from portside.errors import BadRequest, Conflict, Denied, DigestInvalid, NotFound, PreconditionFailed
from portside.meta.accounts import AuditStore, Page, Project
from portside.meta.artifacts import ArtifactFilter, ArtifactInfo, ArtifactStore, RepositoryInfo
from portside.mgmt import limits
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Paging, parse_q, parse_sort
from portside.oci.digest import Digest
from portside.oci.reference import is_name, is_tag
from portside.registry.manifests import ManifestService

__all__ = ["ArtifactService", "RepositoryService", "ListedRepository", "derived_id", "repository_path"]


def derived_id(*parts: object) -> int:
    """A stable id for rows keyed by name or digest (artifacts, tags): Harbor's clients
    expect integer ids, and these are the same on every read and every server."""
    return int.from_bytes(hashlib.blake2b("\0".join(map(str, parts)).encode(), digest_size=6).digest(), "big")


def repository_path(project: str, repository: str) -> str:
    """The full repository name; Harbor's clients URL-encode a nested name twice (a%252Fb)."""
    name = unquote(repository)
    return name if name.startswith(project + "/") else f"{project}/{name}"


def _unknown_repository(name: str) -> NotFound:
    return NotFound(f"repository {name[:300]} not found")


def project_of(repo: str) -> str:
    return repo.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class ListedRepository:
    repository: RepositoryInfo
    project_id: int


class RepositoryService:
    def __init__(self, store: ArtifactStore, audit: AuditStore, guard: Guard):
        self._store = store
        self._audit = audit
        self._guard = guard

    async def list(
        self, who: Principal, project_key: str | None, q: str | None, sort: str | None, paging: Paging
    ) -> Page[ListedRepository]:
        query = parse_q(q, ["name"])
        order = parse_sort(sort, ["name", "creation_time", "update_time", "pull_count"]) or [("creation_time", True)]
        name = query.get("name")
        if project_key is not None:
            projects: list[Project] | None = [await self._guard.project_for(who, project_key, "repository", "list")]
        else:
            projects = await self._guard.visible(who, "repository", "list")
        found = await self._store.list_repositories(
            projects=None if projects is None else [p.name for p in projects],
            name_contains=name.value if name and name.kind == "fuzzy" else None,
            exact_name=name.value if name and name.kind != "fuzzy" else None,
            sort=order,
            offset=paging.offset,
            limit=paging.limit,
        )
        ids = {p.name: p.project_id for p in projects or []}
        out = []
        for repo in found.items:
            project_id = ids.get(project_of(repo.name))
            if project_id is None:
                project = await self._guard.project(project_of(repo.name))
                project_id = project.project_id
            out.append(ListedRepository(repo, project_id))
        return Page(out, found.total)

    async def _repository(self, who: Principal, project_key: str, repository: str, action: str) -> ListedRepository:
        project = await self._guard.project_for(who, project_key, "repository", action)
        name = repository_path(project.name, repository)
        # A name outside the OCI grammar names no repository (nor may reach the store: NUL).
        repo = await self._store.get_repository(name) if is_name(name) else None
        if repo is None:
            raise _unknown_repository(name)
        return ListedRepository(repo, project.project_id)

    async def get(self, who: Principal, project_key: str, repository: str) -> ListedRepository:
        return await self._repository(who, project_key, repository, "read")

    async def update(self, who: Principal, project_key: str, repository: str, description: str) -> None:
        found = await self._repository(who, project_key, repository, "update")
        limits.check_text("description", description, limits.REPOSITORY_DESCRIPTION)
        await self._store.set_description(found.repository.name, description)
        await self._record(who, found, "update", found.repository.name)

    async def delete(self, who: Principal, project_key: str, repository: str) -> None:
        found = await self._repository(who, project_key, repository, "delete")
        await self._store.delete_repository(found.repository.name)
        await self._record(who, found, "delete", found.repository.name)

    async def _record(self, who: Principal, found: ListedRepository, operation: str, resource: str) -> None:
        await self._audit.record(
            project_id=found.project_id,
            username=who.name,
            operation=operation,
            resource_type="repository",
            resource=resource,
        )


class ArtifactService:
    def __init__(self, store: ArtifactStore, manifests: ManifestService, audit: AuditStore, guard: Guard):
        self._store = store
        self._manifests = manifests
        self._audit = audit
        self._guard = guard

    async def _open(
        self, who: Principal, project_key: str, repository: str, resource: str, action: str
    ) -> tuple[Project, str]:
        project = await self._guard.project_for(who, project_key, resource, action)
        name = repository_path(project.name, repository)
        if not is_name(name) or await self._store.get_repository(name) is None:
            raise _unknown_repository(name)
        return project, name

    async def _digest(self, repo: str, reference: str) -> str:
        if Digest.is_digest(reference):
            try:
                return str(Digest.parse(reference))
            except DigestInvalid:
                raise NotFound(f"artifact {repo}@{reference} not found") from None
        digest = await self._store.tag_digest(repo, reference) if is_tag(reference) else None
        if digest is None:
            raise NotFound(f"artifact {repo}:{reference} not found")
        return digest

    async def _artifact(self, repo: str, reference: str) -> ArtifactInfo:
        artifact = await self._store.get_artifact(repo, await self._digest(repo, reference))
        if artifact is None:
            raise NotFound(f"artifact {repo}@{reference} not found")
        return artifact

    async def list(
        self,
        who: Principal,
        project_key: str,
        repository: str,
        q: str | None,
        sort: str | None,
        paging: Paging,
    ) -> tuple[Project, Page[ArtifactInfo]]:
        project, repo = await self._open(who, project_key, repository, "artifact", "list")
        query = parse_q(q, ["tags", "digest"])
        match = ArtifactFilter()
        if "tags" in query:
            tag = query["tags"]
            if tag.value == "*":
                match = ArtifactFilter(tagged=True)
            elif tag.value == "nil":
                match = ArtifactFilter(tagged=False)
            elif tag.kind == "fuzzy":
                match = ArtifactFilter(tag_contains=tag.value)
            else:
                match = ArtifactFilter(tag=tag.value)
        if "digest" in query:
            match = ArtifactFilter(match.tag, match.tag_contains, match.tagged, query["digest"].value)
        order = parse_sort(sort, ["push_time"]) or [("push_time", True)]
        page = await self._store.list_artifacts(
            repo, match, newest_first=order[0][1], offset=paging.offset, limit=paging.limit
        )
        return project, page

    async def get(
        self, who: Principal, project_key: str, repository: str, reference: str
    ) -> tuple[Project, ArtifactInfo]:
        project, repo = await self._open(who, project_key, repository, "artifact", "read")
        return project, await self._artifact(repo, reference)

    async def delete(self, who: Principal, project_key: str, repository: str, reference: str) -> None:
        project, repo = await self._open(who, project_key, repository, "artifact", "delete")
        artifact = await self._artifact(repo, reference)
        try:
            await self._manifests.delete(repo, Digest.parse(artifact.digest))
        except Denied as exc:  # a child of an index: Harbor's precondition
            raise PreconditionFailed(exc.text) from exc
        await self._record(who, project, "delete", "artifact", f"{repo}@{artifact.digest}")

    async def add_tag(self, who: Principal, project_key: str, repository: str, reference: str, tag: str) -> None:
        project, repo = await self._open(who, project_key, repository, "tag", "create")
        if not is_tag(tag):
            raise BadRequest(f"invalid tag {tag!r}")
        artifact = await self._artifact(repo, reference)
        if await self._store.tag_digest(repo, tag) is not None:
            raise Conflict(f"tag {tag} already exists in {repo}")
        # The same write as a /v2 manifest PUT by tag, so the same checks apply.
        record = await self._manifests.get(repo, Digest.parse(artifact.digest))
        await self._manifests.put(repo, tag, record.payload, record.media_type)
        await self._record(who, project, "create", "tag", f"{repo}:{tag}")

    async def delete_tag(self, who: Principal, project_key: str, repository: str, reference: str, tag: str) -> None:
        project, repo = await self._open(who, project_key, repository, "tag", "delete")
        artifact = await self._artifact(repo, reference)
        if tag not in {t.name for t in artifact.tags}:
            raise NotFound(f"tag {tag} not found on {repo}@{artifact.digest}")
        await self._manifests.delete(repo, tag)
        await self._record(who, project, "delete", "tag", f"{repo}:{tag}")

    async def _record(self, who: Principal, project: Project, operation: str, kind: str, resource: str) -> None:
        await self._audit.record(
            project_id=project.project_id, username=who.name, operation=operation, resource_type=kind, resource=resource
        )
