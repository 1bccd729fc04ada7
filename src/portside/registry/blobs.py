"""Reading and deleting blobs: a repository sees only the blobs linked to it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from portside.coord.locks import Locks
from portside.errors import BlobUnknown
from portside.meta.stores import RepoStore, UploadStore
from portside.oci.digest import Digest
from portside.registry.cache import BlobSizeCache
from portside.storage.driver import BlobStore

__all__ = ["BlobHandle", "BlobService"]


@dataclass(frozen=True, slots=True)
class BlobHandle:
    digest: Digest
    size: int
    local_path: Path | None
    store: BlobStore

    def read(self, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        return self.store.read(self.digest, start, end)


class BlobService:
    def __init__(
        self,
        store: BlobStore,
        repos: RepoStore,
        uploads: UploadStore,
        locks: Locks,
        sizes: BlobSizeCache | None = None,
    ):
        self._store = store
        self._repos = repos
        self._uploads = uploads
        self._locks = locks
        self._sizes = sizes

    async def _size(self, repo: str, digest: Digest) -> int | None:
        if self._sizes is None:
            return await self._repos.blob_size(repo, digest)
        return await self._sizes.lookup(repo, digest, lambda: self._repos.blob_size(repo, digest))

    async def open(self, repo: str, digest: Digest) -> BlobHandle:
        size = await self._size(repo, digest)
        if size is None:
            raise BlobUnknown(f"blob {digest} unknown to repository {repo}", detail={"digest": str(digest)})
        return BlobHandle(digest, size, self._store.local_path(digest), self._store)

    async def mount(self, repo: str, digest: Digest, source: str, project_id: int | None = None) -> bool:
        """Link a blob of `source` into `repo` without copying; False when `source` lacks it.
        `project_id` binds the link to `repo`'s project (meta/stores.py)."""
        # Under the blob's lock, as GC sweeps: the content checked here is still there
        # when the link (which touches the blob) commits.
        async with self._locks.hold(f"blob:{digest}"):
            size = await self._repos.blob_size(source, digest)
            if size is None or await self._store.size(digest) is None:
                return False
            await self._uploads.link_blob(repo, digest, size, project_id)
            return True

    async def delete(self, repo: str, digest: Digest, project_id: int | None = None) -> None:
        """Unlink the blob from `repo`; its content stays until garbage collection."""
        if not await self._repos.unlink_blob(repo, digest, project_id):
            raise BlobUnknown(f"blob {digest} unknown to repository {repo}", detail={"digest": str(digest)})
