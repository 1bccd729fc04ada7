"""Manifests, tags and referrers of a repository."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection

from portside.errors import DigestInvalid, ManifestInvalid, ManifestTooLarge, ManifestUnknown
from portside.meta.stores import ManifestRecord, RepoStore
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.oci.manifest import Descriptor, Manifest, parse_manifest
from portside.oci.reference import check_tag
from portside.registry.cache import ManifestCache
from portside.registry.pull_gate import PullGate

__all__ = [
    "ManifestService",
    "Reference",
    "acceptable",
    "default_platform_child",
    "parse_reference",
    "read_reference",
    "no_such_reference",
]

Reference = str | Digest


def parse_reference(text: str) -> Reference:
    """The tag or digest to push a manifest to: anything else is MANIFEST_INVALID (or DIGEST_INVALID)."""
    return Digest.parse(text) if Digest.is_digest(text) else check_tag(text)


def read_reference(text: str) -> Reference:
    """The tag or digest to read or delete a manifest by: anything else names no manifest."""
    try:
        return parse_reference(text)
    except (ManifestInvalid, DigestInvalid):
        raise no_such_reference(text) from None


def no_such_reference(text: str) -> ManifestUnknown:
    """What a read of a reference that is neither a tag nor a digest answers: 404, as the
    conformance tests expect (a `.INVALID_MANIFEST_NAME` is unknown, not malformed)."""
    return ManifestUnknown(f"{text!r} is neither a tag nor a digest", detail={"reference": text})


class ManifestService:
    def __init__(self, repos: RepoStore, max_manifest_bytes: int, cache: ManifestCache | None = None):
        self._repos = repos
        self.max_manifest_bytes = max_manifest_bytes
        self._cache = cache
        # Told of each manifest pushed by tag, after it is stored (scan on push); it must
        # only queue work, as the push waits for it.
        self.after_push: Callable[[str, Manifest], Awaitable[None]] | None = None
        # Told of each manifest deleted by digest, after it is gone (replicated deletions);
        # like `after_push`, it must only record work, as the delete waits for it.
        self.after_delete: Callable[[str, Digest], Awaitable[None]] | None = None
        # Told of each manifest with a subject pushed by digest (an OCI 1.1 referrer: a
        # signature or SBOM added after its image), after it is stored; it only records work.
        self.after_referrer: Callable[[str, Manifest], Awaitable[None]] | None = None
        # Asked before a manifest GET answers (projects' pull policies); None: nothing to ask.
        self.pull_gate: PullGate | None = None

    async def holding(self, repo: str, blob: Digest, limit: int = 64) -> list[ManifestRecord]:
        """Manifests of `repo` that hold `blob` as their config or a layer (at most `limit`)."""
        return await self._repos.manifests_holding(repo, blob, limit)

    async def indexes_listing(self, repo: str, child: Digest, limit: int = 16) -> list[ManifestRecord]:
        """Indexes of `repo` that list the manifest `child` (at most `limit`)."""
        return await self._repos.manifests_holding(repo, child, limit, "manifest")

    async def _lookup(self, repo: str, reference: Reference) -> ManifestRecord | None:
        if self._cache is None:
            return await self._repos.get_manifest(repo, reference)
        return await self._cache.lookup(repo, reference, lambda: self._repos.get_manifest(repo, reference))

    async def put(
        self,
        repo: str,
        reference: Reference,
        payload: bytes,
        content_type: str | None,
        project_id: int | None = None,
        *,
        children_may_follow: bool = False,
    ) -> Manifest:
        """Store the manifest; `project_id` binds the write to that project (meta/stores.py);
        `children_may_follow`: an index kept before its children (the pull-through cache)."""
        if len(payload) > self.max_manifest_bytes:
            raise ManifestTooLarge(
                f"manifest is {len(payload)} bytes; the limit is {self.max_manifest_bytes}",
                detail={"limit": self.max_manifest_bytes},
            )
        if isinstance(reference, Digest):
            digest = Digest.of(payload, reference.algorithm)
            if digest != reference:
                raise DigestInvalid(f"manifest has digest {digest}, not {reference}", detail={"digest": str(reference)})
        else:
            digest = Digest.of(payload)
        manifest = parse_manifest(payload, content_type, digest)
        tag = None if isinstance(reference, Digest) else reference
        await self._repos.put_manifest(repo, manifest, tag, project_id, children_may_follow=children_may_follow)
        if self.after_push is not None and not isinstance(reference, Digest):
            await self.after_push(repo, manifest)
        elif self.after_referrer is not None and manifest.subject is not None:
            await self.after_referrer(repo, manifest)
        return manifest

    async def get(self, repo: str, reference: Reference, accept: Collection[str] = ()) -> ManifestRecord:
        record = await self._lookup(repo, reference)
        if record is None:
            raise ManifestUnknown(
                f"manifest {reference} unknown to repository {repo}", detail={"reference": str(reference)}
            )
        if not accept or _accepts(accept, record.media_type):
            return record
        if record.media_type in mt.INDEXES and not isinstance(reference, Digest) and _accepts_images(accept):
            # A client that cannot read indexes gets the linux/amd64 image, as Distribution does.
            child = default_platform_child(record.payload)
            if child is not None:
                fallback = await self._lookup(repo, child)
                if fallback is not None and _accepts(accept, fallback.media_type):
                    return fallback
        raise ManifestUnknown(
            f"manifest {reference} is a {record.media_type}, which the Accept header does not allow",
            detail={"reference": str(reference), "mediaType": record.media_type},
        )

    async def delete(self, repo: str, reference: Reference, project_id: int | None = None) -> None:
        if isinstance(reference, Digest):
            found = await self._repos.delete_manifest(repo, reference, project_id)
            if found and self.after_delete is not None:
                await self.after_delete(repo, reference)
        else:
            found = await self._repos.delete_tag(repo, reference, project_id)
        if not found:
            raise ManifestUnknown(
                f"manifest {reference} unknown to repository {repo}", detail={"reference": str(reference)}
            )

    async def referrers(self, repo: str, subject: Digest, artifact_type: str | None) -> list[Descriptor]:
        if artifact_type is not None and not mt.is_media_type(artifact_type):
            return []  # no manifest is stored with an artifact type that is no media type
        return await self._repos.referrers(repo, subject, artifact_type)


def acceptable(accept: Collection[str], media_type: str) -> bool:
    """Whether a client whose Accept header lists `accept` (none: anything) reads `media_type`."""
    return not accept or _accepts(accept, media_type)


def _accepts(accept: Collection[str], media_type: str) -> bool:
    return any(a in ("*/*", media_type, "application/*") for a in accept)


def _accepts_images(accept: Collection[str]) -> bool:
    return any(a in mt.IMAGE_MANIFESTS for a in accept)


def default_platform_child(payload: bytes) -> Digest | None:
    """The linux/amd64 image an index lists, for clients that cannot read indexes."""
    try:
        for child in json.loads(payload).get("manifests", []):
            platform = child.get("platform") or {}
            if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
                return Digest.parse(child["digest"])
    except (ValueError, KeyError, AttributeError, TypeError):
        return None
    return None
