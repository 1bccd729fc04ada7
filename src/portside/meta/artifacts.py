"""Records and the store protocol behind the management API's repositories, artifacts and tags.

An artifact is a manifest linked to a repository. Children of an index are listed as the
index's `references`, not as artifacts of their own, as Harbor shows them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from portside.meta.accounts import Page

__all__ = ["RepositoryInfo", "TagInfo", "ChildReference", "ArtifactInfo", "ArtifactFilter", "ArtifactStore"]


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


@dataclass(frozen=True, slots=True)
class ArtifactFilter:
    """Harbor's artifact `q`: exact or fuzzy tag, tagged/untagged only, exact digest."""

    tag: str | None = None
    tag_contains: str | None = None
    tagged: bool | None = None
    digest: str | None = None


class ArtifactStore(Protocol):
    async def list_repositories(
        self,
        *,
        projects: Sequence[str] | None,
        name_contains: str | None,
        exact_name: str | None,
        sort: Sequence[tuple[str, bool]],
        offset: int,
        limit: int,
    ) -> Page[RepositoryInfo]:
        """Repositories whose first path component is one of `projects` (None: all).
        `sort`: (field, descending) among name, creation_time, update_time, pull_count."""

    async def get_repository(self, name: str) -> RepositoryInfo | None: ...

    async def set_description(self, name: str, description: str) -> bool: ...

    async def delete_repository(self, name: str) -> bool:
        """Forget the repository with its manifests, tags and blob links (blobs stay for GC)."""

    async def list_artifacts(
        self, repo: str, match: ArtifactFilter, *, newest_first: bool, offset: int, limit: int
    ) -> Page[ArtifactInfo]: ...

    async def get_artifact(self, repo: str, digest: str) -> ArtifactInfo | None: ...

    async def tag_digest(self, repo: str, tag: str) -> str | None: ...
