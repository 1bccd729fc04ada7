"""Repositories, artifacts and tags for the management API, on SQLAlchemy Core.

Reads only; every change that /v2 can also make (deleting manifests and tags, tagging)
goes through `RepoStore`, so both APIs keep one set of rules. Deleting a whole repository
and its description are the management API's own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, delete, exists, false, func, not_, or_, select, true, update
from sqlalchemy.ext.asyncio import AsyncConnection

from portside.meta.accounts import Page
from portside.meta.artifacts import ArtifactInfo, ChildReference, RepositoryInfo, TagInfo
from portside.meta.criteria import Criteria, Match
from portside.meta.sql.criteria import Fields, conditions, like_escape, ordering
from portside.meta.sql.engine import SqlBase, now, retry_transient, utc
from portside.meta.sql.schema import blobs, manifest_refs, manifests, repo_manifests, repositories, tags

__all__ = ["SqlArtifacts"]


def _is_child_in_repo(repo_id: Any, digest: Any) -> Any:
    """Whether `digest` is a child of an index linked to the same repository."""
    parent_link = repo_manifests.alias("parent_link")
    return exists(
        select(1)
        .select_from(manifest_refs.join(parent_link, parent_link.c.digest == manifest_refs.c.parent))
        .where(
            parent_link.c.repo_id == repo_id,
            manifest_refs.c.child == digest,
            manifest_refs.c.kind == "manifest",
            manifest_refs.c.parent != digest,
        )
    )


def _artifact_count() -> Any:
    return (
        select(func.count())
        .select_from(repo_manifests)
        .where(
            repo_manifests.c.repo_id == repositories.c.id,
            not_(_is_child_in_repo(repositories.c.id, repo_manifests.c.digest)),
        )
        .scalar_subquery()
    )


def _last_push() -> Any:
    return (
        select(func.max(repo_manifests.c.pushed_at))
        .where(repo_manifests.c.repo_id == repositories.c.id)
        .scalar_subquery()
    )


def _update_time() -> Any:
    return func.coalesce(repositories.c.updated_at, _last_push(), repositories.c.created_at)


def _repository_query() -> Select[Any]:
    return select(
        repositories.c.id,
        repositories.c.name,
        repositories.c.description,
        repositories.c.pull_count,
        repositories.c.created_at,
        _update_time().label("update_time"),
        _artifact_count().label("artifact_count"),
    )


def _repository(row: Any) -> RepositoryInfo:
    return RepositoryInfo(
        row.id,
        row.name,
        row.description or "",
        int(row.artifact_count or 0),
        int(row.pull_count or 0),
        utc(row.created_at),
        _when(row.update_time),
    )


def _when(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


class SqlArtifacts(SqlBase):
    # --- repositories ---------------------------------------------------------------------

    async def list_repositories(
        self, *, projects: Sequence[str] | None, criteria: Criteria, offset: int, limit: int
    ) -> Page[RepositoryInfo]:
        if projects is not None and not projects:
            return Page([], 0)
        query = _repository_query()
        if projects is not None:
            query = query.where(
                or_(
                    *(
                        or_(repositories.c.name.like(like_escape(p) + "/%", escape="\\"), repositories.c.name == p)
                        for p in projects
                    )
                )
            )
        fields: Fields = {
            "repository_id": repositories.c.id,
            "name": repositories.c.name,
            "description": repositories.c.description,
            "pull_count": repositories.c.pull_count,
            "artifact_count": _artifact_count(),
            "creation_time": repositories.c.created_at,
            "update_time": _update_time(),
        }
        query = query.where(*conditions(fields, criteria))
        order = ordering(fields, criteria, bytewise=self._bytewise)
        async with self._read() as conn:
            total = await self._count(conn, query)
            rows = await conn.execute(query.order_by(*order, repositories.c.id).offset(offset).limit(limit))
            return Page([_repository(r) for r in rows], total)

    async def get_repository(self, name: str) -> RepositoryInfo | None:
        async with self._read() as conn:
            row = (await conn.execute(_repository_query().where(repositories.c.name == name))).first()
        return _repository(row) if row else None

    async def storage_consumption(self) -> int:
        async with self._read() as conn:
            blob_bytes = (await conn.execute(select(func.coalesce(func.sum(blobs.c.size), 0)))).scalar()
            manifest_bytes = (await conn.execute(select(func.coalesce(func.sum(manifests.c.size), 0)))).scalar()
        return int(blob_bytes or 0) + int(manifest_bytes or 0)

    async def set_description(self, name: str, description: str) -> bool:
        async with self._write() as conn:
            result = await conn.execute(
                update(repositories)
                .where(repositories.c.name == name)
                .values(description=description, updated_at=now())
            )
            return result.rowcount > 0

    @retry_transient
    async def delete_repository(self, name: str) -> bool:
        # Links, manifests of the repository and tags go with it (ON DELETE CASCADE).
        async with self._write() as conn:
            result = await conn.execute(delete(repositories).where(repositories.c.name == name))
            return result.rowcount > 0

    # --- artifacts ------------------------------------------------------------------------

    async def list_artifacts(
        self, repo: str, criteria: Criteria, offset: int, limit: int, tag_limit: int | None = None
    ) -> Page[ArtifactInfo]:
        async with self._read() as conn:
            repo_id = await self._repo_id(conn, repo)
            if repo_id is None:
                return Page([], 0)
            fields: Fields = {
                "digest": repo_manifests.c.digest,
                "manifest_media_type": manifests.c.media_type,
                "artifact_type": manifests.c.artifact_type,
                "push_time": repo_manifests.c.pushed_at,
                "pull_time": repo_manifests.c.pulled_at,
                "tags": lambda match: _tags_match(repo_id, match),
            }
            query = self._artifact_query(repo_id).where(
                not_(_is_child_in_repo(repo_id, repo_manifests.c.digest)), *conditions(fields, criteria)
            )
            total = await self._count(conn, query)
            order = ordering(fields, criteria, bytewise=self._bytewise)
            rows = (
                await conn.execute(query.order_by(*order, repo_manifests.c.digest).offset(offset).limit(limit))
            ).all()
            return Page(await self._artifacts(conn, repo_id, repo, rows, tag_limit), total)

    async def list_tags(
        self, repo: str, digest: str | None, criteria: Criteria, offset: int, limit: int
    ) -> Page[TagInfo]:
        fields: Fields = {"name": tags.c.name, "push_time": tags.c.updated_at}
        query = (
            select(tags.c.name, tags.c.repo_id, tags.c.digest, tags.c.updated_at)
            .join(repositories, repositories.c.id == tags.c.repo_id)
            .where(repositories.c.name == repo, *conditions(fields, criteria))
        )
        if digest is not None:
            query = query.where(tags.c.digest == digest)
        order = ordering(fields, criteria, bytewise=self._bytewise)
        async with self._read() as conn:
            total = await self._count(conn, query)
            rows = await conn.execute(query.order_by(*order, self._bytewise(tags.c.name)).offset(offset).limit(limit))
            return Page([TagInfo(r.name, r.repo_id, r.digest, utc(r.updated_at)) for r in rows], total)

    async def get_artifact(self, repo: str, digest: str, tag_limit: int | None = None) -> ArtifactInfo | None:
        async with self._read() as conn:
            repo_id = await self._repo_id(conn, repo)
            if repo_id is None:
                return None
            rows = (await conn.execute(self._artifact_query(repo_id).where(repo_manifests.c.digest == digest))).all()
            found = await self._artifacts(conn, repo_id, repo, rows, tag_limit)
        return found[0] if found else None

    async def tag_digest(self, repo: str, tag: str) -> str | None:
        query = (
            select(tags.c.digest)
            .join(repositories, repositories.c.id == tags.c.repo_id)
            .where(repositories.c.name == repo, tags.c.name == tag)
        )
        async with self._read() as conn:
            return (await conn.execute(query)).scalar()

    # --- helpers --------------------------------------------------------------------------

    @staticmethod
    def _artifact_query(repo_id: int) -> Select[Any]:
        return (
            select(
                repo_manifests.c.digest,
                repo_manifests.c.pushed_at,
                repo_manifests.c.pulled_at,
                manifests.c.media_type,
                manifests.c.payload,
                manifests.c.artifact_type,
                manifests.c.annotations,
            )
            .select_from(repo_manifests.join(manifests, manifests.c.digest == repo_manifests.c.digest))
            .where(repo_manifests.c.repo_id == repo_id)
        )

    async def _artifacts(
        self, conn: AsyncConnection, repo_id: int, repo: str, rows: Sequence[Any], tag_limit: int | None = None
    ) -> list[ArtifactInfo]:
        if not rows:
            return []
        digests = [r.digest for r in rows]
        by_digest: dict[str, list[TagInfo]] = {d: [] for d in digests}
        for t in await self._tags_of(conn, repo_id, digests, tag_limit):
            by_digest[t.digest].append(TagInfo(t.name, repo_id, t.digest, utc(t.updated_at)))
        counts = {d: len(found) for d, found in by_digest.items()}
        # Only an artifact that filled its limit may have more tags than were read.
        filled = [d for d, found in by_digest.items() if tag_limit and len(found) == tag_limit]
        if filled:
            counted = select(tags.c.digest, func.count()).where(tags.c.repo_id == repo_id, tags.c.digest.in_(filled))
            for d, count in await conn.execute(counted.group_by(tags.c.digest)):
                counts[d] = int(count)
        sizes = await self._total_sizes(conn, set(digests))
        out = []
        for r in rows:
            document = _json(r.payload)
            config = document.get("config") if isinstance(document.get("config"), dict) else None
            out.append(
                ArtifactInfo(
                    repository_id=repo_id,
                    repository_name=repo,
                    digest=r.digest,
                    manifest_media_type=r.media_type,
                    config_media_type=str(config["mediaType"]) if config and "mediaType" in config else None,
                    artifact_type=r.artifact_type,
                    size=sizes.get(r.digest, 0),
                    push_time=utc(r.pushed_at),
                    pull_time=_when(r.pulled_at),
                    annotations=json.loads(r.annotations) if r.annotations else {},
                    tags=tuple(by_digest[r.digest]),
                    references=_children(document),
                    config_digest=str(config["digest"]) if config and isinstance(config.get("digest"), str) else None,
                    tag_count=counts[r.digest],
                )
            )
        return out

    async def _tags_of(
        self, conn: AsyncConnection, repo_id: int, digests: Sequence[str], tag_limit: int | None
    ) -> list[Any]:
        """The tags of these artifacts by name, the first `tag_limit` of each (None: all).
        A bounded read is one query per artifact, each walking the (repo_id, name) key
        until it has enough: a window over all of them would sort every tag first."""
        name = self._bytewise(tags.c.name)
        columns = select(tags.c.name, tags.c.digest, tags.c.updated_at).where(tags.c.repo_id == repo_id)
        if tag_limit is None:
            return list(await conn.execute(columns.where(tags.c.digest.in_(digests)).order_by(name)))
        if tag_limit <= 0:
            return []
        found: list[Any] = []
        for digest in digests:
            found.extend(await conn.execute(columns.where(tags.c.digest == digest).order_by(name).limit(tag_limit)))
        return found

    async def _total_sizes(self, conn: AsyncConnection, digests: set[str], depth: int = 0) -> dict[str, int]:
        """Manifest size plus the blobs it needs plus, for an index, its children's totals."""
        if not digests:
            return {}
        sizes = {
            r.digest: int(r.size)
            for r in await conn.execute(
                select(manifests.c.digest, manifests.c.size).where(manifests.c.digest.in_(digests))
            )
        }
        blob_sums = await conn.execute(
            select(manifest_refs.c.parent, func.sum(blobs.c.size))
            .join(blobs, blobs.c.digest == manifest_refs.c.child)
            .where(manifest_refs.c.parent.in_(digests), manifest_refs.c.kind == "blob")
            .group_by(manifest_refs.c.parent)
        )
        for parent, total in blob_sums:
            sizes[parent] = sizes.get(parent, 0) + int(total or 0)
        # Indexes nest at most a level or two in practice; the bound guards against cycles.
        if depth < 3:
            edges = (
                await conn.execute(
                    select(manifest_refs.c.parent, manifest_refs.c.child).where(
                        and_(manifest_refs.c.parent.in_(digests), manifest_refs.c.kind == "manifest")
                    )
                )
            ).all()
            children = await self._total_sizes(conn, {e.child for e in edges}, depth + 1)
            for parent, child in edges:
                sizes[parent] = sizes.get(parent, 0) + children.get(child, 0)
        return sizes

    @staticmethod
    async def _repo_id(conn: AsyncConnection, repo: str) -> int | None:
        return (await conn.execute(select(repositories.c.id).where(repositories.c.name == repo))).scalar()

    @staticmethod
    async def _count(conn: AsyncConnection, query: Select[Any]) -> int:
        return int((await conn.execute(select(func.count()).select_from(query.subquery()))).scalar() or 0)


def _tags_match(repo_id: int, match: Match) -> ColumnElement[bool]:
    """Harbor's `tags` condition on an artifact (dao.go's setTagQuery): `*` any tag, `nil`
    none, a name, a part of one (~), one of (`{}`) or each of (`()`) several names."""

    def tagged(*extra: ColumnElement[bool]) -> ColumnElement[bool]:
        return exists(select(1).where(tags.c.repo_id == repo_id, tags.c.digest == repo_manifests.c.digest, *extra))

    names = [str(v) for v in match.values if v is not None]
    if match.kind == "exact" and names == ["*"]:
        return tagged()
    if match.kind == "exact" and names == ["nil"]:
        return not_(tagged())
    if match.kind == "fuzzy":
        return tagged(tags.c.name.ilike(f"%{like_escape(names[0])}%", escape="\\"))
    if match.kind == "any":
        return tagged(tags.c.name.in_(names)) if names else false()
    if match.kind == "range":
        low, high = match.values
        bounds = [tags.c.name >= str(low)] if low is not None else []
        bounds += [tags.c.name <= str(high)] if high is not None else []
        return tagged(*bounds)
    return and_(true(), *(tagged(tags.c.name == name) for name in names))


def _json(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _children(document: dict[str, Any]) -> tuple[ChildReference, ...]:
    children = document.get("manifests")
    if not isinstance(children, list):
        return ()
    return tuple(
        ChildReference(
            str(c["digest"]),
            c.get("platform") if isinstance(c.get("platform"), dict) else None,
            c.get("annotations") if isinstance(c.get("annotations"), dict) else None,
            tuple(str(u) for u in c.get("urls") or ()),
        )
        for c in children
        if isinstance(c, dict) and "digest" in c
    )
