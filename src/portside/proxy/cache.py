"""The pull-through cache's decisions: what a pull from a proxy project is answered with.

- By digest: what is here (stored, or fetched and still being kept) is served as is; only
  what is not here is asked of the upstream.
- By tag: the upstream's digest of the tag is asked (HEAD) no more often than the project's
  `manifest_check_interval`; when it is the one cached, the cached copy is served, else the
  new manifest is fetched, served and kept.
- Whenever the upstream fails (unreachable, timing out, 429, 5xx, refusing the credential,
  or no longer having the tag when `proxy_cache_local_on_not_found`), what is cached is
  served. Only a pull that nothing cached can answer fails, and it says why: 404 for what
  the upstream does not have, 429 with Retry-After when the upstream's limits are reached,
  503 when the upstream cannot be reached.

Keeping: a fetched image manifest is stored once its blobs are (the store holds no
manifest whose blobs are missing); they are fetched right away, each by its one download
(proxy/downloads.py) which the client's own blob requests join. An index is stored at once,
its children following as they are pulled, so a multi-platform pull never waits for the
platforms nobody asked for. Until it is stored, a fetched manifest is served from memory.

Referrers (signatures, SBOMs) are asked of the upstream and each is kept like a manifest
pulled by digest; when the upstream fails, the cached ones are listed. The project's pull
policies (vulnerability, signatures) judge what this serves as they judge anything stored:
the HTTP layer asks them with the local repository's name.

The counters (`hits`, `misses`, `upstream_failures`, `limited`) are per project, for the
project page.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from portside.errors import BlobUnknown, ManifestUnknown, RegistryError, TooManyRequests, Unavailable
from portside.meta.stores import ManifestRecord
from portside.mgmt.lru import Lru
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.oci.manifest import Descriptor, parse_manifest
from portside.proxy.downloads import Download, Downloads
from portside.proxy.projects import Proxied, ProxyProjects
from portside.proxy.upstream import UpstreamBusy, UpstreamLimited
from portside.registry.blobs import BlobHandle, BlobService
from portside.registry.manifests import ManifestService, Reference, acceptable, default_platform_child
from portside.registry.uploads import UploadService
from portside.remote.errors import RemoteError, RemoteNotFound

__all__ = ["PullThroughCache", "ProxyStats"]

log = logging.getLogger("portside.proxy")


@dataclass(slots=True)
class _Checked:
    digest: Digest
    at: float


@dataclass(frozen=True, slots=True)
class ProxyStats:
    hits: int
    misses: int
    upstream_failures: int
    limited: int


class PullThroughCache:
    def __init__(
        self,
        projects: ProxyProjects,
        manifests: ManifestService,
        blobs: BlobService,
        uploads: UploadService,
        spool_dir: Path,
        clock: Callable[[], float] = time.monotonic,
        *,
        check_timeout: float = 5.0,
    ):
        """`check_timeout`: how long the question whether a cached tag moved may take before
        the cached copy is served (a slow upstream delays a cached pull at most this long)."""
        self.projects = projects
        self._check_timeout = check_timeout
        self._manifests = manifests
        self._blobs = blobs
        self._uploads = uploads
        self.downloads = Downloads(spool_dir)
        self._clock = clock
        # (local repository, tag) → the digest the upstream last confirmed, and when.
        self._checked: Lru[tuple[str, str], _Checked] = Lru(65_536)
        # (local repository, digest) → a manifest fetched and not stored yet.
        self._fetched: Lru[tuple[str, Digest], ManifestRecord] = Lru(4096)
        self._keeping: set[asyncio.Task[None]] = set()
        self._counts: Counter[tuple[int, str]] = Counter()

    async def proxied(self, repository: str) -> Proxied | None:
        """`repository` as the cache serves it; None when its project proxies nothing."""
        return await self.projects.proxied(repository)

    def stats(self, project_id: int) -> ProxyStats:
        c = self._counts
        return ProxyStats(
            c[project_id, "hit"], c[project_id, "miss"], c[project_id, "failure"], c[project_id, "limited"]
        )

    # --- manifests ----------------------------------------------------------------------

    async def manifest(self, p: Proxied, reference: Reference, accept: Collection[str] = ()) -> ManifestRecord:
        record = await (self._by_digest(p, reference) if isinstance(reference, Digest) else self._by_tag(p, reference))
        if acceptable(accept, record.media_type):
            return record
        if record.media_type in mt.INDEXES and not isinstance(reference, Digest):
            # A client that cannot read indexes: the linux/amd64 image, as for stored ones.
            child = default_platform_child(record.payload)
            if child is not None and any(a in mt.IMAGE_MANIFESTS for a in accept):
                fallback = await self._by_digest(p, child)
                if acceptable(accept, fallback.media_type):
                    return fallback
        raise ManifestUnknown(
            f"manifest {reference} is a {record.media_type}, which the Accept header does not allow",
            detail={"reference": str(reference), "mediaType": record.media_type},
        )

    async def _here(self, p: Proxied, reference: Reference) -> ManifestRecord | None:
        try:
            return await self._manifests.get(p.local, reference)
        except ManifestUnknown:
            return None

    async def _by_digest(self, p: Proxied, digest: Digest) -> ManifestRecord:
        found = await self._here(p, digest) or self._fetched.get((p.local, digest))
        if found is not None:
            self._count(p, "hit")
            return found
        self._count(p, "miss")
        try:
            fetched = await p.upstream.manifest(p.remote, digest)
        except RemoteError as error:
            raise self._failure(p, error, f"manifest {digest}") from None
        record = ManifestRecord(fetched.digest, fetched.media_type, fetched.payload)
        self._keep(p, record, None)
        await self._signatures(p, record)
        return record

    async def _by_tag(self, p: Proxied, tag: str) -> ManifestRecord:
        key = (p.local, tag)
        checked = self._checked.get(key)
        known = await self._here(p, tag)
        if known is None and checked is not None:
            known = self._fetched.get((p.local, checked.digest))
        now = self._clock()
        if known is not None and checked is not None and checked.digest == known.digest:
            if now - checked.at < p.config.check_interval:
                self._count(p, "hit")
                return known
        try:
            if known is None:
                # Nothing to compare with: one GET is the whole question.
                fetched = await p.upstream.manifest(p.remote, tag)
                digest = fetched.digest
            else:
                asked = p.upstream.head_manifest(p.remote, tag)
                digest = (await asyncio.wait_for(asked, self._check_timeout)).digest
        except TimeoutError:
            assert known is not None  # only the HEAD is bounded so
            log.warning("upstream of %s is slow; serving the cached %s:%s", p.local, p.local, tag)
            self._count(p, "failure")
            self._count(p, "hit")
            return known
        except RemoteNotFound as error:
            if known is not None and p.config.local_on_not_found:
                log.info("%s:%s is gone upstream; serving the cached %s", p.local, tag, known.digest)
                self._count(p, "hit")
                return known
            self._count(p, "miss")
            raise self._failure(p, error, f"manifest {tag}") from None
        except RemoteError as error:
            if known is not None:
                log.warning("upstream of %s failed (%s); serving the cached %s:%s", p.local, error, p.local, tag)
                self._count(p, "failure")
                self._count(p, "hit")
                return known
            self._count(p, "miss")
            raise self._failure(p, error, f"manifest {tag}") from None
        self._checked.put(key, _Checked(digest, now))
        if known is not None and known.digest == digest:
            self._count(p, "hit")
            return known
        self._count(p, "miss")
        if known is not None:  # the tag moved upstream: the manifest it names now
            try:
                fetched = await p.upstream.manifest(p.remote, digest)
            except RemoteError as error:
                log.warning("upstream of %s failed (%s); serving the cached %s:%s", p.local, error, p.local, tag)
                self._count(p, "failure")
                return known
        record = ManifestRecord(fetched.digest, fetched.media_type, fetched.payload)
        self._keep(p, record, tag)
        if not _is_signature_tag(tag):
            await self._signatures(p, record)
        return record

    def _failure(self, p: Proxied, error: RemoteError, what: str) -> RegistryError:
        """What a pull that nothing cached answers gets, saying why."""
        what = f"{what} of {p.remote}"
        if isinstance(error, RemoteNotFound):
            return ManifestUnknown(f"{what} is not upstream, nor cached", detail={"repository": p.local})
        self._count(p, "failure")
        if isinstance(error, UpstreamBusy):
            self._count(p, "limited")
            return TooManyRequests(
                f"{what} is not cached, and {error}; try again in {error.retry_after} s",
                headers={"Retry-After": str(error.retry_after)},
            )
        if isinstance(error, UpstreamLimited):
            self._count(p, "limited")
            return TooManyRequests(
                f"{what} is not cached, and the upstream {p.endpoint.name} is rate-limiting",
                headers={"Retry-After": "30"},
            )
        return Unavailable(
            f"{what} is not cached, and the upstream {p.endpoint.name} failed: {error}",
            headers={"Retry-After": "5"},
        )

    def _count(self, p: Proxied, what: str) -> None:
        self._counts[p.config.project_id, what] += 1

    # --- keeping ------------------------------------------------------------------------

    async def _signatures(self, p: Proxied, record: ManifestRecord) -> None:
        """Keep an image's signatures (cosign's tag, and its referrers) before the image is
        answered: the project's signature policy judges it by what is here. Only an image
        fetched now costs this (two upstream requests); an upstream without them costs
        nothing more, and one that fails leaves the policy to refuse what it cannot verify."""
        if record.media_type not in mt.IMAGE_MANIFESTS or _has_subject(record.payload):
            return
        tag = f"{record.digest.algorithm}-{record.digest.hex}.sig"
        wanted: list[tuple[ManifestRecord, str | None]] = []
        try:
            if await self._here(p, tag) is None:
                fetched = await p.upstream.manifest(p.remote, tag)
                wanted.append((ManifestRecord(fetched.digest, fetched.media_type, fetched.payload), tag))
        except RemoteNotFound:
            pass  # not signed with cosign's tag scheme
        except RemoteError as error:
            log.info("signatures of %s@%s not fetched: %s", p.local, record.digest, error)
            return
        try:
            index = await p.upstream.referrers(p.remote, record.digest)
            children = parse_manifest(index, mt.OCI_INDEX, Digest.of(index)).children if index else ()
            for child in children:
                if await self._here(p, child.digest) is None:
                    fetched = await p.upstream.manifest(p.remote, child.digest)
                    wanted.append((ManifestRecord(fetched.digest, fetched.media_type, fetched.payload), None))
        except (RemoteError, RegistryError) as error:
            log.info("referrers of %s@%s not fetched: %s", p.local, record.digest, error)
        for signature, signature_tag in wanted:
            self._fetched.put((p.local, signature.digest), signature)
            await self._store(p, signature, signature_tag)

    def _keep(self, p: Proxied, record: ManifestRecord, tag: str | None) -> None:
        self._fetched.put((p.local, record.digest), record)
        task = asyncio.create_task(self._store(p, record, tag))
        self._keeping.add(task)
        task.add_done_callback(self._keeping.discard)

    async def _store(self, p: Proxied, record: ManifestRecord, tag: str | None) -> None:
        try:
            manifest = parse_manifest(record.payload, record.media_type, record.digest)
            if not manifest.is_index:
                for blob in manifest.blobs:
                    if not mt.is_nondistributable(blob.media_type):
                        await self._blob_here(p, blob.digest)
            await self._manifests.put(
                p.local,
                tag if tag is not None else record.digest,
                record.payload,
                record.media_type,
                p.config.project_id,
                children_may_follow=manifest.is_index,
            )
            self._fetched.pop((p.local, record.digest))  # the store serves it now
        except (RegistryError, RemoteError, OSError) as error:
            # The fetched copy stays in memory (while room lasts); the next pull that
            # reaches the upstream tries again.
            log.warning("could not keep %s@%s: %s", p.local, record.digest, error)

    async def _blob_here(self, p: Proxied, digest: Digest) -> None:
        """Until the blob is stored in `p.local`: at once when it is, else through its download."""
        try:
            await self._blobs.open(p.local, digest)
            return
        except BlobUnknown:
            pass
        await self._download(p, digest).wait_done()

    def _download(self, p: Proxied, digest: Digest) -> Download:
        upstream, local, remote, project = p.upstream, p.local, p.remote, p.config.project_id

        def fetch() -> contextlib.AbstractAsyncContextManager[tuple[int | None, AsyncIterator[bytes]]]:
            return upstream.blob(remote, digest)

        async def keep(chunks: AsyncIterable[bytes], size: int | None) -> None:
            await self._uploads.upload_whole(local, digest, chunks, size, project)

        if self.downloads.running(digest) is None:
            self._count(p, "miss")  # a new download; a pull that joins one costs the upstream nothing
        return self.downloads.join(digest, fetch, keep)

    # --- blobs --------------------------------------------------------------------------

    async def blob(self, p: Proxied, digest: Digest) -> BlobHandle | Download:
        """The stored blob, or the download (started, or joined) that is fetching it."""
        try:
            return await self._blobs.open(p.local, digest)
        except BlobUnknown:
            pass
        download = self._download(p, digest)
        try:
            await download.wait_started()
        except RemoteError as error:
            # It may have arrived by another way meanwhile (another instance's download).
            with contextlib.suppress(BlobUnknown):
                return await self._blobs.open(p.local, digest)
            if isinstance(error, RemoteNotFound):
                raise _no_blob(p, digest) from None
            raise self._failure(p, error, f"blob {digest}") from None
        return download

    async def blob_size(self, p: Proxied, digest: Digest) -> BlobHandle | int:
        """For a HEAD: the stored blob, or the size the upstream gives (nothing is fetched)."""
        try:
            return await self._blobs.open(p.local, digest)
        except BlobUnknown:
            pass
        running = self.downloads.running(digest)
        if running is not None and running.size is not None:
            return running.size
        try:
            size = await p.upstream.blob_size(p.remote, digest)
        except RemoteNotFound:
            raise _no_blob(p, digest) from None
        except RemoteError as error:
            raise self._failure(p, error, f"blob {digest}") from None
        if size is None:
            raise Unavailable(f"the upstream gave no size for blob {digest}")
        return size

    # --- referrers ----------------------------------------------------------------------

    async def referrers(self, p: Proxied, subject: Digest, artifact_type: str | None) -> list[Descriptor]:
        """The upstream's referrers of `subject` (each kept here), else the cached ones."""
        try:
            index = await p.upstream.referrers(p.remote, subject)
        except RemoteError as error:
            log.info("referrers of %s@%s from the cache: %s", p.local, subject, error)
            index = None
        found: list[Descriptor] = []
        if index is not None:
            try:
                found = list(parse_manifest(index, mt.OCI_INDEX, Digest.of(index)).children)
            except RegistryError:
                index = None  # not an index: as if the upstream had said nothing
            for descriptor in found:
                # Each referrer is kept as a pull by digest keeps it (already here: no request).
                with contextlib.suppress(RegistryError):
                    await self._by_digest(p, descriptor.digest)
        if index is None:
            return await self._manifests.referrers(p.local, subject, artifact_type)
        if artifact_type is not None:
            found = [d for d in found if d.artifact_type == artifact_type]
        return found

    async def close(self) -> None:
        for task in list(self._keeping):
            task.cancel()
        for task in list(self._keeping):
            with contextlib.suppress(BaseException):
                await task
        await self.downloads.close()
        await self.projects.close()


def _no_blob(p: Proxied, digest: Digest) -> BlobUnknown:
    return BlobUnknown(f"blob {digest} is not in {p.remote} upstream", detail={"digest": str(digest)})


def _is_signature_tag(tag: str) -> bool:
    return tag.endswith((".sig", ".att", ".sbom")) and tag.startswith("sha256-")


def _has_subject(payload: bytes) -> bool:
    """Whether a manifest refers to another (a signature, an SBOM): its own are not sought."""
    return b'"subject"' in payload
