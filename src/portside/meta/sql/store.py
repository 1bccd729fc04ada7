"""The registry's metadata on SQLAlchemy Core: SQLite (WAL) by default, PostgreSQL by URL."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Select, bindparam, delete, false, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from portside.errors import Denied, ManifestBlobUnknown, ManifestInvalid
from portside.meta.quotas import UNLIMITED
from portside.meta.sql.direct import AlchemyTx, Tx
from portside.meta.sql.engine import SqlBase, now, retry_transient, utc
from portside.meta.sql.quotas import check_project, check_storage
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
from portside.meta.stores import ManifestRecord, UploadRecord
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.oci.manifest import Descriptor, Manifest

__all__ = ["SqlDatabase", "referrers_query", "referrer_descriptor"]


class _Statements:
    """The statements of pushes, pulls and uploads, built once with bind parameters.

    Building a Core statement per call (and SQLAlchemy deriving its cache key from the
    new object) cost about as much again as running it: 130 against 62 µs per SELECT on
    SQLite, measured. These run on every request of a push, so they are built here, once
    per store, for its dialect's INSERT … ON CONFLICT; on SQLite they are also compiled
    only once (direct.py)."""

    def __init__(self, insert: Callable[..., Any]):
        digest_: BindParameter[Any] = bindparam("digest_")
        repo_id_: BindParameter[Any] = bindparam("repo_id_")
        when_: BindParameter[Any] = bindparam("when_")

        self.repo_id = select(repositories.c.id).where(repositories.c.name == bindparam("repo_"))
        # FOR KEY SHARE: see _ensure_repo.
        self.repo_id_locked = self.repo_id.with_for_update(read=True, key_share=True)
        self.add_repo = insert(repositories).on_conflict_do_nothing()

        touch = insert(blobs).values(digest=digest_, size=bindparam("size_"), created_at=when_, touched_at=when_)
        self.touch_blob = touch.on_conflict_do_update(
            index_elements=[blobs.c.digest], set_={"touched_at": touch.excluded.touched_at}
        )
        self.link_blob = (
            insert(repo_blobs).values(repo_id=repo_id_, digest=digest_, created_at=when_).on_conflict_do_nothing()
        )
        self.blob_size = (
            select(blobs.c.size)
            .select_from(repo_blobs.join(blobs, blobs.c.digest == repo_blobs.c.digest))
            .join(repositories, repositories.c.id == repo_blobs.c.repo_id)
            .where(repositories.c.name == bindparam("repo_"), repo_blobs.c.digest == digest_)
        )

        needed: BindParameter[Any] = bindparam("digests_", expanding=True)
        self.touch_blobs = update(blobs).where(blobs.c.digest.in_(needed)).values(touched_at=when_)
        self.linked_blobs = (
            select(blobs.c.digest, blobs.c.size)
            .join(repo_blobs, repo_blobs.c.digest == blobs.c.digest)
            .where(repo_blobs.c.repo_id == repo_id_, blobs.c.digest.in_(needed))
        )
        self.linked_manifests = (
            select(manifests.c.digest, manifests.c.size)
            .join(repo_manifests, repo_manifests.c.digest == manifests.c.digest)
            .where(repo_manifests.c.repo_id == repo_id_, manifests.c.digest.in_(needed))
        )
        # An existing row is locked (not skipped) so GC, which deletes manifests no
        # repository links, waits for the link that follows instead of deleting it first.
        self.add_manifest = insert(manifests).on_conflict_do_update(
            index_elements=[manifests.c.digest], set_={"size": manifests.c.size}
        )
        self.add_refs = insert(manifest_refs).on_conflict_do_nothing()
        self.link_manifest = (
            insert(repo_manifests).values(repo_id=repo_id_, digest=digest_, pushed_at=when_).on_conflict_do_nothing()
        )
        tag = insert(tags).values(repo_id=repo_id_, name=bindparam("tag_"), digest=digest_, updated_at=when_)
        self.set_tag = tag.on_conflict_do_update(
            index_elements=[tags.c.repo_id, tags.c.name],
            set_={"digest": tag.excluded.digest, "updated_at": tag.excluded.updated_at},
        )

        manifest_columns = (manifests.c.digest, manifests.c.media_type, manifests.c.payload)
        self.manifest_by_digest = (
            select(*manifest_columns)
            .select_from(repositories.join(repo_manifests, repo_manifests.c.repo_id == repositories.c.id))
            .join(manifests, manifests.c.digest == repo_manifests.c.digest)
            .where(repositories.c.name == bindparam("repo_"), repo_manifests.c.digest == digest_)
        )
        self.manifest_by_tag = (
            select(*manifest_columns)
            .select_from(repositories.join(tags, tags.c.repo_id == repositories.c.id))
            .join(manifests, manifests.c.digest == tags.c.digest)
            .where(repositories.c.name == bindparam("repo_"), tags.c.name == bindparam("tag_"))
        )

        upload_id_: BindParameter[Any] = bindparam("upload_id_")
        self.upload = select(
            uploads.c.id, uploads.c.repository, uploads.c.size, uploads.c.started_at, uploads.c.state, uploads.c.ended
        ).where(uploads.c.id == upload_id_)
        save = insert(uploads).values(ended=False)
        self.save_upload = save.on_conflict_do_update(
            index_elements=[uploads.c.id],
            set_={"size": save.excluded.size, "state": save.excluded.state, "updated_at": save.excluded.updated_at},
            where=uploads.c.ended == false(),
        )
        end = insert(uploads).values(size=0, state=None, ended=True)
        self.end_upload = end.on_conflict_do_update(
            index_elements=[uploads.c.id],
            set_={"ended": True, "state": None, "updated_at": end.excluded.updated_at},
        )
        self.delete_upload = delete(uploads).where(uploads.c.id == upload_id_)


def _referrers_statement(typed: bool) -> Select[Any]:
    pushed = (
        select(repo_manifests.c.pushed_at)
        .join(repositories, repositories.c.id == repo_manifests.c.repo_id)
        .where(repositories.c.name == bindparam("repo_"), repo_manifests.c.digest == manifests.c.digest)
        .scalar_subquery()
    )
    found = select(
        manifests.c.digest,
        manifests.c.media_type,
        manifests.c.size,
        manifests.c.artifact_type,
        manifests.c.annotations,
        manifests.c.subject,
        pushed.label("pushed_at"),
    ).where(manifests.c.subject.in_(bindparam("subjects_", expanding=True)))
    if typed:
        found = found.where(manifests.c.artifact_type == bindparam("artifact_type_"))
    linked = found.subquery()
    return select(linked).where(linked.c.pushed_at.is_not(None)).order_by(linked.c.pushed_at, linked.c.digest)


# Built once, as _Statements are: a read of referrers runs on every artifact page.
_REFERRERS = _referrers_statement(typed=False)
_REFERRERS_OF_TYPE = _referrers_statement(typed=True)


def referrers_query(
    repo: str, subjects: Sequence[str], artifact_type: str | None
) -> tuple[Select[Any], dict[str, Any]]:
    """The statement (and its parameters) that reads the manifests of `repo` whose subject
    is one of `subjects`, in push order, each with its subject.

    `manifests` is the one table the statement reads from, so its index on `subject` is
    the one way in, on either database; the repository's link (and its push time) is a
    lookup by key for each manifest found. Joined to the repository's links instead,
    SQLite, which keeps no statistics to tell the two apart, started from the links and
    read every manifest of the repository to find the few with this subject."""
    params: dict[str, Any] = {"repo_": repo, "subjects_": list(subjects)}
    if artifact_type is None:
        return _REFERRERS, params
    return _REFERRERS_OF_TYPE, {**params, "artifact_type_": artifact_type}


def referrer_descriptor(row: Any) -> Descriptor:
    """The descriptor of a row of `referrers_query`."""
    return Descriptor(
        row.media_type,
        Digest.parse(row.digest),
        row.size,
        artifact_type=row.artifact_type,
        annotations=json.loads(row.annotations) if row.annotations else None,
    )


def _session_row(session: UploadRecord) -> dict[str, Any]:
    """The columns every write of an upload's row sets."""
    return {
        "id": session.upload_id,
        "repository": session.repository,
        "started_at": session.started_at,
        "updated_at": now(),
    }


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
        self._sql = _Statements(self._insert)

    # --- repositories and blobs -------------------------------------------------------

    async def _repo_id(self, conn: AsyncConnection, repo: str) -> int | None:
        return (await conn.execute(self._sql.repo_id, {"repo_": repo})).scalar()

    def _ensure_repo(self, tx: Tx, repo: str) -> int:
        # FOR KEY SHARE: a concurrent delete_repository waits for this transaction instead
        # of taking the row from under the links it is about to insert (a foreign key
        # violation on PostgreSQL). Looking before inserting also spares PostgreSQL a
        # sequence number on every push into an existing repository.
        while True:  # again only if a concurrent delete won between the two statements
            repo_id: int | None = tx.scalar(self._sql.repo_id_locked, {"repo_": repo})
            if repo_id is not None:
                return repo_id
            # A concurrent creator's row makes this do nothing; the next look finds it.
            tx.run(self._sql.add_repo, {"name": repo, "created_at": now()})

    def _link(self, tx: Tx, repo: str, digest: Digest, size: int, project_id: int | None) -> None:
        """Link the blob into `repo`, within the project's storage limit."""
        # Refused: nothing is linked (see check_storage).
        check_storage(tx, repo, str(digest), size, self._default_storage_limit, project_id)
        when = now()
        # Touch the blob (row-locking it on PostgreSQL): GC's sweep re-checks touched_at
        # under that lock, so it either waits for this link or goes first and we re-insert.
        tx.run(self._sql.touch_blob, {"digest_": str(digest), "size_": size, "when_": when})
        repo_id = self._ensure_repo(tx, repo)
        tx.run(self._sql.link_blob, {"repo_id_": repo_id, "digest_": str(digest), "when_": when})

    async def blob_size(self, repo: str, digest: Digest) -> int | None:
        return await self._read_tx(lambda tx: tx.scalar(self._sql.blob_size, {"repo_": repo, "digest_": str(digest)}))

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
    async def link_blob(self, repo: str, digest: Digest, size: int, project_id: int | None = None) -> None:
        await self._write_tx(self._link, repo, digest, size, project_id, notify=False)

    @staticmethod
    async def _check_project(conn: AsyncConnection, repo: str, project_id: int | None) -> None:
        if project_id is not None:
            await conn.run_sync(lambda sync: check_project(AlchemyTx(sync), repo, project_id))

    @retry_transient
    async def unlink_blob(self, repo: str, digest: Digest, project_id: int | None = None) -> bool:
        # Notifies: instances cache which blobs a repository holds (links only ever added
        # need not, as absences are never cached).
        async with self._write() as conn:
            # Under the repository's lock: a put_manifest that needs the blob either
            # committed before (and the check below sees it) or waits, then finds it gone.
            await self._lock_repository(conn, repo)
            await self._check_project(conn, repo, project_id)
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
    async def put_manifest(
        self,
        repo: str,
        manifest: Manifest,
        tag: str | None,
        project_id: int | None = None,
        *,
        children_may_follow: bool = False,
    ) -> None:
        await self._write_tx(self._put_manifest, repo, manifest, tag, project_id, children_may_follow)

    def _put_manifest(
        self, tx: Tx, repo: str, manifest: Manifest, tag: str | None, project_id: int | None, follow: bool = False
    ) -> None:
        digest = str(manifest.digest)
        needed_blobs = {str(d.digest): d for d in manifest.blobs if not mt.is_nondistributable(d.media_type)}
        needed_children = {str(d.digest) for d in manifest.children}
        # The references of an index whose children follow are recorded all the same (GC
        # keeps each child that arrives); only the check that they are here is left out.
        checked_children = set() if follow else needed_children
        when = now()
        # The checks below hold until commit only under the repository's lock, which
        # unlink_blob and delete_manifest take too: without it PostgreSQL would let
        # one of them remove a blob or child after the check and before this commits.
        self._lock_repository_in(tx, repo)
        repo_id = self._ensure_repo(tx, repo)
        # The quota row is locked before any blob row, in the order blob links take them,
        # so a push and a link into one project never wait for each other in a circle.
        check_storage(tx, repo, digest, len(manifest.payload), self._default_storage_limit, project_id)
        if needed_blobs:
            # Touch what this manifest needs (GC's grace counts from here).
            sorted_blobs = sorted(needed_blobs)
            tx.run(self._sql.touch_blobs, {"digests_": sorted_blobs, "when_": when})
            rows = tx.rows(self._sql.linked_blobs, {"repo_id_": repo_id, "digests_": sorted_blobs})
            present = {blob_digest: size for blob_digest, size in rows}
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
        if checked_children:
            rows = tx.rows(self._sql.linked_manifests, {"repo_id_": repo_id, "digests_": sorted(checked_children)})
            present = {child_digest: size for child_digest, size in rows}
            for child in manifest.children:
                if str(child.digest) not in present:
                    raise ManifestBlobUnknown(
                        f"manifest {child.digest} is not in repository {repo}",
                        detail={"digest": str(child.digest)},
                    )
        inserted = tx.run(
            self._sql.add_manifest,
            {
                "digest": digest,
                "media_type": manifest.media_type,
                "size": len(manifest.payload),
                "payload": manifest.payload,
                "artifact_type": manifest.artifact_type,
                "subject": str(manifest.subject.digest) if manifest.subject else None,
                "annotations": json.dumps(manifest.annotations) if manifest.annotations else None,
                "created_at": when,
            },
        )
        if inserted:
            refs = [{"parent": digest, "child": d, "kind": "blob"} for d in needed_blobs]
            refs += [{"parent": digest, "child": d, "kind": "manifest"} for d in needed_children]
            if refs:
                tx.run(self._sql.add_refs, refs)
        tx.run(self._sql.link_manifest, {"repo_id_": repo_id, "digest_": digest, "when_": when})
        if tag is not None:
            tx.run(self._sql.set_tag, {"repo_id_": repo_id, "tag_": tag, "digest_": digest, "when_": when})

    async def get_manifest(self, repo: str, reference: str | Digest) -> ManifestRecord | None:
        if isinstance(reference, Digest):
            query, params = self._sql.manifest_by_digest, {"repo_": repo, "digest_": str(reference)}
        else:
            query, params = self._sql.manifest_by_tag, {"repo_": repo, "tag_": reference}
        row = await self._read_tx(lambda tx: tx.first(query, params))
        if row is None:
            return None
        digest, media_type, payload = row
        return ManifestRecord(Digest.parse(digest), media_type, payload)

    @retry_transient
    async def delete_manifest(self, repo: str, digest: Digest, project_id: int | None = None) -> bool:
        async with self._write() as conn:
            # The repository's lock keeps an index that needs this manifest from being
            # pushed between the check below and the delete (see put_manifest).
            await self._lock_repository(conn, repo)
            await self._check_project(conn, repo, project_id)
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
            if result.rowcount > 0:
                await forget_artifact_scans(conn, repo, str(digest))
            return result.rowcount > 0

    async def delete_tag(self, repo: str, tag: str, project_id: int | None = None) -> bool:
        async with self._write() as conn:
            await self._check_project(conn, repo, project_id)
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

    async def manifests_holding(self, repo: str, blob: Digest, limit: int, kind: str = "blob") -> list[ManifestRecord]:
        query = (
            select(manifests.c.digest, manifests.c.media_type, manifests.c.payload)
            .select_from(
                manifest_refs.join(repo_manifests, repo_manifests.c.digest == manifest_refs.c.parent)
                .join(repositories, repositories.c.id == repo_manifests.c.repo_id)
                .join(manifests, manifests.c.digest == manifest_refs.c.parent)
            )
            .where(repositories.c.name == repo, manifest_refs.c.child == str(blob), manifest_refs.c.kind == kind)
            .order_by(manifests.c.digest)
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
        return [ManifestRecord(Digest.parse(row.digest), row.media_type, row.payload) for row in rows]

    async def referrers(self, repo: str, subject: Digest, artifact_type: str | None) -> list[Descriptor]:
        async with self._read() as conn:
            rows = (await conn.execute(*referrers_query(repo, [str(subject)], artifact_type))).all()
        return [referrer_descriptor(row) for row in rows]

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

    async def get_upload(self, upload_id: str) -> UploadRecord | None:
        row = await self._read_tx(lambda tx: tx.first(self._sql.upload, {"upload_id_": upload_id}))
        if row is None:
            return None
        upload_id, repository, size, started_at, state, ended = row
        return UploadRecord(upload_id, repository, size, utc(started_at), state, ended)

    async def save_upload(self, session: UploadRecord) -> None:
        await self._write_tx(self._save_upload, session, notify=False)

    def _save_upload(self, tx: Tx, session: UploadRecord) -> None:
        tx.run(self._sql.save_upload, {**_session_row(session), "size": session.size, "state": session.state})

    async def end_upload(self, session: UploadRecord) -> None:
        await self._write_tx(self._end_upload, session, notify=False)

    def _end_upload(self, tx: Tx, session: UploadRecord) -> None:
        tx.run(self._sql.end_upload, _session_row(session))

    @retry_transient
    async def complete_upload(
        self,
        session: UploadRecord,
        digest: Digest,
        size: int,
        *,
        tombstone: bool = True,
        project_id: int | None = None,
    ) -> None:
        await self._write_tx(self._complete_upload, session, digest, size, tombstone, project_id, notify=False)

    def _complete_upload(
        self, tx: Tx, session: UploadRecord, digest: Digest, size: int, tombstone: bool, project_id: int | None
    ) -> None:
        # Refused by the quota: nothing is linked and the session stays (a retry after the
        # limit is raised completes it); the published bytes wait for GC or that retry.
        self._link(tx, session.repository, digest, size, project_id)
        if tombstone:
            self._end_upload(tx, session)
        else:
            # No client knows the id, so none can come back with it; a row it may have
            # had (none, today) goes with it.
            tx.run(self._sql.delete_upload, {"upload_id_": session.upload_id})
