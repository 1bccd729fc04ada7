"""Repositories, artifacts and tags for the management API, on SQLAlchemy Core.

Reads only; every change that /v2 can also make (deleting manifests and tags, tagging)
goes through `RepoStore`, so both APIs keep one set of rules. Deleting a whole repository
and its description are the management API's own.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    bindparam,
    delete,
    exists,
    false,
    func,
    not_,
    or_,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from portside.meta.accounts import Page
from portside.meta.artifacts import ArtifactInfo, ChildReference, RepositoryInfo, TagInfo
from portside.meta.criteria import EVERYTHING, Criteria, Match
from portside.meta.sql.criteria import Fields, conditions, like_escape, ordering
from portside.meta.sql.engine import SqlBase, now, retry_transient, utc
from portside.meta.sql.scan_cleanup import forget_unheld_scans
from portside.meta.sql.schema import blobs, manifest_refs, manifests, repo_manifests, repositories, scan_reports, tags
from portside.meta.sql.store import referrer_descriptor, referrers_query
from portside.oci import mediatypes as mt
from portside.oci.manifest import Descriptor

__all__ = ["SqlArtifacts"]


# Statements and their parts are made once where they can be (with bind parameters, as in
# store.py's _Statements), the others built per read from parts made once: a page of the
# UI makes a dozen reads, and building a statement costs about what running it does
# (making the alias below alone, a third of a millisecond).
_PARENT_LINK = repo_manifests.alias("parent_link")
_REFS_OF_LINKS = manifest_refs.join(_PARENT_LINK, _PARENT_LINK.c.digest == manifest_refs.c.parent)


def _is_child_in_repo(repo_id: Any, digest: Any) -> Any:
    """Whether `digest` is a child of an index linked to the same repository."""
    return exists(
        select(1)
        .select_from(_REFS_OF_LINKS)
        .where(
            _PARENT_LINK.c.repo_id == repo_id,
            manifest_refs.c.child == digest,
            manifest_refs.c.kind == "manifest",
            manifest_refs.c.parent != digest,
        )
    )


# A repository's artifacts, counted in a row of `repositories`: its links that are no child
# of an index it holds. The child's question names the link's own repository: `repositories`
# there would not correlate (the count's FROM does not hold it), and would ask about an
# index of any repository.
_ARTIFACT_COUNT = (
    select(func.count())
    .select_from(repo_manifests)
    .where(
        repo_manifests.c.repo_id == repositories.c.id,
        not_(_is_child_in_repo(repo_manifests.c.repo_id, repo_manifests.c.digest)),
    )
    .scalar_subquery()
)

_LAST_PUSH = (
    select(func.max(repo_manifests.c.pushed_at)).where(repo_manifests.c.repo_id == repositories.c.id).scalar_subquery()
)

_UPDATE_TIME = func.coalesce(repositories.c.updated_at, _LAST_PUSH, repositories.c.created_at)

_REPOSITORY_QUERY = select(
    repositories.c.id,
    repositories.c.name,
    repositories.c.description,
    repositories.c.pull_count,
    repositories.c.created_at,
    _UPDATE_TIME.label("update_time"),
    _ARTIFACT_COUNT.label("artifact_count"),
)

_REPO_ID = select(repositories.c.id).where(repositories.c.name == bindparam("repo_"))

# Each manifest's size and that of the blobs it needs, and whether it is an index.
_SIZES = select(
    manifests.c.digest,
    manifests.c.media_type,
    manifests.c.size,
    select(func.coalesce(func.sum(blobs.c.size), 0))
    .select_from(manifest_refs.join(blobs, blobs.c.digest == manifest_refs.c.child))
    .where(manifest_refs.c.parent == manifests.c.digest, manifest_refs.c.kind == "blob")
    .scalar_subquery()
    .label("blob_total"),
).where(manifests.c.digest.in_(bindparam("digests_", expanding=True)))

# The children of indexes.
_CHILDREN = select(manifest_refs.c.parent, manifest_refs.c.child).where(
    manifest_refs.c.parent.in_(bindparam("digests_", expanding=True)), manifest_refs.c.kind == "manifest"
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
    def __init__(self, engine: AsyncEngine, *, after_commit: Callable[[], Awaitable[None]] | None = None):
        super().__init__(engine, after_commit=after_commit)
        self._first_tags_built: dict[int, Select[Any]] = {}

    # --- repositories ---------------------------------------------------------------------

    async def list_repositories(
        self, *, projects: Sequence[str] | None, criteria: Criteria, offset: int, limit: int
    ) -> Page[RepositoryInfo]:
        if projects is not None and not projects:
            return Page([], 0)
        query = _REPOSITORY_QUERY
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
            "artifact_count": _ARTIFACT_COUNT,
            "creation_time": repositories.c.created_at,
            "update_time": _UPDATE_TIME,
        }
        query = query.where(*conditions(fields, criteria))
        order = ordering(fields, criteria, bytewise=self._bytewise)
        async with self._read() as conn:
            total = await self._count(conn, query)
            rows = await conn.execute(query.order_by(*order, repositories.c.id).offset(offset).limit(limit))
            return Page([_repository(r) for r in rows], total)

    async def get_repository(self, name: str) -> RepositoryInfo | None:
        async with self._read() as conn:
            row = (await conn.execute(_REPOSITORY_QUERY.where(repositories.c.name == name))).first()
        return _repository(row) if row else None

    async def repository_exists(self, name: str) -> bool:
        async with self._read() as conn:
            return await self._repo_id(conn, name) is not None

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
        # Links, manifests of the repository and tags go with it (ON DELETE CASCADE); its
        # scan reports, and the scan data of content no other repository holds, likewise.
        async with self._write() as conn:
            held = (
                select(repo_manifests.c.digest)
                .join(repositories, repositories.c.id == repo_manifests.c.repo_id)
                .where(repositories.c.name == name)
            )
            digests = list((await conn.execute(held)).scalars())
            result = await conn.execute(delete(repositories).where(repositories.c.name == name))
            if result.rowcount > 0:
                await conn.execute(delete(scan_reports).where(scan_reports.c.repository == name))
                await forget_unheld_scans(conn, digests)
            return result.rowcount > 0

    # --- artifacts ------------------------------------------------------------------------

    async def list_artifacts(
        self,
        repo: str,
        criteria: Criteria,
        offset: int,
        limit: int,
        tag_limit: int | None = None,
        total: int | None = None,
    ) -> Page[ArtifactInfo]:
        async with self._read() as conn:
            repo_id = await self._repo_id(conn, repo)
            if repo_id is None:
                return Page([], 0)
            links = self._links(repo_id, criteria)
            if total is None:
                total = int((await conn.execute(select(func.count()).select_from(links.subquery()))).scalar() or 0)
            order = [
                *ordering(self._artifact_fields(repo_id), criteria, bytewise=self._bytewise),
                repo_manifests.c.digest,
            ]
            # The page's keys first, from the links alone (with an index for the default
            # order, a walk along it), then the 20 rows in full: sorting or skipping the
            # whole rows, manifest payloads and all, made a late page cost a sort of all.
            keys = links.order_by(*order).offset(offset).limit(limit).subquery()
            query = self._artifact_query(repo_id).join(keys, keys.c.digest == repo_manifests.c.digest)
            rows = (await conn.execute(query.order_by(*order))).all()
            return Page(await self._artifacts(conn, repo_id, repo, rows, tag_limit), total)

    async def newest_artifact(self, repo: str, tag_limit: int | None = None) -> ArtifactInfo | None:
        async with self._read() as conn:
            repo_id = await self._repo_id(conn, repo)
            if repo_id is None:
                return None
            order = (repo_manifests.c.pushed_at.desc(), repo_manifests.c.digest)
            keys = self._links(repo_id, EVERYTHING).order_by(*order).limit(1).subquery()
            query = self._artifact_query(repo_id).join(keys, keys.c.digest == repo_manifests.c.digest)
            found = await self._artifacts(conn, repo_id, repo, (await conn.execute(query)).all(), tag_limit)
        return found[0] if found else None

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
        if "name" not in {field for field, _ in criteria.order}:
            # Names are unique in a repository: after them, nothing is left to order by.
            # (Ordered by name twice, SQLite no longer sees that an artifact's tags come in
            # name order from its index, and walks all of the repository's instead.)
            order.append(self._bytewise(tags.c.name))
        async with self._read() as conn:
            total = await self._count(conn, query)
            rows = await conn.execute(query.order_by(*order).offset(offset).limit(limit))
            return Page([TagInfo(r.name, r.repo_id, r.digest, utc(r.updated_at)) for r in rows], total)

    async def get_artifact(self, repo: str, digest: str, tag_limit: int | None = None) -> ArtifactInfo | None:
        async with self._read() as conn:
            repo_id = await self._repo_id(conn, repo)
            if repo_id is None:
                return None
            rows = (await conn.execute(self._artifact_query(repo_id).where(repo_manifests.c.digest == digest))).all()
            found = await self._artifacts(conn, repo_id, repo, rows, tag_limit)
        return found[0] if found else None

    async def referrers(self, repo: str, subjects: Collection[str]) -> dict[str, list[Descriptor]]:
        if not subjects:
            return {}
        found: dict[str, list[Descriptor]] = {subject: [] for subject in subjects}
        async with self._read() as conn:
            rows = (await conn.execute(*referrers_query(repo, sorted(found), None))).all()
        for row in rows:
            found[row.subject].append(referrer_descriptor(row))
        return found

    async def tag_digests(self, repo: str, names: Collection[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        async with self._read() as conn:
            repo_id = await self._repo_id(conn, repo) if names else None
            if repo_id is None:
                return found
            # One key lookup per name: SQLite (no statistics) would answer `name IN (...)`
            # by reading every tag of the repository from the (repository, digest, name) index.
            for name in sorted(names):
                query = select(tags.c.digest).where(tags.c.repo_id == repo_id, tags.c.name == name)
                digest = (await conn.execute(query)).scalar()
                if digest is not None:
                    found[name] = digest
        return found

    async def tag_digest(self, repo: str, tag: str) -> str | None:
        query = (
            select(tags.c.digest)
            .join(repositories, repositories.c.id == tags.c.repo_id)
            .where(repositories.c.name == repo, tags.c.name == tag)
        )
        async with self._read() as conn:
            return (await conn.execute(query)).scalar()

    # --- helpers --------------------------------------------------------------------------

    def _artifact_fields(self, repo_id: int) -> Fields:
        return {
            "digest": repo_manifests.c.digest,
            "manifest_media_type": manifests.c.media_type,
            "artifact_type": manifests.c.artifact_type,
            "push_time": repo_manifests.c.pushed_at,
            "pull_time": repo_manifests.c.pulled_at,
            "tags": lambda match: _tags_match(repo_id, match, postgresql=self._postgresql),
        }

    def _links(self, repo_id: int, criteria: Criteria) -> Select[Any]:
        """The digests of the repository's artifacts that meet `criteria` (unordered): its
        links that are no child of an index it holds, joined to their manifests only when
        a condition or the order is on one of theirs.

        A condition that one tag meets (a name, a part of one) is a join to the digests of
        the tags that meet it: a filter that a few tags of many meet then leads from those
        tags to their few artifacts, where asked of each artifact in turn it would have the
        database walk all of them (SQLite does, to save sorting the page)."""
        source: Any = repo_manifests
        named = {field for field, _ in criteria.matches} | {field for field, _ in criteria.order}
        if named & _MANIFEST_FIELDS:
            source = source.join(manifests, manifests.c.digest == repo_manifests.c.digest)
        conditions_ = conditions(self._artifact_fields(repo_id), criteria.without("tags"))
        for match in criteria.on("tags"):
            one = _one_tag(match, postgresql=self._postgresql)
            if one is None:
                conditions_.append(_tags_match(repo_id, match, postgresql=self._postgresql))
                continue
            matching = select(tags.c.digest).where(tags.c.repo_id == repo_id, *one).distinct().subquery()
            source = source.join(matching, matching.c.digest == repo_manifests.c.digest)
        return (
            select(repo_manifests.c.digest)
            .select_from(source)
            .where(
                repo_manifests.c.repo_id == repo_id,
                not_(_is_child_in_repo(repo_id, repo_manifests.c.digest)),
                *conditions_,
            )
        )

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
        """The tags of these artifacts by name, the first `tag_limit` of each (None: all)."""
        if tag_limit is None:
            # By artifact, then name: the (repository, digest, name) index's own order. (By
            # name alone, SQLite walks all of the repository's tags in name order instead.)
            query = (
                select(tags.c.name, tags.c.digest, tags.c.updated_at)
                .where(tags.c.repo_id == repo_id, tags.c.digest.in_(digests))
                .order_by(tags.c.digest, self._bytewise(tags.c.name))
            )
            return list(await conn.execute(query))
        if tag_limit <= 0 or not digests:
            return []
        params: dict[str, Any] = {f"digest_{i}": digest for i, digest in enumerate(digests)}
        return list(
            await conn.execute(self._first_tags(len(digests)), {**params, "repo_id_": repo_id, "limit_": tag_limit})
        )

    def _first_tags(self, count: int) -> Select[Any]:
        """The statement that reads the first tags of `count` artifacts: a part per artifact,
        each reading the first entries of the (repository, digest, name) index and no more,
        so an artifact's tags cost what is shown of them, however many it or the repository
        has (a window over all of them would read every tag of each first). Built once for
        each number of artifacts: a page holds at most its size."""
        statement = self._first_tags_built.get(count)
        if statement is None:
            repo_id, limit = bindparam("repo_id_", type_=Integer), bindparam("limit_", type_=Integer)
            parts = [
                select(tags.c.name, tags.c.digest, tags.c.updated_at)
                .where(tags.c.repo_id == repo_id, tags.c.digest == bindparam(f"digest_{i}", type_=tags.c.digest.type))
                .order_by(self._bytewise(tags.c.name))
                .limit(limit)
                .subquery()
                for i in range(count)
            ]
            found = union_all(*(select(part).select_from(part) for part in parts)).subquery()
            statement = select(found).order_by(found.c.digest, self._bytewise(found.c.name))
            self._first_tags_built[count] = statement
        return statement

    async def _total_sizes(self, conn: AsyncConnection, digests: set[str], depth: int = 0) -> dict[str, int]:
        """Manifest size plus the blobs it needs plus, for an index, its children's totals."""
        if not digests:
            return {}
        sizes: dict[str, int] = {}
        indexes: set[str] = set()
        for r in await conn.execute(_SIZES, {"digests_": sorted(digests)}):
            sizes[r.digest] = int(r.size) + int(r.blob_total or 0)
            if r.media_type in mt.INDEXES:  # only an index has children (manifest_refs "manifest")
                indexes.add(r.digest)
        # Indexes nest at most a level or two in practice; the bound guards against cycles.
        if indexes and depth < 3:
            edges = (await conn.execute(_CHILDREN, {"digests_": sorted(indexes)})).all()
            children = await self._total_sizes(conn, {e.child for e in edges}, depth + 1)
            for parent, child in edges:
                sizes[parent] = sizes.get(parent, 0) + children.get(child, 0)
        return sizes

    @staticmethod
    async def _repo_id(conn: AsyncConnection, repo: str) -> int | None:
        return (await conn.execute(_REPO_ID, {"repo_": repo})).scalar()

    @staticmethod
    async def _count(conn: AsyncConnection, query: Select[Any]) -> int:
        return int((await conn.execute(select(func.count()).select_from(query.subquery()))).scalar() or 0)


def _one_tag(match: Match, *, postgresql: bool) -> list[ColumnElement[bool]] | None:
    """What one tag must meet for its artifact to meet `match`, when one is enough: a name,
    a part of one (~), one of several (`{}`), a range; None when `match` asks something
    else of the artifact's tags (`*` any, `nil` none, each of several names)."""
    names = [str(v) for v in match.values if v is not None]
    if match.kind == "fuzzy":
        pattern = f"%{like_escape(names[0])}%"
        # SQLite's LIKE ignores the case of ASCII letters, as its lower() does (and tags
        # are ASCII): ILIKE there would only lower() both sides of every tag first.
        like = tags.c.name.ilike if postgresql else tags.c.name.like
        return [like(pattern, escape="\\")]
    if match.kind == "any":
        return [tags.c.name.in_(names)] if names else None
    if match.kind == "range":
        low, high = match.values
        bounds = [tags.c.name >= str(low)] if low is not None else []
        bounds += [tags.c.name <= str(high)] if high is not None else []
        return bounds
    if len(names) == 1 and names[0] not in ("*", "nil"):  # exact, or each of one name
        return [tags.c.name == names[0]]
    return None


def _tags_match(repo_id: int, match: Match, *, postgresql: bool) -> ColumnElement[bool]:
    """Harbor's `tags` condition on an artifact (dao.go's setTagQuery): `*` any tag, `nil`
    none, a name, a part of one (~), one of (`{}`) or each of (`()`) several names."""

    def tagged(*extra: ColumnElement[bool]) -> ColumnElement[bool]:
        return repo_manifests.c.digest.in_(select(tags.c.digest).where(tags.c.repo_id == repo_id, *extra))

    one = _one_tag(match, postgresql=postgresql)
    if one is not None:
        return tagged(*one)
    names = [str(v) for v in match.values if v is not None]
    if match.kind == "exact" and names == ["*"]:
        return tagged()
    if match.kind == "exact" and names == ["nil"]:
        return not_(exists(select(1).where(tags.c.repo_id == repo_id, tags.c.digest == repo_manifests.c.digest)))
    if match.kind == "any":
        return false()  # one of no names
    return and_(true(), *(tagged(tags.c.name == name) for name in names))


# The listing's fields that are columns of the manifest, not of its link.
_MANIFEST_FIELDS = frozenset({"manifest_media_type", "artifact_type"})


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
