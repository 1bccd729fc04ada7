"""The registry's metadata on SQLAlchemy Core: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from portside.errors import Denied, ManifestBlobUnknown, ManifestInvalid
from portside.meta.quotas import UNLIMITED
from portside.meta.sql.engine import SqlBase, now, retry_transient, utc
from portside.meta.sql.quotas import check_storage
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
from portside.meta.stores import ManifestRecord, UploadRecord
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.oci.manifest import Descriptor, Manifest

__all__ = ["SqlDatabase"]


class SqlDatabase(SqlBase):
    """Repositories, blobs, manifests, tags and uploads.

    Writes that cannot change what `get_manifest` answers (blob links, uploads, pull
    counts) commit with `notify=False`, so they leave other instances' manifest caches warm.

    Writes that add content to a project (blob links, manifests) check its storage quota in
    their own transaction first (`sql/quotas.py`); `default_storage_limit` is the limit of
    a project that reaches its first push without a quota row.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        after_commit: Callable[[], Awaitable[None]] | None = None,
        default_storage_limit: int = UNLIMITED,
    ):
        super().__init__(engine, after_commit=after_commit)
        self._default_storage_limit = default_storage_limit

    # --- repositories and blobs -------------------------------------------------------

    async def _repo_id(self, conn: AsyncConnection, repo: str) -> int | None:
        return (await conn.execute(select(repositories.c.id).where(repositories.c.name == repo))).scalar()

    async def _ensure_repo(self, conn: AsyncConnection, repo: str) -> int:
        # FOR KEY SHARE: a concurrent delete_repository waits for this transaction instead
        # of taking the row from under the links it is about to insert (a foreign key
        # violation on PostgreSQL). Looking before inserting also spares PostgreSQL a
        # sequence number on every push into an existing repository.
        locked = select(repositories.c.id).where(repositories.c.name == repo).with_for_update(read=True, key_share=True)
        while True:  # again only if a concurrent delete won between the two statements
            repo_id: int | None = (await conn.execute(locked)).scalar()
            if repo_id is not None:
                return repo_id
            # A concurrent creator's row makes this do nothing; the next look finds it.
            await conn.execute(
                self._insert(repositories).values(name=repo, created_at=now()).on_conflict_do_nothing()
            )

    async def _link(self, conn: AsyncConnection, repo: str, digest: Digest, size: int) -> None:
        when = now()
        # Touch the blob (row-locking it on PostgreSQL): GC's sweep re-checks touched_at
        # under that lock, so it either waits for this link or goes first and we re-insert.
        await conn.execute(
            self._insert(blobs)
            .values(digest=str(digest), size=size, created_at=when, touched_at=when)
            .on_conflict_do_update(index_elements=[blobs.c.digest], set_={"touched_at": when})
        )
        repo_id = await self._ensure_repo(conn, repo)
        await conn.execute(
            self._insert(repo_blobs)
            .values(repo_id=repo_id, digest=str(digest), created_at=when)
            .on_conflict_do_nothing()
        )

    async def blob_size(self, repo: str, digest: Digest) -> int | None:
        query = (
            select(blobs.c.size)
            .select_from(repo_blobs.join(blobs, blobs.c.digest == repo_blobs.c.digest))
            .join(repositories, repositories.c.id == repo_blobs.c.repo_id)
            .where(repositories.c.name == repo, repo_blobs.c.digest == str(digest))
        )
        async with self._read() as conn:
            return (await conn.execute(query)).scalar()

    async def _needed_by(self, conn: AsyncConnection, repo_id: int, digest: Digest, kind: str) -> str | None:
        """A manifest of the repository that needs `digest` (as a blob, or as an index child)."""
        query = (
            select(manifest_refs.c.parent)
            .join(repo_manifests, repo_manifests.c.digest == manifest_refs.c.parent)
            .where(
                repo_manifests.c.repo_id == repo_id,
                manifest_refs.c.child == str(digest),
                manifest_refs.c.kind == kind,
                manifest_refs.c.parent != str(digest),
            )
            .limit(1)
        )
        return (await conn.execute(query)).scalar()

    @retry_transient
    async def link_blob(self, repo: str, digest: Digest, size: int) -> None:
        async with self._write(notify=False) as conn:
            await check_storage(conn, repo, str(digest), size, self._default_storage_limit)
            await self._link(conn, repo, digest, size)

    @retry_transient
    async def unlink_blob(self, repo: str, digest: Digest) -> bool:
        # Notifies: instances cache which blobs a repository holds (links only ever added
        # need not, as absences are never cached).
        async with self._write() as conn:
            # Under the repository's lock: a put_manifest that needs the blob either
            # committed before (and the check below sees it) or waits, then finds it gone.
            await self._lock_repository(conn, repo)
            repo_id = await self._repo_id(conn, repo)
            if repo_id is None:
                return False
            needed_by = await self._needed_by(conn, repo_id, digest, "blob")
            if needed_by is not None:
                raise Denied(
                    f"blob {digest} is used by manifest {needed_by} in {repo}; delete the manifest first",
                    detail={"digest": str(digest), "manifest": needed_by},
                )
            result = await conn.execute(
                delete(repo_blobs).where(repo_blobs.c.repo_id == repo_id, repo_blobs.c.digest == str(digest))
            )
            return result.rowcount > 0

    # --- manifests and tags -------------------------------------------------------------

    @retry_transient
    async def put_manifest(self, repo: str, manifest: Manifest, tag: str | None) -> None:
        digest = str(manifest.digest)
        needed_blobs = {str(d.digest): d for d in manifest.blobs if not mt.is_nondistributable(d.media_type)}
        needed_children = {str(d.digest) for d in manifest.children}
        when = now()
        async with self._write() as conn:
            # The checks below hold until commit only under the repository's lock, which
            # unlink_blob and delete_manifest take too: without it PostgreSQL would let
            # one of them remove a blob or child after the check and before this commits.
            await self._lock_repository(conn, repo)
            repo_id = await self._ensure_repo(conn, repo)
            # The quota row is locked before any blob row, in the order blob links take them,
            # so a push and a link into one project never wait for each other in a circle.
            await check_storage(conn, repo, digest, len(manifest.payload), self._default_storage_limit)
            if needed_blobs:
                # Touch what this manifest needs (GC's grace counts from here).
                await conn.execute(
                    update(blobs).where(blobs.c.digest.in_(sorted(needed_blobs))).values(touched_at=when)
                )
                rows = await conn.execute(
                    select(blobs.c.digest, blobs.c.size)
                    .join(repo_blobs, repo_blobs.c.digest == blobs.c.digest)
                    .where(repo_blobs.c.repo_id == repo_id, blobs.c.digest.in_(needed_blobs))
                )
                present = {row.digest: row.size for row in rows}
                for blob_digest, descriptor in needed_blobs.items():
                    if blob_digest not in present:
                        raise ManifestBlobUnknown(
                            f"blob {blob_digest} is not in repository {repo}", detail={"digest": blob_digest}
                        )
                    if present[blob_digest] != descriptor.size:
                        raise ManifestInvalid(
                            f"descriptor of {blob_digest} says {descriptor.size} bytes; the blob has"
                            f" {present[blob_digest]}",
                            detail={"digest": blob_digest},
                        )
            if needed_children:
                rows = await conn.execute(
                    select(manifests.c.digest, manifests.c.size)
                    .join(repo_manifests, repo_manifests.c.digest == manifests.c.digest)
                    .where(repo_manifests.c.repo_id == repo_id, manifests.c.digest.in_(needed_children))
                )
                present = {row.digest: row.size for row in rows}
                for child in manifest.children:
                    if str(child.digest) not in present:
                        raise ManifestBlobUnknown(
                            f"manifest {child.digest} is not in repository {repo}",
                            detail={"digest": str(child.digest)},
                        )
            inserted = await conn.execute(
                self._insert(manifests)
                .values(
                    digest=digest,
                    media_type=manifest.media_type,
                    size=len(manifest.payload),
                    payload=manifest.payload,
                    artifact_type=manifest.artifact_type,
                    subject=str(manifest.subject.digest) if manifest.subject else None,
                    annotations=json.dumps(manifest.annotations) if manifest.annotations else None,
                    created_at=when,
                )
                # An existing row is locked (not skipped) so GC, which deletes manifests no
                # repository links, waits for the link below instead of deleting it first.
                .on_conflict_do_update(index_elements=[manifests.c.digest], set_={"size": manifests.c.size})
            )
            if inserted.rowcount:
                refs = [{"parent": digest, "child": d, "kind": "blob"} for d in needed_blobs]
                refs += [{"parent": digest, "child": d, "kind": "manifest"} for d in needed_children]
                if refs:
                    await conn.execute(self._insert(manifest_refs).on_conflict_do_nothing(), refs)
            await conn.execute(
                self._insert(repo_manifests)
                .values(repo_id=repo_id, digest=digest, pushed_at=when)
                .on_conflict_do_nothing()
            )
            if tag is not None:
                upsert = self._insert(tags).values(repo_id=repo_id, name=tag, digest=digest, updated_at=when)
                await conn.execute(
                    upsert.on_conflict_do_update(
                        index_elements=[tags.c.repo_id, tags.c.name],
                        set_={"digest": digest, "updated_at": when},
                    )
                )

    async def get_manifest(self, repo: str, reference: str | Digest) -> ManifestRecord | None:
        columns = (manifests.c.digest, manifests.c.media_type, manifests.c.payload)
        joined = repositories.join(repo_manifests, repo_manifests.c.repo_id == repositories.c.id).join(
            manifests, manifests.c.digest == repo_manifests.c.digest
        )
        if isinstance(reference, Digest):
            query = (
                select(*columns)
                .select_from(joined)
                .where(repositories.c.name == repo, repo_manifests.c.digest == str(reference))
            )
        else:
            query = (
                select(*columns)
                .select_from(repositories.join(tags, tags.c.repo_id == repositories.c.id))
                .join(manifests, manifests.c.digest == tags.c.digest)
                .where(repositories.c.name == repo, tags.c.name == reference)
            )
        async with self._read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        return ManifestRecord(Digest.parse(row.digest), row.media_type, row.payload)

    @retry_transient
    async def delete_manifest(self, repo: str, digest: Digest) -> bool:
        async with self._write() as conn:
            # The repository's lock keeps an index that needs this manifest from being
            # pushed between the check below and the delete (see put_manifest).
            await self._lock_repository(conn, repo)
            repo_id = await self._repo_id(conn, repo)
            if repo_id is None:
                return False
            parent = await self._needed_by(conn, repo_id, digest, "manifest")
            if parent is not None:
                raise Denied(
                    f"manifest {digest} is a child of index {parent} in {repo}; delete the index first",
                    detail={"digest": str(digest), "index": parent},
                )
            await conn.execute(delete(tags).where(tags.c.repo_id == repo_id, tags.c.digest == str(digest)))
            result = await conn.execute(
                delete(repo_manifests).where(
                    repo_manifests.c.repo_id == repo_id, repo_manifests.c.digest == str(digest)
                )
            )
            return result.rowcount > 0

    async def delete_tag(self, repo: str, tag: str) -> bool:
        async with self._write() as conn:
            repo_id = await self._repo_id(conn, repo)
            if repo_id is None:
                return False
            result = await conn.execute(delete(tags).where(tags.c.repo_id == repo_id, tags.c.name == tag))
            return result.rowcount > 0

    async def list_tags(self, repo: str, last: str | None, limit: int | None) -> list[str] | None:
        async with self._read() as conn:
            repo_id = await self._repo_id(conn, repo)
            if repo_id is None:
                return None
            query = select(tags.c.name).where(tags.c.repo_id == repo_id)
            return await self._page(conn, query, tags.c.name, last, limit)

    async def list_repositories(self, last: str | None, limit: int | None) -> list[str]:
        async with self._read() as conn:
            return await self._page(conn, select(repositories.c.name), repositories.c.name, last, limit)

    async def _page(
        self, conn: AsyncConnection, query: Any, column: Any, last: str | None, limit: int | None
    ) -> list[str]:
        # Lexical byte order, whatever the database's collation, as the spec's pagination expects.
        ordered = column.collate("C") if self.engine.dialect.name == "postgresql" else column
        if last:
            query = query.where(ordered > last)
        query = query.order_by(ordered)
        if limit is not None:
            query = query.limit(limit)
        return list((await conn.execute(query)).scalars())

    async def referrers(self, repo: str, subject: Digest, artifact_type: str | None) -> list[Descriptor]:
        query = (
            select(
                manifests.c.digest,
                manifests.c.media_type,
                manifests.c.size,
                manifests.c.artifact_type,
                manifests.c.annotations,
            )
            .select_from(repositories.join(repo_manifests, repo_manifests.c.repo_id == repositories.c.id))
            .join(manifests, manifests.c.digest == repo_manifests.c.digest)
            .where(repositories.c.name == repo, manifests.c.subject == str(subject))
            .order_by(repo_manifests.c.pushed_at, manifests.c.digest)
        )
        if artifact_type is not None:
            query = query.where(manifests.c.artifact_type == artifact_type)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [
            Descriptor(
                row.media_type,
                Digest.parse(row.digest),
                row.size,
                artifact_type=row.artifact_type,
                annotations=json.loads(row.annotations) if row.annotations else None,
            )
            for row in rows
        ]

    @retry_transient
    async def record_pulls(self, pulls: Sequence[tuple[str, Digest, datetime]]) -> None:
        # A busy registry pulls the same few manifests thousands of times a second: add the
        # pulls up first, then write one row per repository and per manifest.
        counts: dict[str, int] = {}
        latest: dict[tuple[str, str], datetime] = {}
        for repo, digest, when in pulls:
            counts[repo] = counts.get(repo, 0) + 1
            key = (repo, str(digest))
            if key not in latest or when > latest[key]:
                latest[key] = when
        async with self._write(notify=False) as conn:
            rows = await conn.execute(
                select(repositories.c.name, repositories.c.id).where(repositories.c.name.in_(counts))
            )
            ids: dict[str, int] = {row.name: row.id for row in rows}
            # Rows are updated in one order, by key, in every batch: two instances writing
            # overlapping batches then queue on the first row they share instead of each
            # holding a row the other waits for (a deadlock on PostgreSQL).
            pull_counts = sorted((ids[repo], count) for repo, count in counts.items() if repo in ids)
            if pull_counts:
                await conn.execute(
                    update(repositories)
                    .where(repositories.c.id == bindparam("repo_id_"))
                    .values(pull_count=repositories.c.pull_count + bindparam("count_")),
                    [{"repo_id_": repo_id, "count_": count} for repo_id, count in pull_counts],
                )
            pull_times = sorted(
                (ids[repo], manifest, utc(when)) for (repo, manifest), when in latest.items() if repo in ids
            )
            if pull_times:
                # Never backwards: another instance may have written a later pull first.
                await conn.execute(
                    update(repo_manifests)
                    .where(
                        repo_manifests.c.repo_id == bindparam("repo_id_"),
                        repo_manifests.c.digest == bindparam("digest_"),
                        or_(repo_manifests.c.pulled_at.is_(None), repo_manifests.c.pulled_at < bindparam("when_")),
                    )
                    .values(pulled_at=bindparam("when_")),
                    [{"repo_id_": r, "digest_": d, "when_": w} for r, d, w in pull_times],
                )

    # --- uploads ------------------------------------------------------------------------

    async def create_upload(self, upload_id: str, repo: str) -> UploadRecord:
        when = now()
        async with self._write(notify=False) as conn:
            await conn.execute(
                uploads.insert().values(id=upload_id, repository=repo, size=0, started_at=when, updated_at=when)
            )
        return UploadRecord(upload_id, repo, 0, when)

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(uploads).where(uploads.c.id == upload_id))).first()
        if row is None:
            return None
        return UploadRecord(row.id, row.repository, row.size, utc(row.started_at), row.state)

    async def set_upload_size(self, upload_id: str, size: int, state: bytes | None) -> None:
        async with self._write(notify=False) as conn:
            await conn.execute(
                update(uploads).where(uploads.c.id == upload_id).values(size=size, state=state, updated_at=now())
            )

    async def delete_upload(self, upload_id: str) -> None:
        async with self._write(notify=False) as conn:
            await conn.execute(delete(uploads).where(uploads.c.id == upload_id))

    @retry_transient
    async def complete_upload(self, upload_id: str, repo: str, digest: Digest, size: int) -> None:
        async with self._write(notify=False) as conn:
            # Refused: nothing is linked and the session stays (a retry after the limit is
            # raised completes it); the published bytes wait for GC or that retry.
            await check_storage(conn, repo, str(digest), size, self._default_storage_limit)
            await self._link(conn, repo, digest, size)
            await conn.execute(delete(uploads).where(uploads.c.id == upload_id))
