"""Records and the store protocol behind the management API's repositories, artifacts and tags.

An artifact is a manifest linked to a repository. Children of an index are listed as the
index's `references`, not as artifacts of their own, as Harbor shows them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from portside.meta.accounts import Page
from portside.meta.criteria import Criteria
from portside.oci.manifest import Descriptor

__all__ = ["RepositoryInfo", "TagInfo", "ChildReference", "ArtifactInfo", "ArtifactStore"]


@dataclass(frozen=True, slots=True)
class RepositoryInfo:
    id: int
    name: str
    description: str
    artifact_count: int
    pull_count: int
    creation_time: datetime
    update_time: datetime | None


@dataclass(frozen=True, slots=True)
class TagInfo:
    name: str
    repository_id: int
    digest: str
    push_time: datetime


@dataclass(frozen=True, slots=True)
class ChildReference:
    digest: str
    platform: Mapping[str, Any] | None
    annotations: Mapping[str, str] | None
    urls: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    repository_id: int
    repository_name: str
    digest: str
    manifest_media_type: str
    config_media_type: str | None
    artifact_type: str | None
    size: int  # the manifest, the blobs it needs and, for an index, its children's
    push_time: datetime
    pull_time: datetime | None
    annotations: Mapping[str, str]
    tags: tuple[TagInfo, ...]
    references: tuple[ChildReference, ...]
    config_digest: str | None = None  # an image manifest's config blob
    # How many tags it has: `tags` holds only the first ones (by name) when the read was
    # given a `tag_limit`, so an artifact with 100,000 tags reads in constant time. A read
    # with tag_limit=0 (for the artifact alone) neither reads nor counts them: 0.
    tag_count: int = 0


class ArtifactStore(Protocol):
    async def list_repositories(
        self, *, projects: Sequence[str] | None, criteria: Criteria, offset: int, limit: int
    ) -> Page[RepositoryInfo]:
        """Repositories whose first path component is one of `projects` (None: all).
        `criteria` fields (meta/criteria.py): repository_id, name, description, pull_count,
        artifact_count, creation_time, update_time."""

    async def get_repository(self, name: str) -> RepositoryInfo | None: ...

    async def repository_exists(self, name: str) -> bool:
        """Whether `name` is a repository: what `get_repository` answers, without counting
        its artifacts."""

    async def storage_consumption(self) -> int:
        """Bytes of every blob and manifest stored (those waiting for GC included)."""

    async def set_description(self, name: str, description: str) -> bool: ...

    async def delete_repository(self, name: str) -> bool:
        """Forget the repository with its manifests, tags and blob links (blobs stay for GC)."""

    async def list_artifacts(
        self,
        repo: str,
        criteria: Criteria,
        offset: int,
        limit: int,
        tag_limit: int | None = None,
        total: int | None = None,
    ) -> Page[ArtifactInfo]:
        """The artifacts of `repo` (not the children of its indexes). `criteria` fields:
        digest, manifest_media_type, artifact_type, push_time, pull_time, and tags, which
        holds many values: exact `*` is any tag, `nil` none; `{a b}` one of them, `(a b)`
        each of them. `tag_limit`: at most that many tags of each (None: all). `total`:
        the page's total when the caller has just counted the same artifacts (those of a
        listing without conditions are the repository's `artifact_count`), which the
        store then does not count again."""

    async def newest_artifact(self, repo: str, tag_limit: int | None = None) -> ArtifactInfo | None:
        """The first artifact of `list_artifacts` in its default order, newest push first,
        without counting them."""

    async def list_tags(
        self, repo: str, digest: str | None, criteria: Criteria, offset: int, limit: int
    ) -> Page[TagInfo]:
        """The tags of one artifact, or of the whole repository when `digest` is None;
        `criteria` fields: name, push_time."""

    async def get_artifact(self, repo: str, digest: str, tag_limit: int | None = None) -> ArtifactInfo | None: ...

    async def referrers(self, repo: str, subjects: Collection[str]) -> Mapping[str, Sequence[Descriptor]]:
        """The manifests of `repo` whose subject is each of `subjects` (digests), in push
        order, as `RepoStore.referrers` lists one subject's: a level of a referrers tree
        read at once."""

    async def tag_digests(self, repo: str, names: Collection[str]) -> Mapping[str, str]:
        """The digests the tags among `names` name (a name that is no tag is left out)."""

    async def tag_digest(self, repo: str, tag: str) -> str | None: ...
