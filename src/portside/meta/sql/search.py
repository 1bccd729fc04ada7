"""The search's queries (meta/search.py) on SQLAlchemy Core, for SQLite and PostgreSQL.

A digest prefix is looked up as a range of the digest column (from the prefix to the
prefix with its last hex digit raised), which both databases answer from the digest's
index, whatever the collation: hex digits and letters sort alike in bytes and in ICU's
locales. A LIKE on the prefix keeps the answer exact.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from portside.meta.search import TAGS_PER_MANIFEST, BlobUse, ManifestHit, TagHit
from portside.meta.sql.criteria import like_escape
from portside.meta.sql.engine import SqlBase, utc
from portside.meta.sql.schema import manifest_refs, manifests, repo_manifests, repositories, tags

__all__ = ["SqlSearch"]

_HEX = "0123456789abcdef"


def _in_projects(name: Any, projects: Sequence[str]) -> ColumnElement[bool]:
    """Repositories whose first path component is one of `projects` (as list_repositories)."""
    return or_(*(or_(name.like(like_escape(p) + "/%", escape="\\"), name == p) for p in projects))


def _above(prefix: str) -> str | None:
    """The least string above every one that starts with `prefix` (lowercase hex after the
    algorithm), or None when there is none of that shape."""
    algorithm, _, digits = prefix.partition(":")
    digits = digits.rstrip("f")
    if not digits:
        return None
    return f"{algorithm}:{digits[:-1]}{_HEX[_HEX.index(digits[-1]) + 1]}"


def _starts_with(column: Any, prefixes: Sequence[str]) -> ColumnElement[bool]:
    each = []
    for prefix in prefixes:
        bounds = [column >= prefix]
        upper = _above(prefix)
        if upper is not None:
            bounds.append(column < upper)
        each.append(and_(*bounds, column.like(like_escape(prefix) + "%", escape="\\")))
    return or_(*each)


class SqlSearch(SqlBase):
    async def tags_named(
        self, *, projects: Sequence[str] | None, tag_contains: str, repository_contains: str | None, limit: int
    ) -> list[TagHit]:
        if projects is not None and not projects:
            return []
        query = (
            select(repositories.c.name.label("repository"), tags.c.name, tags.c.digest, tags.c.updated_at)
            .select_from(tags.join(repositories, repositories.c.id == tags.c.repo_id))
            .where(tags.c.name.ilike(f"%{like_escape(tag_contains)}%", escape="\\"))
        )
        if repository_contains:
            query = query.where(repositories.c.name.ilike(f"%{like_escape(repository_contains)}%", escape="\\"))
        if projects is not None:
            query = query.where(_in_projects(repositories.c.name, projects))
        exact_first = case((func.lower(tags.c.name) == tag_contains.lower(), 0), else_=1)
        order = (exact_first, self._bytewise(repositories.c.name), self._bytewise(tags.c.name))
        async with self._read() as conn:
            rows = await conn.execute(query.order_by(*order).limit(limit))
            return [TagHit(r.repository, r.name, r.digest, utc(r.updated_at)) for r in rows]

    async def manifests_by_digest(
        self, *, projects: Sequence[str] | None, prefixes: Sequence[str], limit: int
    ) -> list[ManifestHit]:
        if not prefixes or (projects is not None and not projects):
            return []
        query = (
            select(
                repositories.c.id,
                repositories.c.name.label("repository"),
                repo_manifests.c.digest,
                repo_manifests.c.pushed_at,
                manifests.c.media_type,
                manifests.c.artifact_type,
            )
            .select_from(
                repo_manifests.join(repositories, repositories.c.id == repo_manifests.c.repo_id).join(
                    manifests, manifests.c.digest == repo_manifests.c.digest
                )
            )
            .where(_starts_with(repo_manifests.c.digest, prefixes))
        )
        if projects is not None:
            query = query.where(_in_projects(repositories.c.name, projects))
        order = (self._bytewise(repo_manifests.c.digest), self._bytewise(repositories.c.name))
        async with self._read() as conn:
            rows = (await conn.execute(query.order_by(*order).limit(limit))).all()
            named = await self._tags_of(conn, [(r.id, r.digest) for r in rows])
        return [
            ManifestHit(
                r.repository,
                r.digest,
                r.media_type,
                r.artifact_type,
                utc(r.pushed_at),
                named.get((r.id, r.digest), ()),
            )
            for r in rows
        ]

    async def blob_uses(self, *, projects: Sequence[str] | None, prefixes: Sequence[str], limit: int) -> list[BlobUse]:
        if not prefixes or (projects is not None and not projects):
            return []
        query = (
            select(
                manifest_refs.c.child.label("blob"),
                repositories.c.id,
                repositories.c.name.label("repository"),
                repo_manifests.c.digest,
                manifests.c.media_type,
                manifests.c.payload,
            )
            .select_from(
                manifest_refs.join(repo_manifests, repo_manifests.c.digest == manifest_refs.c.parent)
                .join(repositories, repositories.c.id == repo_manifests.c.repo_id)
                .join(manifests, manifests.c.digest == manifest_refs.c.parent)
            )
            .where(manifest_refs.c.kind == "blob", _starts_with(manifest_refs.c.child, prefixes))
        )
        if projects is not None:
            query = query.where(_in_projects(repositories.c.name, projects))
        query = query.order_by(
            self._bytewise(manifest_refs.c.child),
            self._bytewise(repositories.c.name),
            self._bytewise(repo_manifests.c.digest),
        ).limit(limit)
        async with self._read() as conn:
            rows = (await conn.execute(query)).all()
            named = await self._tags_of(conn, [(r.id, r.digest) for r in rows])
        return [
            BlobUse(
                r.blob,
                _role(r.payload, r.blob),
                r.repository,
                r.digest,
                r.media_type,
                named.get((r.id, r.digest), ()),
            )
            for r in rows
        ]

    async def _tags_of(
        self, conn: AsyncConnection, manifests_in: Sequence[tuple[int, str]]
    ) -> dict[tuple[int, str], tuple[str, ...]]:
        """The first tags (by name) of each (repository id, digest), at most
        TAGS_PER_MANIFEST + 1 of each."""
        if not manifests_in:
            return {}
        rank = (
            func.row_number()
            .over(partition_by=(tags.c.repo_id, tags.c.digest), order_by=self._bytewise(tags.c.name))
            .label("rank")
        )
        ranked = (
            select(tags.c.repo_id, tags.c.digest, tags.c.name, rank)
            .where(
                tags.c.repo_id.in_({repo_id for repo_id, _ in manifests_in}),
                tags.c.digest.in_({digest for _, digest in manifests_in}),
            )
            .subquery()
        )
        rows = await conn.execute(
            select(ranked.c.repo_id, ranked.c.digest, ranked.c.name)
            .where(ranked.c.rank <= TAGS_PER_MANIFEST + 1)
            .order_by(ranked.c.repo_id, ranked.c.digest, ranked.c.rank)
        )
        found: dict[tuple[int, str], list[str]] = {}
        for r in rows:
            found.setdefault((r.repo_id, r.digest), []).append(r.name)
        return {key: tuple(names) for key, names in found.items()}


def _role(payload: bytes, blob: str) -> Literal["layer", "config"]:
    try:
        document = json.loads(payload)
    except ValueError:
        return "layer"
    config = document.get("config") if isinstance(document, dict) else None
    return "config" if isinstance(config, dict) and config.get("digest") == blob else "layer"
