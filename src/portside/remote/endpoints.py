"""What the copy engine reads from and writes to: a registry over the Distribution API
(`RegistryEndpoint`, around `RemoteRegistry`), or an OCI image layout directory
(`portside.remote.layout`). The engine knows only these two protocols.

A `Source` gives manifests and blobs checked against their digests, tags, and referrers
(None where there is no referrers API). A `Target` is a readable source too (the engine asks
it what it holds already) that takes blobs through an `Upload`, which says how much it holds
so that a blob interrupted half-way continues from there, and takes manifests by digest
or tag.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from portside.remote.client import Manifest, RemoteRegistry
from portside.remote.errors import RemoteNotFound, RemoteProtocolError
from portside.remote.referrers import MAX_REFERRERS
from portside.remote.transfer import (
    Mounted,
    UploadSession,
    blob_exists,
    list_tags,
    manifest_digest,
    start_upload,
)

__all__ = ["RegistryEndpoint", "Source", "Target", "Upload", "endpoint"]


class Source(Protocol):
    @property
    def name(self) -> str:
        """Where it is (a registry's URL, a directory), equal for two views of one store."""
        ...

    async def resolve(self, repository: str, reference: str) -> str: ...

    async def manifest(self, repository: str, digest: str) -> Manifest: ...

    def blob(self, repository: str, digest: str) -> AsyncIterator[bytes]:
        """The blob's bytes; raises instead of giving the last of them when they do not
        match the digest."""
        ...

    async def tags(self, repository: str) -> list[str]: ...

    async def tag_digest(self, repository: str, reference: str) -> str | None:
        """The digest a tag (or digest) names, or None when it names nothing."""
        ...

    async def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None: ...


class Upload(Protocol):
    @property
    def handle(self) -> str:
        """What finds this upload again from another process (`Target.resume`)."""
        ...

    @property
    def offset(self) -> int:
        """How much of the blob the target holds, as far as this upload knows."""
        ...

    async def status(self) -> int:
        """Ask the target how much it holds (after an interruption); the new offset."""
        ...

    async def patch(self, data: bytes) -> int:
        """Append a chunk at the offset; raises `RangeRefused` when the target holds
        another amount, and another RemoteProtocolError when it takes no chunks at all."""
        ...

    async def finish(self, digest: str, data: bytes) -> None:
        """The last bytes; the target checks the digest before the blob exists."""
        ...

    async def cancel(self) -> None: ...


class Target(Source, Protocol):
    async def has_blob(self, repository: str, digest: str) -> bool: ...

    async def mount(self, repository: str, digest: str, origin: str) -> Upload | None:
        """Link blob `digest` from repository `origin` of this target: None when done, else
        an upload to send it through (the target declined)."""
        ...

    async def upload(self, repository: str) -> Upload: ...

    async def resume(self, repository: str, handle: str) -> Upload | None:
        """The upload `handle` names, at the offset the target holds; None when the target
        no longer has it."""
        ...

    async def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str: ...


class RegistryEndpoint:
    """A registry as a Source and a Target."""

    def __init__(self, registry: RemoteRegistry) -> None:
        self.registry = registry

    @property
    def name(self) -> str:
        return self.registry.base_url

    async def resolve(self, repository: str, reference: str) -> str:
        return await self.registry.resolve(repository, reference)

    async def manifest(self, repository: str, digest: str) -> Manifest:
        return await self.registry.manifest(repository, digest)

    def blob(self, repository: str, digest: str) -> AsyncIterator[bytes]:
        return self.registry.blob(repository, digest)

    async def tags(self, repository: str) -> list[str]:
        return await list_tags(self.registry, repository)

    async def tag_digest(self, repository: str, reference: str) -> str | None:
        return await manifest_digest(self.registry, repository, reference)

    async def referrers(self, repository: str, digest: str) -> list[dict[str, Any]] | None:
        try:
            body = await self.registry.referrers(repository, digest)
        except RemoteNotFound:
            return None  # no such route: a registry before OCI 1.1
        try:
            index: Any = json.loads(body)
        except ValueError as error:
            raise RemoteProtocolError(f"the referrers of {repository}@{digest} are not JSON") from error
        entries = index.get("manifests") if isinstance(index, dict) else None
        found = [e for e in entries or [] if isinstance(e, dict) and isinstance(e.get("digest"), str)]
        return found[:MAX_REFERRERS]

    async def has_blob(self, repository: str, digest: str) -> bool:
        return await blob_exists(self.registry, repository, digest)

    async def mount(self, repository: str, digest: str, origin: str) -> Upload | None:
        started = await start_upload(self.registry, repository, mount=digest, source=origin)
        return None if isinstance(started, Mounted) else started

    async def upload(self, repository: str) -> UploadSession:
        started = await start_upload(self.registry, repository)
        assert isinstance(started, UploadSession)  # no mount was asked for
        return started

    async def resume(self, repository: str, handle: str) -> UploadSession | None:
        session = UploadSession(self.registry, repository, handle)
        try:
            await session.status()
        except (RemoteNotFound, RemoteProtocolError):
            return None  # expired, completed, or refused (Distribution after a cut PATCH)
        return session

    async def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        return await self.registry.put_manifest(repository, reference, body, media_type)


def endpoint(where: RemoteRegistry | Target) -> Target:
    """A RemoteRegistry as an endpoint; an endpoint as it is."""
    return RegistryEndpoint(where) if isinstance(where, RemoteRegistry) else where
