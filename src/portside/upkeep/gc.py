"""Online garbage collection: mark what tags reach, sweep the rest while pushes go on.

Mark (`mark`, pure): in each repository the roots are its tagged manifests (every linked
manifest, unless `delete_untagged`) and every manifest pushed within the grace period;
kept are the roots and, transitively, an index's children, a kept manifest's subject and
the referrers (signatures, SBOMs) of a kept manifest. What a repository keeps needs its
blobs; a blob link nothing needs that is older than the cutoff goes, and a blob linked
nowhere, needed by no kept manifest and untouched since the cutoff goes.

Sweep (`GarbageCollector.collect`), in this order, each delete one conditional
transaction (`meta.upkeep.GcStore`) that re-checks what the plan assumed:

1. upload sessions idle too long and staging areas without a session (`purge`);
2. untagged manifests leave their repositories, indexes before their children;
3. manifest rows no repository links are deleted;
4. blob links nothing needs are removed;
5. blobs are deleted: under the blob's lock (`blob:<digest>`, which an upload holds from
   publishing the bytes until the database records them, and a mount while it links),
   the row first, and only if that delete happened, the content;
6. content with no blob row (a crash between publishing and recording) older than the
   cutoff, under the same lock after checking again that no row appeared.

The grace period is what keeps a push in flight safe: its blobs are linked (and touched)
before its manifest arrives, and nothing younger than the cutoff is swept. A dry run
makes the same plan and reports it without deleting anything.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from portside.coord.locks import Locks
from portside.errors import BadRequest
from portside.meta.upkeep import GcStore, GraphSnapshot, ManifestNode
from portside.oci.digest import Digest
from portside.storage.driver import BlobStore
from portside.upkeep.jobs import Journal, PlainJournal
from portside.upkeep.purge import UploadPurger

__all__ = ["GarbageCollector", "GcOptions", "GcPlan", "GcResult", "mark"]


@dataclass(frozen=True, slots=True)
class GcOptions:
    delete_untagged: bool = False
    dry_run: bool = False

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any]) -> GcOptions:
        """From a job's parameters (Harbor's: `delete_untagged`, `dry_run`; `workers` and
        other keys Harbor sends are accepted and ignored)."""
        values = {}
        for name in ("delete_untagged", "dry_run"):
            value = parameters.get(name, False)
            if not isinstance(value, bool):
                raise BadRequest(f"parameter {name} must be true or false")
            values[name] = value
        return cls(**values)


@dataclass
class GcPlan:
    """What a sweep will delete, in the order it deletes it."""

    cutoff: datetime
    manifest_unlinks: list[tuple[str, str]] = field(default_factory=list)  # (repository, digest)
    manifest_deletes: list[str] = field(default_factory=list)
    blob_unlinks: list[tuple[str, str]] = field(default_factory=list)  # (repository, digest)
    blob_deletes: dict[str, int] = field(default_factory=dict)  # digest → size


@dataclass
class GcResult:
    dry_run: bool
    delete_untagged: bool
    manifests_unlinked: int = 0
    manifests_deleted: int = 0
    blob_links_removed: int = 0
    blobs_deleted: int = 0
    orphans_deleted: int = 0
    bytes_freed: int = 0
    uploads_purged: int = 0
    staging_areas_purged: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _parents_first(doomed: set[str], manifests: Mapping[str, ManifestNode]) -> list[str]:
    """`doomed` ordered so an index comes before its children (a child leaves its
    repository only once no index there names it)."""
    parents = dict.fromkeys(doomed, 0)
    for digest in doomed:
        node = manifests.get(digest)
        for child in node.children if node else ():
            if child in parents and child != digest:
                parents[child] += 1
    ready = sorted((d for d, n in parents.items() if n == 0), reverse=True)
    order: list[str] = []
    while ready:
        digest = ready.pop()
        order.append(digest)
        node = manifests.get(digest)
        for child in node.children if node else ():
            if child in parents and child != digest:
                parents[child] -= 1
                if parents[child] == 0:
                    ready.append(child)
    placed = set(order)
    return order + sorted(d for d in doomed if d not in placed)  # no cycles among digests; just in case


def _kept(
    links: Mapping[str, datetime],
    tagged: Iterable[str],
    manifests: Mapping[str, ManifestNode],
    cutoff: datetime,
    delete_untagged: bool,
) -> set[str]:
    """The manifests one repository keeps."""
    if delete_untagged:
        roots = {d for d in tagged if d in links} | {d for d, pushed in links.items() if pushed >= cutoff}
    else:
        roots = set(links)
    referrers: dict[str, list[str]] = {}
    for digest in links:
        node = manifests.get(digest)
        if node is not None and node.subject is not None:
            referrers.setdefault(node.subject, []).append(digest)
    kept: set[str] = set()
    stack = list(roots)
    while stack:
        digest = stack.pop()
        if digest in kept or digest not in links:
            continue
        kept.add(digest)
        node = manifests.get(digest)
        if node is not None:
            stack.extend(node.children)
            if node.subject is not None:
                stack.append(node.subject)
        stack.extend(referrers.get(digest, ()))
    return kept


def mark(snapshot: GraphSnapshot, cutoff: datetime, delete_untagged: bool) -> GcPlan:
    """The plan for `snapshot`: everything older than `cutoff` that nothing kept needs."""
    plan = GcPlan(cutoff)
    kept_anywhere: set[str] = set()
    needed_anywhere: set[str] = set()
    needed_by_repo: dict[int, set[str]] = {}
    for repo_id, links in snapshot.manifest_links.items():
        name = snapshot.repositories.get(repo_id)
        # A repository the snapshot has no name for appeared while it was read: keep it all.
        tagged = snapshot.tagged.get(repo_id, ()) if name is not None else links
        kept = _kept(links, tagged, snapshot.manifests, cutoff, delete_untagged)
        kept_anywhere |= kept
        if name is not None:
            plan.manifest_unlinks += [(name, d) for d in _parents_first(set(links) - kept, snapshot.manifests)]
        needed = needed_by_repo.setdefault(repo_id, set())
        for digest in kept:
            node = snapshot.manifests.get(digest)
            if node is not None:
                needed.update(node.blobs)
        needed_anywhere |= needed
    plan.manifest_deletes = sorted(d for d in snapshot.manifests if d not in kept_anywhere)

    still_linked: set[str] = set()
    for repo_id, blob_links in snapshot.blob_links.items():
        needed = needed_by_repo.get(repo_id, set())
        name = snapshot.repositories.get(repo_id)
        for digest, linked_at in sorted(blob_links.items()):
            blob = snapshot.blobs.get(digest)
            if name is None or digest in needed or linked_at >= cutoff or blob is None or blob.touched_at >= cutoff:
                still_linked.add(digest)
            else:
                plan.blob_unlinks.append((name, digest))
    for digest, blob in sorted(snapshot.blobs.items()):
        if digest not in still_linked and digest not in needed_anywhere and blob.touched_at < cutoff:
            plan.blob_deletes[digest] = blob.size
    return plan


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    raise AssertionError("unreachable")


class GarbageCollector:
    def __init__(
        self,
        store: GcStore,
        blobs: BlobStore,
        locks: Locks,
        grace_seconds: float,
        purger: UploadPurger | None = None,
    ):
        self._store = store
        self._blobs = blobs
        self._locks = locks
        self._grace = timedelta(seconds=grace_seconds)
        self._purger = purger

    async def job(self, parameters: Mapping[str, Any], journal: Journal) -> Mapping[str, Any]:
        """The `gc` job's handler."""
        return (await self.collect(GcOptions.from_parameters(parameters), journal)).to_dict()

    async def collect(
        self, options: GcOptions, journal: Journal | None = None, now: datetime | None = None
    ) -> GcResult:
        journal = journal or PlainJournal()
        result = GcResult(options.dry_run, options.delete_untagged)
        would = "would " if options.dry_run else ""
        # The cutoff is fixed before anything is read: whatever is touched after it survives.
        cutoff = (now or datetime.now(UTC)) - self._grace
        journal.info(
            f"{'dry run: ' if options.dry_run else ''}collecting what is older than"
            f" {cutoff:%Y-%m-%d %H:%M:%S} UTC and unreachable from tags"
            + (" (untagged manifests too)" if options.delete_untagged else "")
        )
        if self._purger is not None:
            purged = await self._purger.purge(journal, dry_run=options.dry_run, now=now)
            result.uploads_purged, result.staging_areas_purged = purged.sessions, purged.staging_areas
        await journal.checkpoint()
        snapshot = await self._store.snapshot()
        plan = mark(snapshot, cutoff, options.delete_untagged)
        journal.info(
            f"{len(plan.blob_deletes)} blobs and {len(plan.manifest_deletes)} manifests eligible for deletion;"
            f" {len(plan.manifest_unlinks)} manifest and {len(plan.blob_unlinks)} blob links to remove"
        )

        for repo, digest in plan.manifest_unlinks:
            await journal.checkpoint()
            if options.dry_run or await self._store.unlink_manifest(repo, digest, cutoff):
                result.manifests_unlinked += 1
                journal.info(f"{would}remove untagged manifest {repo}@{digest}")
        for digest in plan.manifest_deletes:
            await journal.checkpoint()
            if options.dry_run or await self._store.delete_manifest(digest):
                result.manifests_deleted += 1
                journal.info(f"{would}delete manifest {digest}")
        for repo, digest in plan.blob_unlinks:
            await journal.checkpoint()
            if options.dry_run or await self._store.unlink_blob(repo, digest, cutoff):
                result.blob_links_removed += 1
        if result.blob_links_removed:
            journal.info(f"{would}remove {result.blob_links_removed} unneeded blob links")
        for digest, size in plan.blob_deletes.items():
            await journal.checkpoint()
            if options.dry_run or await self._sweep_blob(digest, cutoff):
                result.blobs_deleted += 1
                result.bytes_freed += size
                journal.info(f"{would}delete blob {digest} ({size} bytes)")
        await self._sweep_orphans(snapshot, cutoff, options.dry_run, journal, result)

        journal.info(
            f"{'dry run: ' if options.dry_run else ''}{result.blobs_deleted + result.orphans_deleted} blobs and"
            f" {result.manifests_deleted} manifests {'would be ' if options.dry_run else ''}deleted;"
            f" {'would free' if options.dry_run else 'freed'} {_size(result.bytes_freed)}"
            f" ({result.bytes_freed} bytes)"
        )
        return result

    async def _sweep_blob(self, digest: str, cutoff: datetime) -> bool:
        async with self._locks.hold(f"blob:{digest}"):
            if not await self._store.delete_blob(digest, cutoff):
                return False
            await self._blobs.delete(Digest.parse(digest))
            return True

    async def _sweep_orphans(
        self, snapshot: GraphSnapshot, cutoff: datetime, dry_run: bool, journal: Journal, result: GcResult
    ) -> None:
        async for stored in self._blobs.list_blobs():
            await journal.checkpoint()
            digest = str(stored.digest)
            modified = stored.modified if stored.modified.tzinfo else stored.modified.replace(tzinfo=UTC)
            if digest in snapshot.blobs or modified >= cutoff:
                continue
            if dry_run:
                if await self._store.blob_known(digest):
                    continue
            else:
                async with self._locks.hold(f"blob:{digest}"):
                    # An upload holds this lock from publishing its bytes until its row is
                    # committed: content without a row now has none for good.
                    if await self._store.blob_known(digest):
                        continue
                    await self._blobs.delete(stored.digest)
            result.orphans_deleted += 1
            result.bytes_freed += stored.size
            journal.info(f"{'would delete' if dry_run else 'deleted'} orphan content {digest} ({stored.size} bytes)")
