"""GC's reads and conditional deletes, idle upload sessions, and the blobs scrub walks.

Concurrency on PostgreSQL (READ COMMITTED; see engine.py): a delete that undoes what a
push checks (a manifest's or blob's link to a repository) runs under that repository's
lock, as the push does, so its conditions see every push that came before it. Whatever
needs a blob to stay touches its row (`blobs.touched_at`), row-locking it; deletes that
depend on the blob being untouched lock or delete that row with "untouched since the
cutoff" in the condition, so they either wait for the toucher and see its new time, or
go first and the toucher's own checks see the result. GC holds one repository lock and
at most one blob row at a time, always in that order, as pushes do, so it can wait for a
push but never deadlock with one. SQLite runs one writer at a time, so there the same
statements are simply serialised.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, exists, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from portside.meta.sql.engine import SqlBase
from portside.meta.sql.scan_cleanup import forget_artifact_scans
from portside.meta.sql.schema import (
    blobs,
    manifest_refs,
    manifests,
    repo_blobs,
    repo_manifests,
    repositories,
    tags,
    uploads,
)
from portside.meta.upkeep import BlobInfo, GraphSnapshot, ManifestNode

__all__ = ["SqlUpkeep"]

_TOUCHED = func.coalesce(blobs.c.touched_at, blobs.c.created_at)


def _utc(when: datetime) -> datetime:
    """SQLite hands back naive UTC; PostgreSQL aware times."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _blob_needed_in_some_repo(digest: Any) -> Any:
    """A manifest linked to some repository references the blob."""
    return exists(
        select(1)
        .select_from(manifest_refs.join(repo_manifests, repo_manifests.c.digest == manifest_refs.c.parent))
        .where(manifest_refs.c.child == digest, manifest_refs.c.kind == "blob")
    )


class SqlUpkeep(SqlBase):
    """GcStore, UploadSweepStore and ScrubStore on SQLAlchemy Core."""

    # --- GC: mark -------------------------------------------------------------------------

    async def snapshot(self) -> GraphSnapshot:
        snap = GraphSnapshot()
        children: dict[str, list[str]] = {}
        needs: dict[str, list[str]] = {}
        async with self._read() as conn:
            if self._postgresql:
                # One snapshot for every statement below (SQLite's read transaction is one).
                await conn.execution_options(isolation_level="REPEATABLE READ")
            for repo in await conn.execute(select(repositories.c.id, repositories.c.name)):
                snap.repositories[repo.id] = repo.name
            for row in await conn.execute(
                select(repo_manifests.c.repo_id, repo_manifests.c.digest, repo_manifests.c.pushed_at)
            ):
                snap.manifest_links.setdefault(row.repo_id, {})[row.digest] = _utc(row.pushed_at)
            for tag in await conn.execute(select(tags.c.repo_id, tags.c.digest)):
                snap.tagged.setdefault(tag.repo_id, set()).add(tag.digest)
            for ref in await conn.execute(select(manifest_refs.c.parent, manifest_refs.c.child, manifest_refs.c.kind)):
                (children if ref.kind == "manifest" else needs).setdefault(ref.parent, []).append(ref.child)
            for manifest in await conn.execute(select(manifests.c.digest, manifests.c.subject)):
                snap.manifests[manifest.digest] = ManifestNode(
                    manifest.subject, tuple(children.get(manifest.digest, ())), tuple(needs.get(manifest.digest, ()))
                )
            for link in await conn.execute(select(repo_blobs.c.repo_id, repo_blobs.c.digest, repo_blobs.c.created_at)):
                snap.blob_links.setdefault(link.repo_id, {})[link.digest] = _utc(link.created_at)
            for blob in await conn.execute(select(blobs.c.digest, blobs.c.size, _TOUCHED.label("touched"))):
                snap.blobs[blob.digest] = BlobInfo(blob.size, _utc(blob.touched))
        return snap

    # --- GC: sweep ------------------------------------------------------------------------

    async def _repo_id(self, conn: AsyncConnection, repo: str) -> int | None:
        return (await conn.execute(select(repositories.c.id).where(repositories.c.name == repo))).scalar()

    async def unlink_manifest(self, repo: str, digest: str, cutoff: datetime) -> bool:
        parent = repo_manifests.alias("parent_link")
        async with self._write() as conn:
            # Under the repository's lock, as every push, so the conditions below see any
            # push into it (re-tagging this, or an index now naming it) that came first.
            await self._lock_repository(conn, repo)
            repo_id = await self._repo_id(conn, repo)
            if repo_id is None:
                return False
            tagged = exists(select(1).where(tags.c.repo_id == repo_id, tags.c.digest == digest))
            in_index = exists(
                select(1)
                .select_from(manifest_refs.join(parent, parent.c.digest == manifest_refs.c.parent))
                .where(
                    parent.c.repo_id == repo_id,
                    manifest_refs.c.child == digest,
                    manifest_refs.c.kind == "manifest",
                    manifest_refs.c.parent != digest,
                )
            )
            subject_tagged = exists(
                select(1)
                .select_from(manifests.join(tags, tags.c.digest == manifests.c.subject))
                .where(manifests.c.digest == digest, tags.c.repo_id == repo_id)
            )
            result = await conn.execute(
                delete(repo_manifests).where(
                    repo_manifests.c.repo_id == repo_id,
                    repo_manifests.c.digest == digest,
                    repo_manifests.c.pushed_at < cutoff,
                    ~tagged,
                    ~in_index,
                    ~subject_tagged,
                )
            )
            if result.rowcount > 0:
                await forget_artifact_scans(conn, repo, digest)
            return result.rowcount > 0

    async def delete_manifest(self, digest: str) -> bool:
        linked = exists(select(1).where(repo_manifests.c.digest == digest))
        try:
            async with self._write(notify=False) as conn:
                result = await conn.execute(delete(manifests).where(manifests.c.digest == digest, ~linked))
                return result.rowcount > 0
        except IntegrityError:
            return False  # linked again by a push that committed meanwhile

    async def unlink_blob(self, repo: str, digest: str, cutoff: datetime) -> bool:
        async with self._write() as conn:  # notifies: blob links are cached
            # The repository's lock first (pushes into it check their blobs under it), then
            # the blob's row, untouched since the cutoff: an upload linking it meanwhile
            # either holds the row (we wait, then see its touch) or waits for us.
            await self._lock_repository(conn, repo)
            repo_id = await self._repo_id(conn, repo)
            if repo_id is None:
                return False
            untouched = await conn.execute(
                select(blobs.c.digest).where(blobs.c.digest == digest, _TOUCHED < cutoff).with_for_update()
            )
            if untouched.first() is None:
                return False
            needed = exists(
                select(1)
                .select_from(manifest_refs.join(repo_manifests, repo_manifests.c.digest == manifest_refs.c.parent))
                .where(
                    manifest_refs.c.child == digest,
                    manifest_refs.c.kind == "blob",
                    repo_manifests.c.repo_id == repo_id,
                )
            )
            result = await conn.execute(
                delete(repo_blobs).where(
                    repo_blobs.c.repo_id == repo_id,
                    repo_blobs.c.digest == digest,
                    repo_blobs.c.created_at < cutoff,
                    ~needed,
                )
            )
            return result.rowcount > 0

    async def delete_blob(self, digest: str, cutoff: datetime) -> bool:
        linked = exists(select(1).where(repo_blobs.c.digest == digest))
        statement = delete(blobs).where(
            blobs.c.digest == digest,
            _TOUCHED < cutoff,
            ~linked,
            ~_blob_needed_in_some_repo(digest),
        )
        try:
            async with self._write(notify=False) as conn:
                return (await conn.execute(statement)).rowcount > 0
        except IntegrityError:
            return False  # linked by a push that committed meanwhile

    async def blob_known(self, digest: str) -> bool:
        async with self._read() as conn:
            return (await conn.execute(select(blobs.c.digest).where(blobs.c.digest == digest))).first() is not None

    # --- upload sessions ------------------------------------------------------------------

    async def idle_uploads(self, before: datetime) -> list[str]:
        async with self._read() as conn:
            return list((await conn.execute(select(uploads.c.id).where(uploads.c.updated_at < before))).scalars())

    async def delete_idle_upload(self, upload_id: str, before: datetime) -> bool:
        async with self._write(notify=False) as conn:
            result = await conn.execute(delete(uploads).where(uploads.c.id == upload_id, uploads.c.updated_at < before))
            return result.rowcount > 0

    async def existing_uploads(self, upload_ids: Collection[str]) -> set[str]:
        found: set[str] = set()
        ids = list(upload_ids)
        async with self._read() as conn:
            for start in range(0, len(ids), 500):
                batch = ids[start : start + 500]
                live = select(uploads.c.id).where(uploads.c.id.in_(batch), uploads.c.ended == false())
                found.update((await conn.execute(live)).scalars())
        return found

    # --- scrub ----------------------------------------------------------------------------

    async def blob_rows(self, after: str | None, limit: int) -> list[tuple[str, int]]:
        query = select(blobs.c.digest, blobs.c.size).order_by(blobs.c.digest).limit(limit)
        if after is not None:
            query = query.where(blobs.c.digest > after)
        async with self._read() as conn:
            return [(row.digest, row.size) for row in await conn.execute(query)]
