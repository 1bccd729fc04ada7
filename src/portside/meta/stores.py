"""Metadata store protocols: small, split by role, all async."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from portside.oci.digest import Digest
from portside.oci.manifest import Descriptor, Manifest

__all__ = ["ManifestRecord", "UploadRecord", "RepoStore", "UploadStore", "Database", "ChangeCounter"]


@dataclass(frozen=True, slots=True)
class ManifestRecord:
    digest: Digest
    media_type: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class UploadRecord:
    upload_id: str
    repository: str
    size: int
    started_at: datetime
    # The blob writer's state when `size` bytes were acknowledged (see BlobWriter.state).
    state: bytes | None = None
    ended: bool = False  # a tombstone: completed or cancelled


# The writes below take `project_id`: with access control on, the id of the repository's
# project that the caller was granted access in. The write then checks, in its own
# transaction, that the project still exists and is that very project (not one made since
# under the same name), and raises `Denied` otherwise. None: no binding (an open registry).


class RepoStore(Protocol):
    async def blob_size(self, repo: str, digest: Digest) -> int | None:
        """Size of `digest` when it is linked to `repo` (the only blobs `repo` may read)."""

    async def manifests_holding(self, repo: str, blob: Digest, limit: int, kind: str = "blob") -> list[ManifestRecord]:
        """Up to `limit` manifests of `repo` that hold `blob` as their config or a layer
        (`kind` "manifest": the indexes of `repo` that list the manifest `blob`)."""

    async def unlink_blob(self, repo: str, digest: Digest, project_id: int | None = None) -> bool:
        """Remove the link; raises `Denied` while a manifest of `repo` still needs the blob."""

    async def put_manifest(
        self,
        repo: str,
        manifest: Manifest,
        tag: str | None,
        project_id: int | None = None,
        *,
        children_may_follow: bool = False,
    ) -> None:
        """Store and link `manifest`, after checking in the same transaction that every
        blob and child manifest it needs is in `repo`; raises `ManifestBlobUnknown`.
        `children_may_follow`: an index the pull-through cache keeps before all its
        children are here (they follow as they are pulled); its blobs are still checked."""

    async def get_manifest(self, repo: str, reference: str | Digest) -> ManifestRecord | None: ...

    async def delete_manifest(self, repo: str, digest: Digest, project_id: int | None = None) -> bool: ...

    async def delete_tag(self, repo: str, tag: str, project_id: int | None = None) -> bool: ...

    async def list_tags(self, repo: str, last: str | None, limit: int | None) -> list[str] | None:
        """Tags in lexical order after `last`; None when `repo` does not exist."""

    async def list_repositories(self, last: str | None, limit: int | None) -> list[str]: ...

    async def referrers(self, repo: str, subject: Digest, artifact_type: str | None) -> list[Descriptor]: ...

    async def record_pulls(self, pulls: Sequence[tuple[str, Digest, datetime]]) -> None:
        """Count pulls and keep each manifest's last pull time: (repository, digest, when)."""


class UploadStore(Protocol):
    """Upload sessions' rows. A session may have none: one that has acknowledged no bytes
    is known by its id alone (registry/uploadids.py). A session that ended keeps its row,
    as a tombstone (`ended`), until the purge of idle sessions, so its id stays unknown."""

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        """The session's row, a tombstone included; None when it has none."""

    async def save_upload(self, session: UploadRecord) -> None:
        """Record the session's acknowledged size and the writer's state at that size,
        together, making its row when it has none. A tombstone stays a tombstone."""

    async def end_upload(self, session: UploadRecord) -> None:
        """Leave the session's tombstone."""

    async def complete_upload(
        self,
        session: UploadRecord,
        digest: Digest,
        size: int,
        *,
        tombstone: bool = True,
        project_id: int | None = None,
    ) -> None:
        """In one transaction: record the blob, link it to the session's repository, end
        the session (leaving its tombstone unless no client ever saw the id)."""

    async def link_blob(self, repo: str, digest: Digest, size: int, project_id: int | None = None) -> None:
        """Link a blob that is already stored (a cross-repository mount)."""


class Database(RepoStore, UploadStore, Protocol):
    async def check(self) -> None:
        """Raise when the database cannot be reached (readiness probe)."""

    async def close(self) -> None: ...


class ChangeCounter(Protocol):
    async def current(self) -> int | None:
        """A number that changes whenever any process or instance commits a change to what
        its holder caches, by the time the writer's request is answered; cheap enough to ask
        on every request (a pragma, or one Redis GET). None: cannot tell (cache nothing)."""
