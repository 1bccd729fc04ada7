"""The copy engine: an artifact from one registry to another, as `portside copy`, `portside
sync` and replication all do it.

    report = await Copier(source, target, CopyOptions(all_tags=True)).copy("app", "v1", "mirror/app")

`source` and `target` are `RemoteRegistry` clients, wherever their endpoints and credentials
were configured, or other endpoints (`portside.remote.endpoints`: an OCI layout directory).
One Copier serves one run (a command, a replication execution): it remembers what it has
copied and does not ask again. What is copied, in the order the destination needs it:

* the manifest a tag or digest names, and with `all_tags` every tag of the source pointing
  at that digest; an index's children first (with `platforms`, only those children, which
  makes a new index whose digest the report gives as `destination_digest`);
* each manifest's blobs before it (the destination never holds a manifest naming a blob it
  lacks): skipped when the destination has them (HEAD), mounted from another repository of
  the destination when one is known to hold them, else streamed from the source, in chunks
  when they are larger than one chunk, whole otherwise;
* with `referrers`, what refers to each copied manifest: the OCI referrers API's list, or
  the `sha256-<hex>` tag that stands in for it, and cosign's `.sig`, `.att` and `.sbom`
  tags; at a destination without the referrers API the `sha256-<hex>` index is kept up to
  date so clients find them there.

Every blob's digest is checked while it streams, and the last bytes are sent (with the PUT
that makes the blob) only once it matched; an upload that fails is resumed at the offset the
destination reports, so acknowledged bytes are never sent twice, and a copy run again skips
what is already there. `speed` caps the bytes sent per second (KB/s, Harbor's unit), `jobs`
the blobs in flight.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from portside.oci import mediatypes as mt
from portside.remote.client import RemoteRegistry
from portside.remote.endpoints import RegistryEndpoint, Source, Target, Upload
from portside.remote.errors import RemoteError, RemoteNotFound, RemoteProtocolError, RemoteUnreachable
from portside.remote.journal import UploadJournal
from portside.remote.referrers import fallback_tag
from portside.remote.transfer import RangeRefused

__all__ = [
    "BlobOutcome",
    "CopyOptions",
    "ManifestOutcome",
    "CopyReport",
    "Copier",
    "ProgressListener",
    "SyncReport",
    "matches_platform",
    "platform_child",
    "sync_repository",
]

BlobOutcome = Literal["copied", "mounted", "present"]
ManifestOutcome = Literal["copied", "present", "tagged"]

_COSIGN_SUFFIXES = (".sig", ".att", ".sbom")
_REFERRER_DEPTH = 3  # a signature of an SBOM of an image, and no deeper


@dataclass(frozen=True, slots=True)
class CopyOptions:
    all_tags: bool = False
    platforms: tuple[str, ...] | None = None  # "os/arch[/variant]"; None: every child
    referrers: bool = False
    speed: int | None = None  # KB/s (1024 bytes), for all blobs of the copier together
    jobs: int = 4
    chunk_size: int = 8 << 20
    retries: int = 3
    mount_from: tuple[str, ...] = ()  # destination repositories that may hold the blobs


class ProgressListener:
    """What a copy reports as it goes; the CLI draws it, replication logs it. Each method
    does nothing here, so a listener overrides only what it shows."""

    def blob_started(self, digest: str, size: int) -> None:
        pass

    def blob_progress(self, digest: str, done: int) -> None:
        pass

    def blob_done(self, digest: str, size: int, outcome: BlobOutcome) -> None:
        pass

    def manifest_done(self, repository: str, reference: str, digest: str, outcome: ManifestOutcome) -> None:
        pass


@dataclass
class CopyReport:
    source_repository: str
    destination_repository: str
    digest: str  # the source's
    destination_digest: str  # differs from `digest` only when a platform filter made a new index
    tags: list[str] = field(default_factory=list)
    manifests: list[str] = field(default_factory=list)  # pushed (not already there)
    referrers: list[str] = field(default_factory=list)
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_present: int = 0
    bytes_copied: int = 0
    bytes_resumed: int = 0  # held by the destination after an interruption, not sent again

    @property
    def filtered(self) -> bool:
        return self.digest != self.destination_digest

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_repository": self.source_repository,
            "destination_repository": self.destination_repository,
            "digest": self.digest,
            "destination_digest": self.destination_digest,
            "filtered": self.filtered,
            "tags": self.tags,
            "manifests": self.manifests,
            "referrers": self.referrers,
            "blobs": {"copied": self.blobs_copied, "mounted": self.blobs_mounted, "present": self.blobs_present},
            "bytes_copied": self.bytes_copied,
            "bytes_resumed": self.bytes_resumed,
        }


def matches_platform(platform: Any, wanted: str) -> bool:
    """Whether an index entry's `platform` is `os/arch[/variant]` (no variant: any)."""
    if not isinstance(platform, dict):
        return False
    parts = wanted.split("/")
    if len(parts) < 2 or platform.get("os") != parts[0] or platform.get("architecture") != parts[1]:
        return False
    return len(parts) < 3 or platform.get("variant") == parts[2]


async def platform_child(registry: Source, repository: str, digest: str, wanted: str) -> str | None:
    """The digest of the child of index `digest` for platform `wanted`, or None when
    `digest` is no index; RemoteNotFound when the index has no such child."""
    manifest = await registry.manifest(repository, digest)
    if manifest.media_type not in mt.INDEXES:
        return None
    for entry in _json(manifest.body, digest).get("manifests") or []:
        if isinstance(entry, dict) and matches_platform(entry.get("platform"), wanted):
            return str(entry["digest"])
    raise RemoteNotFound(f"{repository}@{digest} has no image for {wanted}")


class _Throttle:
    """A shared budget of bytes per second; idle time earns at most a second of credit."""

    def __init__(self, bytes_per_second: int | None) -> None:
        self._rate = bytes_per_second
        self._start = 0.0
        self._sent = 0
        self._lock = asyncio.Lock()

    async def take(self, count: int) -> None:
        if not self._rate:
            return
        async with self._lock:
            now = time.monotonic()
            if not self._sent or (now - self._start) - self._sent / self._rate > 1.0:
                self._start, self._sent = now, 0
            self._sent += count
            wait = self._sent / self._rate - (now - self._start)
        if wait > 0:
            await asyncio.sleep(wait)


class _ChunkedRefused(Exception):
    """The destination refused a PATCH with Content-Range: it takes blobs whole only."""


class Copier:
    """Copies from `source` to `target`; one Copier may run many copies (a sync, a
    replication execution), and remembers which destination repositories hold which
    blobs so that later copies mount them instead of sending them again."""

    def __init__(
        self,
        source: Source | RemoteRegistry,
        target: Target | RemoteRegistry,
        options: CopyOptions | None = None,
        progress: ProgressListener | None = None,
        journal: UploadJournal | None = None,
    ) -> None:
        self.source: Source = RegistryEndpoint(source) if isinstance(source, RemoteRegistry) else source
        self.target: Target = RegistryEndpoint(target) if isinstance(target, RemoteRegistry) else target
        self.options = options or CopyOptions()
        self.progress = progress or ProgressListener()
        self.journal = journal  # open uploads, for a run after this one ends half-way
        self._jobs = asyncio.Semaphore(max(1, self.options.jobs))
        self._throttle = _Throttle(self.options.speed * 1024 if self.options.speed else None)
        self._held: dict[str, set[str]] = {}  # blob digest → destination repositories
        self._pending: dict[tuple[str, str, str], asyncio.Future[str]] = {}
        self._chunked = True
        self._referrers_api: dict[str, bool] = {}

    async def copy(
        self, src_repo: str, reference: str, dst_repo: str, *, tags: Sequence[str] | None = None
    ) -> CopyReport:
        """Copy what `reference` (a tag or digest) names in `src_repo` to `dst_repo`, tagged
        `tags` (default: the reference when it is a tag), and with `all_tags` under every
        source tag pointing at it."""
        digest = reference if ":" in reference else await self.source.resolve(src_repo, reference)
        wanted = list(tags) if tags is not None else ([] if ":" in reference else [reference])
        if self.options.all_tags:
            wanted += [tag for tag in await self.tags_of(src_repo, digest) if tag not in wanted]
        report = CopyReport(src_repo, dst_repo, digest, digest)
        report.destination_digest = await self._manifest(src_repo, dst_repo, digest, report, top=True, depth=0)
        for tag in wanted:
            await self._tag(dst_repo, tag, report.destination_digest, report)
        return report

    async def tags_of(self, repository: str, digest: str) -> list[str]:
        """The tags of `repository` at the source that name `digest`."""
        found = await self.resolve_tags(self.source, repository)
        return sorted(tag for tag, named in found.items() if named == digest)

    async def resolve_tags(self, registry: Source, repository: str) -> dict[str, str]:
        """Every tag of `repository` there and the digest it names (HEADs, `jobs` at a time)."""
        try:
            tags = await registry.tags(repository)
        except RemoteNotFound:
            return {}

        async def one(tag: str) -> tuple[str, str | None]:
            async with self._jobs:
                return tag, await registry.tag_digest(repository, tag)

        pairs = await asyncio.gather(*(one(tag) for tag in tags))
        return {tag: digest for tag, digest in pairs if digest is not None}

    # -- manifests, children first ----------------------------------------------------

    async def _manifest(
        self, src_repo: str, dst_repo: str, digest: str, report: CopyReport, *, top: bool, depth: int
    ) -> str:
        # A filtered index is another manifest than the one of the same digest unfiltered.
        kind = "filtered" if top and self.options.platforms is not None else "manifest"
        return await self._once(
            (kind, dst_repo, digest), lambda: self._copy_manifest(src_repo, dst_repo, digest, report, top, depth)
        )

    async def _copy_manifest(
        self, src_repo: str, dst_repo: str, digest: str, report: CopyReport, top: bool, depth: int
    ) -> str:
        manifest = await self.source.manifest(src_repo, digest)
        body, media_type = manifest.body, manifest.media_type
        content = _json(body, digest)
        filtering = top and self.options.platforms is not None and media_type in mt.INDEXES
        if filtering:
            body = self._filtered(content, digest)
            content = _json(body, digest)
        pushed = digest if not filtering else "sha256:" + hashlib.sha256(body).hexdigest()
        if await self.target.tag_digest(dst_repo, pushed) is None:
            if media_type in mt.INDEXES:
                children = [entry["digest"] for entry in content.get("manifests") or [] if _has_digest(entry)]
                await _all(self._manifest(src_repo, dst_repo, c, report, top=False, depth=depth) for c in children)
            else:
                await _all(self._blob(src_repo, dst_repo, d, report) for d in _blobs_of(content))
            await self.target.put_manifest(dst_repo, pushed, body, media_type)
            report.manifests.append(pushed)
            self.progress.manifest_done(dst_repo, pushed, pushed, "copied")
        else:
            self.progress.manifest_done(dst_repo, pushed, pushed, "present")
            if media_type in mt.INDEXES and self.options.referrers:
                # The children are there; their referrers may not be.
                children = [entry["digest"] for entry in content.get("manifests") or [] if _has_digest(entry)]
                for child in children:
                    await self._referrers(src_repo, dst_repo, child, report, depth)
        if self.options.referrers and depth < _REFERRER_DEPTH:
            await self._referrers(src_repo, dst_repo, digest, report, depth)
        return pushed

    def _filtered(self, index: dict[str, Any], digest: str) -> bytes:
        wanted = self.options.platforms or ()
        kept = [
            entry
            for entry in index.get("manifests") or []
            if isinstance(entry, dict) and any(matches_platform(entry.get("platform"), p) for p in wanted)
        ]
        if not kept:
            raise RemoteNotFound(f"index {digest} has no image for {', '.join(wanted)}")
        # A new index, said to be one: its digest differs from the source's, and signatures
        # of the source index do not name it.
        return json.dumps({**index, "manifests": kept}, indent=3).encode()

    async def _tag(self, dst_repo: str, tag: str, digest: str, report: CopyReport, *, own: bool = True) -> None:
        """Point `tag` at `digest`; `own`: a tag of the artifact (not of a referrer) for the report."""
        if await self.target.tag_digest(dst_repo, tag) != digest:
            manifest = await self._destination_manifest(dst_repo, digest)
            await self.target.put_manifest(dst_repo, tag, manifest[0], manifest[1])
            self.progress.manifest_done(dst_repo, tag, digest, "tagged")
        else:
            self.progress.manifest_done(dst_repo, tag, digest, "present")
        if own:
            report.tags.append(tag)

    async def _destination_manifest(self, dst_repo: str, digest: str) -> tuple[bytes, str]:
        # Tagging re-sends the bytes the destination holds (a filtered index exists only there).
        found = await self.target.manifest(dst_repo, digest)
        return found.body, found.media_type

    # -- referrers --------------------------------------------------------------------

    async def _referrers(self, src_repo: str, dst_repo: str, digest: str, report: CopyReport, depth: int) -> None:
        await self._once(
            ("referrers", dst_repo, digest), lambda: self._copy_referrers(src_repo, dst_repo, digest, report, depth)
        )

    async def _copy_referrers(self, src_repo: str, dst_repo: str, digest: str, report: CopyReport, depth: int) -> str:
        fallback = fallback_tag(digest)
        descriptors = await self.source.referrers(src_repo, digest)
        if descriptors is None:
            descriptors = await self._fallback_index(self.source, src_repo, fallback)
        for descriptor in descriptors:
            await self._manifest(src_repo, dst_repo, descriptor["digest"], report, top=False, depth=depth + 1)
            report.referrers.append(descriptor["digest"])
        if descriptors and not await self._has_referrers_api(dst_repo, digest):
            await self._merge_fallback(dst_repo, fallback, descriptors)
        for suffix in _COSIGN_SUFFIXES:
            tag = fallback + suffix
            named = await self.source.tag_digest(src_repo, tag)
            if named is not None:
                await self._manifest(src_repo, dst_repo, named, report, top=False, depth=depth + 1)
                await self._tag(dst_repo, tag, named, report, own=False)
                report.referrers.append(named)
        return digest

    async def _has_referrers_api(self, dst_repo: str, digest: str) -> bool:
        if dst_repo not in self._referrers_api:
            self._referrers_api[dst_repo] = await self.target.referrers(dst_repo, digest) is not None
        return self._referrers_api[dst_repo]

    async def _fallback_index(self, registry: Source, repository: str, tag: str) -> list[dict[str, Any]]:
        named = await registry.tag_digest(repository, tag)
        if named is None:
            return []
        found = await registry.manifest(repository, named)
        if found.media_type != mt.OCI_INDEX:
            return []
        return [entry for entry in _json(found.body, tag).get("manifests") or [] if _has_digest(entry)]

    async def _merge_fallback(self, dst_repo: str, tag: str, descriptors: list[dict[str, Any]]) -> None:
        held = await self._fallback_index(self.target, dst_repo, tag)
        known = {entry["digest"] for entry in held}
        missing = [entry for entry in descriptors if entry["digest"] not in known]
        if missing:
            body = json.dumps(
                {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": held + missing}, indent=3
            ).encode()
            await self.target.put_manifest(dst_repo, tag, body, mt.OCI_INDEX)

    # -- blobs ------------------------------------------------------------------------

    async def _blob(self, src_repo: str, dst_repo: str, descriptor: dict[str, Any], report: CopyReport) -> str:
        digest = str(descriptor["digest"])
        size = int(descriptor.get("size") or 0)
        outcome = await self._once(
            ("blob", dst_repo, digest), lambda: self._copy_blob(src_repo, dst_repo, digest, size, report)
        )
        self._held.setdefault(digest, set()).add(dst_repo)
        return outcome

    async def _copy_blob(self, src_repo: str, dst_repo: str, digest: str, size: int, report: CopyReport) -> str:
        async with self._jobs:
            self.progress.blob_started(digest, size)
            outcome = await self._place(src_repo, dst_repo, digest, size, report)
            if outcome == "present":
                report.blobs_present += 1
            elif outcome == "mounted":
                report.blobs_mounted += 1
            else:
                report.blobs_copied += 1
            self.progress.blob_done(digest, size, outcome)
            return outcome

    async def _place(self, src_repo: str, dst_repo: str, digest: str, size: int, report: CopyReport) -> BlobOutcome:
        if await self.target.has_blob(dst_repo, digest):
            return "present"
        key = f"{self.target.name}/{dst_repo}@{digest}"
        session = await self._resumed(dst_repo, key, report)
        origin = None if session is not None else await self._mount_origin(src_repo, dst_repo, digest)
        if origin is not None:
            session = await self.target.mount(dst_repo, digest, origin)
            if session is None:
                return "mounted"
            self._note(key, session)  # declined: the session it opened serves the upload
        resync = False
        for attempt in range(self.options.retries + 1):
            try:
                if session is not None and resync:
                    try:
                        # Resume where the destination says it is, not where we were.
                        report.bytes_resumed += await session.status()
                    except RemoteNotFound:
                        session = None  # the destination dropped the session: start over
                if session is None:
                    session = await self.target.upload(dst_repo)
                    self._note(key, session)
                await self._upload(session, src_repo, digest, size, report, key)
                if self.journal is not None:
                    self.journal.drop(key)
                return "copied"
            except _ChunkedRefused:
                self._chunked = False
                session = None
            except (RemoteUnreachable, RangeRefused):
                if attempt == self.options.retries:
                    raise
                await asyncio.sleep(min(0.5 * 2**attempt, 5.0))
                resync = True
            except RemoteError as error:
                if session is not None and not isinstance(error, RemoteUnreachable):
                    # A session worth keeping for the next run is one cut off; any other
                    # failure (a digest that did not match, a refusal) ends it.
                    await _quietly(session.cancel())
                    if self.journal is not None:
                        self.journal.drop(key)
                raise
        raise AssertionError("unreachable")  # the loop returns or raises

    async def _resumed(self, dst_repo: str, key: str, report: CopyReport) -> Upload | None:
        """The upload an earlier run left open for this blob, at the destination's offset."""
        handle = self.journal.get(key) if self.journal is not None else None
        if handle is None:
            return None
        session = await self.target.resume(dst_repo, handle)
        if session is None:
            assert self.journal is not None
            self.journal.drop(key)
            return None
        report.bytes_resumed += session.offset
        return session

    def _note(self, key: str, session: Upload) -> None:
        if self.journal is not None:
            self.journal.put(key, session.handle)

    async def _mount_origin(self, src_repo: str, dst_repo: str, digest: str) -> str | None:
        """A repository of the destination that holds `digest`, to mount it from."""
        candidates = [repo for repo in sorted(self._held.get(digest, ())) if repo != dst_repo]
        if candidates:
            return candidates[0]
        others = list(self.options.mount_from)
        if self.source.name == self.target.name:
            others.insert(0, src_repo)  # a copy within one registry
        for repo in others:
            if repo != dst_repo and await self.target.has_blob(repo, digest):
                return repo
        return None

    async def _upload(
        self, session: Upload, src_repo: str, digest: str, size: int, report: CopyReport, key: str
    ) -> None:
        """Stream the blob from the source into `session`, from the offset the destination
        holds. The source's bytes are hashed as they come (`RemoteRegistry.blob` raises
        instead of yielding the last piece when they do not match), and the PUT that makes
        the blob carries the last bytes, so a blob whose digest is wrong is never made."""
        chunk = self.options.chunk_size
        whole = not self._chunked or size <= chunk
        skip = session.offset  # already at the destination
        seen = 0
        held = bytearray()
        async for piece in self.source.blob(src_repo, digest):
            start = seen
            seen += len(piece)
            if seen <= skip:
                continue
            piece = piece[max(0, skip - start) :]
            await self._throttle.take(len(piece))
            held += piece
            while not whole and len(held) > chunk:
                await self._patch(session, bytes(held[:chunk]), report)
                del held[:chunk]
                self._note(key, session)  # a registry may move the session with each chunk
            self.progress.blob_progress(digest, seen)
        await session.finish(digest, bytes(held))
        report.bytes_copied += len(held)

    async def _patch(self, session: Upload, data: bytes, report: CopyReport) -> None:
        first = session.offset == 0
        try:
            await session.patch(data)
        except RangeRefused:
            raise
        except RemoteProtocolError as error:
            if first:  # a registry that takes no chunks refuses the first one
                await _quietly(session.cancel())
                raise _ChunkedRefused() from error
            raise
        report.bytes_copied += len(data)

    async def _once(self, key: tuple[str, str, str], work: Callable[[], Awaitable[str]]) -> str:
        """Run `work` once per key however many manifests ask for it at the same time."""
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(work())
            self._pending[key] = pending
            try:
                return await pending
            except BaseException:
                del self._pending[key]  # a later copy tries again
                raise
        return await asyncio.shield(pending)


@dataclass
class SyncReport:
    source_repository: str
    destination_repository: str
    copies: list[CopyReport] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)  # tags already at the same digest

    def as_dict(self) -> dict[str, Any]:
        return {
            "source_repository": self.source_repository,
            "destination_repository": self.destination_repository,
            "copied": [copy.as_dict() for copy in self.copies],
            "unchanged": self.unchanged,
        }


async def sync_repository(copier: Copier, src_repo: str, dst_repo: str) -> SyncReport:
    """Copy the tags of `src_repo` whose digest differs at `dst_repo` (or that it lacks),
    each digest once with all its changed tags."""
    report = SyncReport(src_repo, dst_repo)
    theirs = await copier.resolve_tags(copier.source, src_repo)
    ours = await copier.resolve_tags(copier.target, dst_repo)
    changed: dict[str, list[str]] = {}
    for tag, digest in sorted(theirs.items()):
        if ours.get(tag) == digest and copier.options.platforms is None:
            report.unchanged.append(tag)
        else:
            changed.setdefault(digest, []).append(tag)
    for digest, tags in changed.items():
        report.copies.append(await copier.copy(src_repo, digest, dst_repo, tags=tags))
    return report


def _json(body: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError as error:
        raise RemoteProtocolError(f"manifest {what} is not JSON") from error
    if not isinstance(value, dict):
        raise RemoteProtocolError(f"manifest {what} is not a JSON object")
    return value


def _has_digest(entry: Any) -> bool:
    return isinstance(entry, dict) and isinstance(entry.get("digest"), str)


def _blobs_of(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """The blobs an image manifest needs at the destination: its config and layers, less
    those the spec lets a registry go without (fetched from their `urls`)."""
    found = []
    for entry in [manifest.get("config"), *(manifest.get("layers") or [])]:
        if _has_digest(entry) and not mt.is_nondistributable(str(entry.get("mediaType", ""))):
            found.append(entry)
    return found


async def _all(works: Iterable[Awaitable[str]]) -> list[str]:
    """Await all of `works` together; when one fails, the others are cancelled (nothing goes
    on copying for a copy that has failed) and its error is raised as it is."""
    tasks = [asyncio.ensure_future(work) for work in works]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def _quietly(work: Awaitable[None]) -> None:
    try:
        await work
    except RemoteError:
        pass
