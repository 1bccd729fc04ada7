"""Repositories, artifacts and tags: Harbor's `/projects/{p}/repositories/...`.

Reads come from `ArtifactStore`; deleting and tagging go through `ManifestService`, the
same path as `/v2`, so both APIs always agree on what a repository holds. An artifact's
page reads its manifest and image config through the same services, and its referrers
from the store's listing of them, a level of the tree at a time, after the same check as
the API's artifact GET.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from portside.auth.principal import Principal
from portside.errors import (
    BadRequest,
    Conflict,
    Denied,
    DigestInvalid,
    NameInvalid,
    NotFound,
    PreconditionFailed,
)
from portside.meta.accounts import AuditStore, Page, Project
from portside.meta.artifacts import ArtifactInfo, ArtifactStore, RepositoryInfo, TagInfo
from portside.meta.criteria import Match
from portside.mgmt import limits
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Listing, Paging
from portside.oci.digest import Digest
from portside.oci.manifest import Descriptor
from portside.oci.reference import check_name, is_name, is_tag
from portside.registry.configs import IMAGE_CONFIG_TYPES, MAX_CONFIG_BYTES, ImageConfigs
from portside.registry.copy import ArtifactCopier
from portside.registry.manifests import ManifestService

__all__ = [
    "ArtifactService",
    "ArtifactView",
    "ArtifactListing",
    "ArtifactDetail",
    "Referrer",
    "RepositoryService",
    "ListedRepository",
    "derived_id",
    "repository_path",
    "parse_source",
]


def derived_id(*parts: object) -> int:
    """A stable id for rows keyed by name or digest (artifacts, tags): Harbor's clients
    expect integer ids, and these are the same on every read and every server.

    An artifact's id names its content in its repository (repository id, digest), a tag's
    its name there (repository id, "tag", name). Repository ids are never handed out twice,
    so these never name anything in another repository, or in a repository deleted and
    pushed again. The same content deleted and pushed again into the same repository is
    the same artifact, and keeps its id (Harbor, whose ids are rows, gives it a new one);
    likewise a tag deleted and set again. That is honest because nothing is stored under
    these ids, so nothing of the deleted artifact can come back through one; and it is
    cheap: a stored id per artifact or tag would be one more write on every push.

    They are 48 bits of a hash, so two can collide: among n artifacts of the whole
    registry, with a chance of about n² / 2⁴⁹ (one in 56,000 for 100,000 of them); within
    one repository, where clients match them (an index's `child_id`), practically never.
    Nothing is looked up by them: the API addresses artifacts by digest or tag."""
    return int.from_bytes(hashlib.blake2b("\0".join(map(str, parts)).encode(), digest_size=6).digest(), "big")


def repository_path(project: str, repository: str) -> str:
    """The full name of `repository`, which is always relative to `project` (as in Harbor):
    `pa/x` in project `pa` is the repository `pa/pa/x`, never `pa/x`. Harbor's clients
    URL-encode a nested name twice (x%252Fy), which the server has decoded once already."""
    return f"{project}/{unquote(repository)}"


def _unknown_repository(name: str) -> NotFound:
    return NotFound(f"repository {name[:300]} not found")


def project_of(repo: str) -> str:
    return repo.split("/", 1)[0]


@dataclass(frozen=True, slots=True)
class ListedRepository:
    repository: RepositoryInfo
    project: Project

    @property
    def project_id(self) -> int:
        return self.project.project_id


_REPOSITORY_FIELDS = (
    "repository_id",
    "name",
    "description",
    "pull_count",
    "artifact_count",
    "creation_time",
    "update_time",
)
_REPOSITORIES = Listing.of(
    (*_REPOSITORY_FIELDS, "project_id"),
    _REPOSITORY_FIELDS,
    default_order=[("creation_time", True)],
    aliases={"RepositoryID": "repository_id", "Name": "name", "ProjectID": "project_id", "PullCount": "pull_count"},
)
_ARTIFACTS = Listing.of(
    ("digest", "manifest_media_type", "artifact_type", "push_time", "pull_time", "tags"),
    ("digest", "manifest_media_type", "artifact_type", "push_time", "pull_time"),
    default_order=[("push_time", True)],
    aliases={"Digest": "digest", "PushTime": "push_time", "PullTime": "pull_time"},
)
_TAGS = Listing.of(("name", "push_time"), ("name", "push_time"), aliases={"Name": "name", "PushTime": "push_time"})
# How far an artifact's page follows referrers (signatures of signatures, an SBOM's
# attestation...), and how many it shows in all: a subject may gather any number of them.
REFERRER_DEPTH = 4
REFERRER_COUNT = 200
# cosign's tag scheme from before the referrers API: sha256-<hex>.sig, .att, .sbom
COSIGN_TAG_SUFFIXES = ("sig", "att", "sbom")


def _in_projects(projects: list[Project], matches: list[Match]) -> list[Project]:
    """The projects that meet Harbor's `project_id` conditions."""
    kept = projects
    for match in matches:
        wanted = {str(v) for v in match.values if v is not None}
        if match.kind == "range":
            low, high = match.values
            kept = [
                p
                for p in kept
                if (low is None or p.project_id >= _number(low)) and (high is None or p.project_id <= _number(high))
            ]
        elif match.kind == "fuzzy":
            kept = [p for p in kept if str(match.value) in str(p.project_id)]
        elif match.kind == "all" and len(wanted) > 1:
            kept = []
        else:
            kept = [p for p in kept if str(p.project_id) in wanted]
    return kept


def _number(value: object) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise BadRequest(f"project_id must be a number, not {value!r}") from None


class RepositoryService:
    def __init__(self, store: ArtifactStore, audit: AuditStore, guard: Guard):
        self._store = store
        self._audit = audit
        self._guard = guard

    async def list(
        self,
        who: Principal,
        project_key: str | None,
        q: str | None,
        sort: str | None,
        paging: Paging,
        *,
        name_contains: str | None = None,
    ) -> Page[ListedRepository]:
        criteria = _REPOSITORIES.criteria(q, sort)
        if name_contains:
            criteria = criteria.where("name", Match("fuzzy", (name_contains,)))
        if project_key is not None:
            projects: list[Project] | None = [await self._guard.project_for(who, project_key, "repository", "list")]
        else:
            projects = await self._guard.visible(who, "repository", "list")
        if criteria.on("project_id"):
            if projects is None:
                projects = await self._guard.every_project()
            projects = _in_projects(projects, criteria.on("project_id"))
        found = await self._store.list_repositories(
            projects=None if projects is None else [p.name for p in projects],
            criteria=criteria.without("project_id"),
            offset=paging.offset,
            limit=paging.limit,
        )
        known = {p.name: p for p in projects or []}
        out = []
        for repo in found.items:
            project = known.get(project_of(repo.name)) or await self._guard.project(project_of(repo.name))
            known[project.name] = project
            out.append(ListedRepository(repo, project))
        return Page(out, found.total)

    async def _repository(self, who: Principal, project_key: str, repository: str, action: str) -> ListedRepository:
        project = await self._guard.project_for(who, project_key, "repository", action)
        name = repository_path(project.name, repository)
        # A name outside the OCI grammar names no repository (nor may reach the store: NUL).
        repo = await self._store.get_repository(name) if is_name(name) else None
        if repo is None:
            raise _unknown_repository(name)
        return ListedRepository(repo, project)

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


@dataclass(frozen=True, slots=True)
class ArtifactView:
    """An artifact with what its image config says (None: not an image, or unreadable)."""

    info: ArtifactInfo
    config: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ArtifactListing:
    """A page of a repository's artifacts, and the one pushed last (None: it has none)."""

    project: Project
    page: Page[ArtifactView]
    newest: ArtifactInfo | None


@dataclass(frozen=True, slots=True)
class Referrer:
    """A manifest whose `subject` is the artifact above it in the tree, with its own."""

    descriptor: Descriptor
    referrers: tuple[Referrer, ...] = ()


@dataclass(frozen=True, slots=True)
class ArtifactDetail:
    """What an artifact's page shows beyond its listing: the manifest (or index) as
    stored, why an image's config is missing if it is, the referrers tree and the tags
    of cosign's tag scheme (tag, digest) that name it."""

    project: Project
    view: ArtifactView
    manifest: Mapping[str, Any]
    config_problem: str | None
    referrers: tuple[Referrer, ...]
    referrers_cut: bool  # more referrers, or deeper ones, than the tree holds
    scheme_tags: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class _Budget:
    left: int


def json_object(payload: bytes) -> Mapping[str, Any]:
    """`payload` as a JSON object; an empty one when it is not one (or not JSON)."""
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}


def _config_problem(view: ArtifactView, manifest: Mapping[str, Any]) -> str | None:
    if view.config is not None or view.info.config_media_type not in IMAGE_CONFIG_TYPES:
        return None
    descriptor = manifest.get("config")
    size = descriptor.get("size") if isinstance(descriptor, dict) else None
    if isinstance(size, int) and size > MAX_CONFIG_BYTES:
        return f"The image config is {size} bytes; configs are shown up to {MAX_CONFIG_BYTES // 1024**2} MiB."
    return "The image config could not be read: it is missing, or is not a JSON object."


def _referrer_tree(
    below: Mapping[Digest, Sequence[Descriptor]], subject: Digest, depth: int, budget: _Budget, seen: set[Digest]
) -> tuple[tuple[Referrer, ...], bool]:
    """The referrers of `subject` down to `depth` levels, depth first, as many as `budget`
    has left for the whole tree; True when some were left out. `below`: each manifest's
    referrers, as far as the tree can reach."""
    out: list[Referrer] = []
    cut = False
    for descriptor in below.get(subject, ()):
        if descriptor.digest in seen:
            continue
        if budget.left <= 0:
            return tuple(out), True
        budget.left -= 1
        seen.add(descriptor.digest)
        nested: tuple[Referrer, ...] = ()
        if depth > 1:
            nested, deeper_cut = _referrer_tree(below, descriptor.digest, depth - 1, budget, seen)
            cut = cut or deeper_cut
        elif below.get(descriptor.digest):
            cut = True
        out.append(Referrer(descriptor, nested))
    return tuple(out), cut


def parse_source(text: str) -> tuple[str, str]:
    """Harbor's `from`: project/repository@digest or project/repository:tag."""
    name, at, digest = text.partition("@")
    if not at:
        name, colon, tag = text.rpartition(":")
        if not colon or "/" in tag or not is_tag(tag):
            raise BadRequest(f"from must be project/repository@digest or project/repository:tag, not {text!r}")
        reference = tag
    else:
        try:
            reference = str(Digest.parse(digest))
        except DigestInvalid:
            raise BadRequest(f"invalid digest {digest!r} in from") from None
    if "/" not in name:
        raise BadRequest(f"from must name a project and a repository: {text!r}")
    try:
        check_name(name)
    except NameInvalid as exc:
        raise BadRequest(exc.text) from None
    return name, reference


class ArtifactService:
    def __init__(
        self,
        store: ArtifactStore,
        manifests: ManifestService,
        audit: AuditStore,
        guard: Guard,
        configs: ImageConfigs,
        copier: ArtifactCopier,
    ):
        self._store = store
        self._manifests = manifests
        self._audit = audit
        self._guard = guard
        self._configs = configs
        self._copier = copier

    async def _view(self, artifact: ArtifactInfo) -> ArtifactView:
        if artifact.config_digest is None or artifact.config_media_type not in IMAGE_CONFIG_TYPES:
            return ArtifactView(artifact)
        return ArtifactView(artifact, await self._configs.get(artifact.repository_name, artifact.config_digest))

    async def _open(
        self, who: Principal, project_key: str, repository: str, resource: str, action: str
    ) -> tuple[Project, str]:
        project = await self._guard.project_for(who, project_key, resource, action)
        name = repository_path(project.name, repository)
        if not is_name(name) or not await self._store.repository_exists(name):
            raise _unknown_repository(name)
        return project, name

    async def open_repository(
        self, who: Principal, project_key: str, repository: str, resource: str, action: str
    ) -> tuple[Project, str]:
        """The project and the repository's full name, once `who` may do `action` on
        `resource` there (a project it may not see is missing, as an unknown repository is)."""
        return await self._open(who, project_key, repository, resource, action)

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

    async def _artifact(self, repo: str, reference: str, tag_limit: int | None = None) -> ArtifactInfo:
        artifact = await self._store.get_artifact(repo, await self._digest(repo, reference), tag_limit)
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
        tag_limit: int | None = None,
    ) -> tuple[Project, Page[ArtifactView]]:
        """The artifacts, each with its first `tag_limit` tags (None: all of them)."""
        project, repo = await self._open(who, project_key, repository, "artifact", "list")
        page = await self._store.list_artifacts(
            repo, _ARTIFACTS.criteria(q, sort), paging.offset, paging.limit, tag_limit
        )
        return project, Page([await self._view(a) for a in page.items], page.total)

    async def listing(
        self,
        who: Principal,
        project_key: str,
        repository: str,
        q: str | None,
        sort: str | None,
        paging: Paging,
        tag_limit: int | None = None,
        *,
        artifact_count: int | None = None,
    ) -> ArtifactListing:
        """What a repository's page shows of its artifacts: a page of them, as `list`
        answers, and the artifact pushed last. `artifact_count`: the repository's, when the
        caller has just read it with the repository: a listing without `q` holds them all,
        and is not counted again."""
        project, repo = await self._open(who, project_key, repository, "artifact", "list")
        criteria = _ARTIFACTS.criteria(q, sort)
        whole = not criteria.matches
        found = await self._store.list_artifacts(
            repo, criteria, paging.offset, paging.limit, tag_limit, artifact_count if whole else None
        )
        page = Page([await self._view(a) for a in found.items], found.total)
        if whole and paging.offset == 0 and criteria.order == tuple(_ARTIFACTS.default_order) and found.items:
            newest: ArtifactInfo | None = found.items[0]  # the default order is newest first
        else:
            newest = await self._store.newest_artifact(repo, tag_limit=1)
        return ArtifactListing(project, page, newest)

    async def repository_tags(
        self, who: Principal, project_key: str, repository: str, q: str | None, sort: str | None, paging: Paging
    ) -> Page[TagInfo]:
        """Every tag of the repository with the digest it names, with Harbor's q and sort."""
        _, repo = await self._open(who, project_key, repository, "tag", "list")
        return await self._store.list_tags(repo, None, _TAGS.criteria(q, sort), paging.offset, paging.limit)

    async def tags(
        self,
        who: Principal,
        project_key: str,
        repository: str,
        reference: str,
        q: str | None,
        sort: str | None,
        paging: Paging,
    ) -> tuple[ArtifactInfo, Page[TagInfo]]:
        """The tags of one artifact, with Harbor's q and sort."""
        _, repo = await self._open(who, project_key, repository, "tag", "list")
        artifact = await self._artifact(repo, reference, tag_limit=0)
        page = await self._store.list_tags(repo, artifact.digest, _TAGS.criteria(q, sort), paging.offset, paging.limit)
        return artifact, page

    async def get(
        self, who: Principal, project_key: str, repository: str, reference: str, tag_limit: int | None = None
    ) -> tuple[Project, ArtifactView]:
        project, repo = await self._open(who, project_key, repository, "artifact", "read")
        return project, await self._view(await self._artifact(repo, reference, tag_limit))

    async def detail(
        self, who: Principal, project_key: str, repository: str, reference: str, tag_limit: int | None = None
    ) -> ArtifactDetail:
        """The artifact with its manifest, config, referrers and cosign scheme tags, for
        whoever may read it (the API's artifact GET)."""
        project, repo = await self._open(who, project_key, repository, "artifact", "read")
        view = await self._view(await self._artifact(repo, reference, tag_limit))
        digest = Digest.parse(view.info.digest)
        manifest = json_object((await self._manifests.get(repo, digest)).payload)
        below = await self._referrers_below(repo, digest)
        referrers, cut = _referrer_tree(below, digest, REFERRER_DEPTH, _Budget(REFERRER_COUNT), {digest})
        wanted = [f"{digest.algorithm}-{digest.hex}.{suffix}" for suffix in COSIGN_TAG_SUFFIXES]
        named = await self._store.tag_digests(repo, [tag for tag in wanted if is_tag(tag)])
        scheme_tags = tuple((tag, named[tag]) for tag in wanted if tag in named)
        return ArtifactDetail(project, view, manifest, _config_problem(view, manifest), referrers, cut, scheme_tags)

    async def _referrers_below(self, repo: str, root: Digest) -> dict[Digest, Sequence[Descriptor]]:
        """The referrers of each manifest that the tree of `root`'s referrers can hold (see
        `_referrer_tree`), read a level at a time: one statement per level, not per manifest.

        A manifest has one subject, so the referrers form a tree in which each level, read
        left to right, comes in the order the tree is filled (depth first): only the first
        REFERRER_COUNT of a level can be in it. Those are the ones whose referrers are read;
        for the deepest level shown, only to tell whether the tree was cut there."""
        below: dict[Digest, Sequence[Descriptor]] = {}
        level = [root]
        for _ in range(REFERRER_DEPTH + 1):
            wanted = list(dict.fromkeys(d for d in level if d not in below))[:REFERRER_COUNT]
            if not wanted:
                break
            found = await self._store.referrers(repo, [str(d) for d in wanted])
            level = []
            for subject in wanted:
                below[subject] = found.get(str(subject), ())
                level.extend(d.digest for d in below[subject])
        return below

    async def build_history(
        self, who: Principal, project_key: str, repository: str, reference: str
    ) -> Sequence[Mapping[str, Any]]:
        """Harbor's build_history addition: the image config's history."""
        _, repo = await self._open(who, project_key, repository, "artifact-addition", "read")
        view = await self._view(await self._artifact(repo, reference, tag_limit=0))
        if view.config is None:
            raise BadRequest(f"{repo}@{view.info.digest} is not an image: it has no build history")
        history = view.config.get("history")
        return [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []

    async def copy(self, who: Principal, project_key: str, repository: str, source: str) -> tuple[Project, str, str]:
        """Harbor's artifact copy, as a mount: pull on the source, push on the target; a
        source the caller may not read is answered as one that does not exist. Returns the
        target project, repository and the digest copied."""
        target_project = await self._guard.project_for(who, project_key, "repository", "push")
        target = repository_path(target_project.name, repository)
        try:
            check_name(target)
        except NameInvalid as exc:
            raise BadRequest(exc.text) from None
        source_repo, reference = parse_source(source)
        unknown = NotFound(f"artifact {source} not found")
        source_project = await self._projects_may_pull(who, project_of(source_repo))
        if source_project is None:
            raise unknown
        digest = await self._store.tag_digest(source_repo, reference) if is_tag(reference) else reference
        artifact = await self._store.get_artifact(source_repo, digest) if digest else None
        if artifact is None:
            raise unknown
        if await self._store.get_artifact(target, artifact.digest, tag_limit=0) is not None:
            raise Conflict(f"the artifact {target}@{artifact.digest} already exists")
        await self._copier.copy(
            source_repo,
            Digest.parse(artifact.digest),
            target,
            [t.name for t in artifact.tags],
            target_project.project_id,
        )
        await self._record(who, target_project, "create", "artifact", f"{target}@{artifact.digest}")
        return target_project, target, artifact.digest

    async def _projects_may_pull(self, who: Principal, name: str) -> Project | None:
        try:
            project = await self._guard.project(name)
        except NotFound:
            return None
        return project if await self._guard.policy.permits(who, project, "repository", "pull") else None

    async def delete(self, who: Principal, project_key: str, repository: str, reference: str) -> None:
        project, repo = await self._open(who, project_key, repository, "artifact", "delete")
        artifact = await self._artifact(repo, reference, tag_limit=0)
        try:
            await self._manifests.delete(repo, Digest.parse(artifact.digest))
        except Denied as exc:  # a child of an index: Harbor's precondition
            raise PreconditionFailed(exc.text) from exc
        await self._record(who, project, "delete", "artifact", f"{repo}@{artifact.digest}")

    async def add_tag(self, who: Principal, project_key: str, repository: str, reference: str, tag: str) -> None:
        project, repo = await self._open(who, project_key, repository, "tag", "create")
        if not is_tag(tag):
            raise BadRequest(f"invalid tag {tag!r}")
        artifact = await self._artifact(repo, reference, tag_limit=0)
        if await self._store.tag_digest(repo, tag) is not None:
            raise Conflict(f"tag {tag} already exists in {repo}")
        # The same write as a /v2 manifest PUT by tag, so the same checks apply.
        record = await self._manifests.get(repo, Digest.parse(artifact.digest))
        await self._manifests.put(repo, tag, record.payload, record.media_type)
        await self._record(who, project, "create", "tag", f"{repo}:{tag}")

    async def delete_tag(self, who: Principal, project_key: str, repository: str, reference: str, tag: str) -> None:
        project, repo = await self._open(who, project_key, repository, "tag", "delete")
        artifact = await self._artifact(repo, reference, tag_limit=0)
        if not is_tag(tag) or await self._store.tag_digest(repo, tag) != artifact.digest:
            raise NotFound(f"tag {tag} not found on {repo}@{artifact.digest}")
        await self._manifests.delete(repo, tag)
        await self._record(who, project, "delete", "tag", f"{repo}:{tag}")

    async def _record(self, who: Principal, project: Project, operation: str, kind: str, resource: str) -> None:
        await self._audit.record(
            project_id=project.project_id, username=who.name, operation=operation, resource_type=kind, resource=resource
        )
