"""Copying an artifact into another repository as a mount: nothing is read or written in
the blob store, the target repository is given links to what the source holds.

It goes the way a client's push goes, each step a push's own transaction with its checks:
every blob is linked (as a cross-repository mount, under the blob's lock, within the
target project's storage quota), every child of an index is copied first, and the
manifest is put last, which checks once more that all it needs is in the target.
"""

from __future__ import annotations

from collections.abc import Sequence

from portside.errors import ManifestBlobUnknown
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.oci.manifest import Manifest, parse_manifest
from portside.registry.blobs import BlobService
from portside.registry.manifests import ManifestService

__all__ = ["ArtifactCopier"]

# Indexes of indexes exist; deeper nesting than this is refused rather than followed.
_MAX_DEPTH = 4


class ArtifactCopier:
    def __init__(self, manifests: ManifestService, blobs: BlobService):
        self._manifests = manifests
        self._blobs = blobs

    async def copy(
        self, source: str, digest: Digest, target: str, tags: Sequence[str] = (), project_id: int | None = None
    ) -> Manifest:
        """Link manifest `digest` of `source`, and all it needs, into `target`, with `tags`;
        every write bound to the target's project `project_id` (meta/stores.py), as a push's."""
        manifest = await self._copy(source, digest, target, 0, project_id)
        record = await self._manifests.get(target, digest)
        for tag in tags:
            await self._manifests.put(target, tag, record.payload, record.media_type, project_id)
        return manifest

    async def _copy(self, source: str, digest: Digest, target: str, depth: int, project_id: int | None) -> Manifest:
        record = await self._manifests.get(source, digest)
        manifest = parse_manifest(record.payload, record.media_type, digest)
        if depth > _MAX_DEPTH:
            raise ManifestBlobUnknown(f"index {digest} nests deeper than {_MAX_DEPTH} levels")
        for child in manifest.children:
            await self._copy(source, child.digest, target, depth + 1, project_id)
        for blob in manifest.blobs:
            if mt.is_nondistributable(blob.media_type):
                continue  # never stored: pushes do not need it either
            if not await self._blobs.mount(target, blob.digest, source, project_id):
                raise ManifestBlobUnknown(
                    f"blob {blob.digest} of {source}@{digest} is missing", detail={"digest": str(blob.digest)}
                )
        await self._manifests.put(target, digest, record.payload, record.media_type, project_id)
        return manifest
