"""Project quotas on SQLAlchemy Core, and the storage check run by every write that grows a project.

A repository belongs to the project named by its first path component. A project's
usage is the sum over the distinct digests its repositories hold, blobs (repo_blobs) and
manifests (repo_manifests) alike: a layer shared by ten repositories of one project
counts once there, and once in every other project that holds it, as in Harbor.

The check (`check_storage`) runs inside the write's own transaction, before the write:

- a project without a limit pays one indexed read;
- content the project already holds costs nothing, and is let through unlocked (a
  concurrent delete can only lower the usage it was counted in);
- otherwise the project's quota row is locked (`SELECT ... FOR UPDATE` on PostgreSQL;
  SQLite's writers hold the database lock already) and the usage computed, so writers
  of one limited project, on any number of instances, see each other's committed growth.

A refused write rolls its transaction back; bytes already in the blob store (an upload's
published blob) stay unlinked until garbage collection removes them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import BindParameter, Select, and_, bindparam, exists, func, or_, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from portside.errors import Denied
from portside.meta.accounts import Page
from portside.meta.quotas import UNLIMITED, Quota, QuotaQuery
from portside.meta.sql.direct import AlchemyTx, Tx
from portside.meta.sql.engine import SqlBase, now
from portside.meta.sql.schema import (
    blobs,
    manifests,
    projects,
    quotas,
    repo_blobs,
    repo_manifests,
    repositories,
    users,
)

__all__ = ["SqlQuotas", "check_project", "check_storage", "project_gone", "storage_used", "human_size"]


class _Statements:
    """The statements of the storage check and of usage, built once per dialect (see
    store.py's `_Statements`)."""

    def __init__(self, dialect: str):
        name = repositories.c.name
        # Repositories of a project: named `project_` or `project_/…`; an index range on
        # SQLite. Bytewise, so "/" sorts before "0" whatever PostgreSQL's collation says.
        ordered = name.collate("C") if dialect == "postgresql" else name
        mine = or_(name == bindparam("project_"), and_(ordered > bindparam("after_"), ordered < bindparam("before_")))
        self.repositories_of = select(repositories.c.id).where(mine)

        digest_: BindParameter[Any] = bindparam("digest_")
        as_blob = (
            select(repo_blobs.c.digest)
            .join(repositories, repositories.c.id == repo_blobs.c.repo_id)
            .where(repo_blobs.c.digest == digest_, mine)
        )
        as_manifest = (
            select(repo_manifests.c.digest)
            .join(repositories, repositories.c.id == repo_manifests.c.repo_id)
            .where(repo_manifests.c.digest == digest_, mine)
        )
        self.holds = select(or_(exists(as_blob), exists(as_manifest)))

        # The ids are written into the statement: no parameter limit, and PostgreSQL plans
        # with the real number of repositories.
        ids: BindParameter[list[int]] = bindparam("repo_ids", expanding=True, literal_execute=True)
        # Distinct digests first, sizes after: a layer linked by fifty repositories is looked
        # up once, not fifty times.
        held_blobs = select(repo_blobs.c.digest).where(repo_blobs.c.repo_id.in_(ids)).distinct().subquery()
        blob_bytes = select(func.coalesce(func.sum(blobs.c.size), 0)).select_from(
            held_blobs.join(blobs, blobs.c.digest == held_blobs.c.digest)
        )
        held_manifests = select(repo_manifests.c.digest).where(repo_manifests.c.repo_id.in_(ids)).distinct().subquery()
        # A digest held as a blob too (a client that uploaded a manifest's bytes as a blob)
        # was counted above already.
        also_a_blob = select(repo_blobs.c.digest).where(
            repo_blobs.c.digest == held_manifests.c.digest, repo_blobs.c.repo_id.in_(ids)
        )
        manifest_bytes = (
            select(func.coalesce(func.sum(manifests.c.size), 0))
            .select_from(held_manifests.join(manifests, manifests.c.digest == held_manifests.c.digest))
            .where(~exists(also_a_blob))
        )
        # One statement, so both parts come from one snapshot.
        self.bytes_held = union_all(blob_bytes, manifest_bytes)

        self.project_limit = (
            select(projects.c.project_id, quotas.c.storage_limit)
            .select_from(projects.outerjoin(quotas, quotas.c.project_id == projects.c.project_id))
            .where(projects.c.name == bindparam("project_"))
        )
        # A write bound to a project holds its row until it commits, so deleting the project
        # (which locks the row to count its repositories) waits for it; see check_storage.
        self.project_limit_held = self.project_limit.with_for_update(read=True, key_share=True, of=projects)
        self.project_id = select(projects.c.project_id).where(projects.c.name == bindparam("project_"))
        self.project_id_held = self.project_id.with_for_update(read=True, key_share=True)
        insert: Callable[..., Any] = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}[dialect]
        self.add_missing_row = insert(quotas).on_conflict_do_nothing()
        project_id_: BindParameter[Any] = bindparam("project_id_")
        self.limit = select(quotas.c.storage_limit).where(quotas.c.project_id == project_id_)
        self.locked_limit = self.limit.with_for_update()


@functools.cache
def _statements(dialect: str) -> _Statements:
    return _Statements(dialect)


def _in(project: str) -> dict[str, str]:
    return {"project_": project, "after_": project + "/", "before_": project + "0"}


def _repositories_of(tx: Tx, project: str) -> list[int]:
    return [row[0] for row in tx.rows(_statements(tx.dialect).repositories_of, _in(project))]


def _bytes_held(tx: Tx, repo_ids: Sequence[int]) -> int:
    """The bytes of the distinct blobs and manifests the repositories hold together."""
    if not repo_ids:
        return 0
    return sum(int(row[0]) for row in tx.rows(_statements(tx.dialect).bytes_held, {"repo_ids": list(repo_ids)}))


def _storage_used(tx: Tx, project_ids: Sequence[int] | None) -> dict[int, int]:
    query = select(projects.c.project_id, projects.c.name)
    if project_ids is not None:
        query = query.where(projects.c.project_id.in_(list(project_ids)))
    names: dict[str, int] = {name: project_id for project_id, name in tx.rows(query)}
    repo_ids: dict[int, list[int]] = {}
    if project_ids is None:
        # Every project: one pass over the repositories, each to the project it names.
        for repo_id, name in tx.rows(select(repositories.c.id, repositories.c.name)):
            owner = names.get(name.split("/", 1)[0])
            if owner is not None:
                repo_ids.setdefault(owner, []).append(repo_id)
    else:
        for name, project_id in names.items():
            repo_ids[project_id] = _repositories_of(tx, name)
    return {project_id: _bytes_held(tx, repo_ids.get(project_id, [])) for project_id in names.values()}


async def storage_used(conn: AsyncConnection, project_ids: Sequence[int] | None) -> dict[int, int]:
    """Bytes each project holds (None: every project)."""
    return await conn.run_sync(lambda sync: _storage_used(AlchemyTx(sync), project_ids))


def _holds(tx: Tx, project: str, digest: str) -> bool:
    """Whether a repository of `project` already holds `digest` (as a blob or a manifest)."""
    return bool(tx.scalar(_statements(tx.dialect).holds, {**_in(project), "digest_": digest}))


def _add_missing_row(tx: Tx, project_id: int, limit: int) -> int:
    """Give a project created before quotas (or by a path that sets none) its quota row."""
    sql, when = _statements(tx.dialect), now()
    tx.run(
        sql.add_missing_row,
        {"project_id": project_id, "storage_limit": limit, "creation_time": when, "update_time": when},
    )
    return int(tx.scalar(sql.limit, {"project_id_": project_id}))


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = float(size)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def _exceeded(project: str, would_use: int, limit: int, used: int, size: int) -> Denied:
    wanted, allowed = human_size(would_use), human_size(limit)
    if wanted == allowed:  # too close to tell apart when rounded
        wanted, allowed = f"{would_use} B", f"{limit} B"
    return Denied(
        f'quota exceeded: project "{project}" would use {wanted} of its {allowed} storage limit',
        detail={"project": project, "limit": limit, "used": used, "requested": size},
    )


def project_gone(project: str) -> Denied:
    """The answer to a write whose project was deleted (or deleted and made again, which
    is another project) since the caller was let in."""
    return Denied(f"project {project} does not exist", detail=[{"Type": "project", "Name": project}])


def check_project(tx: Tx, repo: str, project_id: int | None) -> None:
    """Raise `Denied` unless `repo`'s project is still the project `project_id` (None:
    no binding, as in an open registry); holds its row until the transaction ends."""
    if project_id is None:
        return
    project = repo.split("/", 1)[0]
    if tx.scalar(_statements(tx.dialect).project_id_held, {"project_": project}) != project_id:
        raise project_gone(project)


def check_storage(
    tx: Tx, repo: str, digest: str, size: int, default_limit: int, project_id: int | None = None
) -> None:
    """Raise `Denied` when adding `digest` (`size` bytes) to `repo` would take its project
    over its storage limit, or when the write is bound to a project (`project_id`, the one
    the caller was granted access in) that is no longer `repo`'s: the project was deleted,
    perhaps made again by someone else under the same name. Run inside the transaction of
    the write, before it; a bound write holds the project's row until it commits."""
    sql = _statements(tx.dialect)
    project = repo.split("/", 1)[0]
    row = tx.first(sql.project_limit if project_id is None else sql.project_limit_held, {"project_": project})
    if project_id is not None and (row is None or row[0] != project_id):
        raise project_gone(project)
    if row is None:
        return  # not a project's repository (an open registry's): there is no limit to keep
    project_id, limit = row
    if limit is None:
        limit = _add_missing_row(tx, project_id, default_limit)
    if limit == UNLIMITED or _holds(tx, project, digest):
        return
    limit = int(tx.scalar(sql.locked_limit, {"project_id_": project_id}))
    # Looked at again under the lock: a writer we waited for may have added it meanwhile.
    if limit == UNLIMITED or _holds(tx, project, digest):
        return
    used = _bytes_held(tx, _repositories_of(tx, project))
    if used + size > limit:
        raise _exceeded(project, used + size, limit, used, size)


def _quota(row: Row[Any], used: int) -> Quota:
    return Quota(
        project_id=row.project_id,
        project_name=row.name,
        owner_name=row.owner_name,
        storage_limit=row.storage_limit,
        storage_used=used,
        creation_time=row.creation_time,
        update_time=row.update_time,
    )


class SqlQuotas(SqlBase):
    """The quota rows, with usage computed on read; missing rows get `default_limit`."""

    def __init__(self, engine: AsyncEngine, default_limit: int = UNLIMITED):
        super().__init__(engine)
        self._default_limit = default_limit

    def _query(self) -> Select[Any]:
        return (
            select(quotas, projects.c.name, users.c.username.label("owner_name"))
            .join(projects, projects.c.project_id == quotas.c.project_id)
            .join(users, users.c.user_id == projects.c.owner_id)
        )

    async def _add_missing_rows(self, project_id: int | None = None) -> None:
        missing = select(projects.c.project_id).where(~exists().where(quotas.c.project_id == projects.c.project_id))
        if project_id is not None:
            missing = missing.where(projects.c.project_id == project_id)
        async with self._read() as conn:
            ids = list((await conn.execute(missing)).scalars())
        if not ids:
            return
        when = now()
        async with self._write() as conn:
            await conn.execute(
                self._insert(quotas).on_conflict_do_nothing(),
                [
                    {"project_id": i, "storage_limit": self._default_limit, "creation_time": when, "update_time": when}
                    for i in ids
                ],
            )

    async def get_quota(self, project_id: int) -> Quota | None:
        await self._add_missing_rows(project_id)
        async with self._read() as conn:
            row = (await conn.execute(self._query().where(quotas.c.project_id == project_id))).first()
            if row is None:
                return None
            used = await storage_used(conn, [project_id])
        return _quota(row, used.get(project_id, 0))

    async def list_quotas(self, query: QuotaQuery, offset: int, limit: int) -> Page[Quota]:
        await self._add_missing_rows(query.project_id)
        stmt = self._query()
        if query.project_id is not None:
            stmt = stmt.where(quotas.c.project_id == query.project_id)
        async with self._read() as conn:
            if any(name == "used.storage" for name, _ in query.sort):
                # Usage is not a column: compute it for every project, then sort and page here.
                rows = (await conn.execute(stmt)).all()
                used = await storage_used(conn, None if query.project_id is None else [query.project_id])
                found = [_quota(r, used.get(r.project_id, 0)) for r in rows]
                found.sort(key=lambda q: q.project_id)
                for name, descending in reversed(query.sort):
                    found.sort(
                        key=lambda q: q.storage_used if name == "used.storage" else q.storage_limit,
                        reverse=descending,
                    )
                return Page(found[offset : offset + limit], len(found))
            total = int((await conn.execute(select(func.count()).select_from(stmt.subquery()))).scalar() or 0)
            order = [quotas.c.storage_limit.desc() if d else quotas.c.storage_limit for _, d in query.sort]
            rows = (await conn.execute(stmt.order_by(*order, quotas.c.project_id).offset(offset).limit(limit))).all()
            used = await storage_used(conn, [r.project_id for r in rows]) if rows else {}
        return Page([_quota(r, used.get(r.project_id, 0)) for r in rows], total)

    async def set_storage_limit(self, project_id: int, limit: int) -> bool:
        when = now()
        async with self._write() as conn:
            found = await conn.execute(select(projects.c.project_id).where(projects.c.project_id == project_id))
            if found.first() is None:
                return False
            await conn.execute(
                self._insert(quotas)
                .values(project_id=project_id, storage_limit=limit, creation_time=when, update_time=when)
                .on_conflict_do_update(
                    index_elements=[quotas.c.project_id], set_={"storage_limit": limit, "update_time": when}
                )
            )
        return True
