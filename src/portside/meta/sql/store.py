"""The registry's metadata on SQLAlchemy Core: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from portside.errors import Denied, ManifestBlobUnknown, ManifestInvalid
from portside.meta.sql.engine import SqlBase, now
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
    """Repositories, blobs, manifests, tags and uploads."""

    # --- repositories and blobs -------------------------------------------------------

    async def _repo_id(self, conn: AsyncConnection, repo: str) -> int | None:
        return (await conn.execute(select(repositories.c.id).where(repositories.c.name == repo))).scalar()

    async def _ensure_repo(self, conn: AsyncConnection, repo: str) -> int:
        await conn.execute(self._insert(repositories).values(name=repo, created_at=now()).on_conflict_do_nothing())
        repo_id = await self._repo_id(conn, repo)
        assert repo_id is not None
        return repo_id

    async def _link(self, conn: AsyncConnection, repo: str, digest: Digest, size: int) -> None:
        when = now()
        await conn.execute(
            self._insert(blobs).values(digest=str(digest), size=size, created_at=when).on_conflict_do_nothing()
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

    async def link_blob(self, repo: str, digest: Digest, size: int) -> None:
        async with self._write() as conn:
            await self._link(conn, repo, digest, size)

    async def unlink_blob(self, repo: str, digest: Digest) -> bool:
        async with self._write() as conn:
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

    async def put_manifest(self, repo: str, manifest: Manifest, tag: str | None) -> None:
        digest = str(manifest.digest)
        needed_blobs = {str(d.digest): d for d in manifest.blobs if not mt.is_nondistributable(d.media_type)}
        needed_children = {str(d.digest) for d in manifest.children}
        when = now()
        async with self._write() as conn:
            repo_id = await self._ensure_repo(conn, repo)
            if needed_blobs:
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
                .on_conflict_do_nothing()
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

    async def delete_manifest(self, repo: str, digest: Digest) -> bool:
        async with self._write() as conn:
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
        async with self._write() as conn:
            ids = {repo: await self._repo_id(conn, repo) for repo in counts}
            for repo, count in counts.items():
                if ids[repo] is not None:
                    await conn.execute(
                        update(repositories)
                        .where(repositories.c.id == ids[repo])
                        .values(pull_count=repositories.c.pull_count + count)
                    )
            for (repo, manifest), when in latest.items():
                if ids[repo] is not None:
                    await conn.execute(
                        update(repo_manifests)
                        .where(repo_manifests.c.repo_id == ids[repo], repo_manifests.c.digest == manifest)
                        .values(pulled_at=when)
                    )

    # --- uploads ------------------------------------------------------------------------

    async def create_upload(self, upload_id: str, repo: str) -> UploadRecord:
        when = now()
        async with self._write() as conn:
            await conn.execute(
                uploads.insert().values(id=upload_id, repository=repo, size=0, started_at=when, updated_at=when)
            )
        return UploadRecord(upload_id, repo, 0, when)

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        async with self._read() as conn:
            row = (await conn.execute(select(uploads).where(uploads.c.id == upload_id))).first()
        if row is None:
            return None
        return UploadRecord(row.id, row.repository, row.size, row.started_at)

    async def set_upload_size(self, upload_id: str, size: int) -> None:
        async with self._write() as conn:
            await conn.execute(update(uploads).where(uploads.c.id == upload_id).values(size=size, updated_at=now()))

    async def delete_upload(self, upload_id: str) -> None:
        async with self._write() as conn:
            await conn.execute(delete(uploads).where(uploads.c.id == upload_id))

    async def complete_upload(self, upload_id: str, repo: str, digest: Digest, size: int) -> None:
        async with self._write() as conn:
            await self._link(conn, repo, digest, size)
            await conn.execute(delete(uploads).where(uploads.c.id == upload_id))
