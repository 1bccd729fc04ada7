"""Records and the store protocol behind the search: tags by name, manifests by digest, and
the manifests that use a blob (a layer or a config).

Every query takes the projects the caller may see (None: all of them) and a bound on the
rows; the store filters by project in the query itself, so nothing outside them is read,
counted or returned.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

__all__ = ["TagHit", "ManifestHit", "BlobUse", "SearchStore", "TAGS_PER_MANIFEST"]

# The tags a hit names, by name; a hit holds one more when the manifest has others.
TAGS_PER_MANIFEST = 10


@dataclass(frozen=True, slots=True)
class TagHit:
    repository: str  # the full name, project first
    tag: str
    digest: str
    push_time: datetime


@dataclass(frozen=True, slots=True)
class ManifestHit:
    repository: str
    digest: str
    media_type: str
    artifact_type: str | None
    push_time: datetime
    tags: tuple[str, ...]  # at most TAGS_PER_MANIFEST + 1


@dataclass(frozen=True, slots=True)
class BlobUse:
    """A manifest in a repository that needs the blob `blob`."""

    blob: str
    role: Literal["layer", "config"]
    repository: str
    manifest: str
    media_type: str
    tags: tuple[str, ...]  # the manifest's, at most TAGS_PER_MANIFEST + 1


class SearchStore(Protocol):
    async def tags_named(
        self, *, projects: Sequence[str] | None, tag_contains: str, repository_contains: str | None, limit: int
    ) -> list[TagHit]:
        """Tags whose name contains `tag_contains` (any case), exact names first, then by
        repository and tag; with `repository_contains`, only in repositories whose name
        contains it."""

    async def manifests_by_digest(
        self, *, projects: Sequence[str] | None, prefixes: Sequence[str], limit: int
    ) -> list[ManifestHit]:
        """The manifests, in each repository holding one, whose digest starts with one of
        `prefixes` (lowercase `algorithm:hex`)."""

    async def blob_uses(self, *, projects: Sequence[str] | None, prefixes: Sequence[str], limit: int) -> list[BlobUse]:
        """The manifests, in each repository holding one, that need a blob whose digest
        starts with one of `prefixes`."""
