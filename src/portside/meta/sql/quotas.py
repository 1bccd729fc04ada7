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

Reading usage (the quota API, the project list and summary) costs a pass over every
manifest and blob a project holds, so each process remembers it (`UsageCache`) for as
long as it provably stands: the registry's generation (a `ChangeCounter`, moved after
every commit that links or unlinks a manifest, removes a blob link or a repository, on
any process or instance) has not moved, and the project's repositories still hold as
many blob and manifest links. The count is there for the one change that commits
without moving the generation: a blob link (an upload or a mount, which store.py keeps
from emptying every manifest cache); links are only ever added that way, so a new one
always shows in the count. Counting is an index range per repository (0.2 ms for the
10,000 manifests of a repository on SQLite, where the sums take 15). The check above
never reads the cache.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BindParameter, Select, and_, bindparam, exists, func, or_, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from portside.errors import Denied
from portside.meta.accounts import Page
from portside.meta.quotas import UNLIMITED, Quota, QuotaQuery
from portside.meta.sql.direct import Tx
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
from portside.meta.stores import ChangeCounter

__all__ = ["SqlQuotas", "UsageCache", "check_project", "check_storage", "project_gone", "human_size"]


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
        # The links the repositories hold (an index range each), and usage with them, in
        # one snapshot: what `UsageCache` remembers and checks.
        blob_links = select(func.count()).select_from(repo_blobs).where(repo_blobs.c.repo_id.in_(ids))
        manifest_links = select(func.count()).select_from(repo_manifests).where(repo_manifests.c.repo_id.in_(ids))
        self.links_held = select(blob_links.scalar_subquery(), manifest_links.scalar_subquery())
        self.usage_held = select(
            blob_links.scalar_subquery(),
            manifest_links.scalar_subquery(),
            blob_bytes.scalar_subquery(),
            manifest_bytes.scalar_subquery(),
        )

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


def _repositories_by_project(tx: Tx, project_ids: Collection[int] | None) -> dict[int, list[int]]:
    """The repositories of each project (None: of every project), by project id."""
    query = select(projects.c.project_id, projects.c.name)
    if project_ids is not None:
        query = query.where(projects.c.project_id.in_(list(project_ids)))
    names: dict[str, int] = {name: project_id for project_id, name in tx.rows(query)}
    repo_ids: dict[int, list[int]] = {project_id: [] for project_id in names.values()}
    if project_ids is None:
        # Every project: one pass over the repositories, each to the project it names.
        for repo_id, name in tx.rows(select(repositories.c.id, repositories.c.name)):
            owner = names.get(name.split("/", 1)[0])
            if owner is not None:
                repo_ids[owner].append(repo_id)
    else:
        for name, project_id in names.items():
            repo_ids[project_id] = _repositories_of(tx, name)
    return repo_ids


Links = tuple[int, int]  # a project's blob links and manifest links (rows, not digests)


@dataclass(frozen=True, slots=True)
class _Usage:
    links: Links
    used: int


def _usage(tx: Tx, repo_ids: Sequence[int]) -> _Usage:
    if not repo_ids:
        return _Usage((0, 0), 0)
    row = tx.first(_statements(tx.dialect).usage_held, {"repo_ids": list(repo_ids)})
    assert row is not None
    blob_links, manifest_links, blob_bytes, manifest_bytes = row
    return _Usage((int(blob_links), int(manifest_links)), int(blob_bytes) + int(manifest_bytes))


def _links(tx: Tx, repo_ids: Sequence[int]) -> Links:
    if not repo_ids:
        return (0, 0)
    row = tx.first(_statements(tx.dialect).links_held, {"repo_ids": list(repo_ids)})
    assert row is not None
    return (int(row[0]), int(row[1]))


def _storage_used(
    tx: Tx, project_ids: Collection[int] | None, remembered: Mapping[int, _Usage]
) -> tuple[dict[int, int], dict[int, _Usage]]:
    """Bytes each project holds (None: every project), taken from `remembered` where the
    project's links number the same, else summed; and what was summed."""
    used: dict[int, int] = {}
    summed: dict[int, _Usage] = {}
    for project_id, repo_ids in _repositories_by_project(tx, project_ids).items():
        known = remembered.get(project_id)
        if known is not None and _links(tx, repo_ids) == known.links:
            used[project_id] = known.used
            continue
        usage = _usage(tx, repo_ids)
        used[project_id] = usage.used
        summed[project_id] = usage
    return used, summed


class UsageCache:
    """Projects' usage as last summed in this process, each with the links counted in
    the same snapshot, under the registry generation it was summed in (see the module's
    docstring for why that is exact). A project's entry is used only while the generation
    stands and its links number the same; the generation is asked before and after each
    read, and a read that saw it move answers from sums alone.

    The one change it could miss: a read that runs after a removal of blob links committed
    and before that removal moves the generation (microseconds on one machine, a Redis
    round trip between instances), when exactly as many blob links were added meanwhile,
    answers the usage from before both. The removal's own request is unanswered then, and
    the next read after it has moved the generation sees both."""

    def __init__(self, changes: ChangeCounter, max_entries: int = 10_000):
        self._changes = changes
        self._max = max_entries
        self._entries: OrderedDict[int, _Usage] = OrderedDict()
        self._generation: int | None = None

    async def generation(self) -> int | None:
        """The registry's generation now; what was remembered under another is dropped."""
        generation = await self._changes.current()
        if generation is None or generation != self._generation:
            self._entries.clear()
            self._generation = generation
        return generation

    def remembered(self, project_ids: Collection[int] | None) -> dict[int, _Usage]:
        if project_ids is None:
            return dict(self._entries)
        found = {p: self._entries[p] for p in project_ids if p in self._entries}
        for project_id in found:
            self._entries.move_to_end(project_id)
        return found

    def remember(self, generation: int, summed: Mapping[int, _Usage]) -> None:
        if generation != self._generation:
            return
        for project_id, usage in summed.items():
            self._entries[project_id] = usage
            self._entries.move_to_end(project_id)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)


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


def check_storage(tx: Tx, repo: str, digest: str, size: int, default_limit: int, project_id: int | None = None) -> None:
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
    """The quota rows, with usage computed on read (remembered in `usage` when given);
    missing rows get `default_limit`."""

    def __init__(self, engine: AsyncEngine, default_limit: int = UNLIMITED, usage: UsageCache | None = None):
        super().__init__(engine)
        self._default_limit = default_limit
        self._usage = usage

    def _query(self) -> Select[Any]:
        return (
            select(quotas, projects.c.name, users.c.username.label("owner_name"))
            .join(projects, projects.c.project_id == quotas.c.project_id)
            .join(users, users.c.user_id == projects.c.owner_id)
        )

    async def _add_missing_rows(self, project_ids: Collection[int] | None = None) -> None:
        missing = select(projects.c.project_id).where(~exists().where(quotas.c.project_id == projects.c.project_id))
        if project_ids is not None:
            missing = missing.where(projects.c.project_id.in_(list(project_ids)))
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

    async def storage_used(self, project_ids: Collection[int] | None) -> dict[int, int]:
        """Bytes each project holds (None: every project), by project id."""
        cache = self._usage
        if cache is None:
            return (await self._read_tx(_storage_used, project_ids, {}))[0]
        before = await cache.generation()
        if before is None:
            return (await self._read_tx(_storage_used, project_ids, {}))[0]
        used, summed = await self._read_tx(_storage_used, project_ids, cache.remembered(project_ids))
        if await cache.generation() != before:
            # A change committed while this read ran, perhaps one whose blob links the
            # count could not tell from the links it removed: sum everything.
            return (await self._read_tx(_storage_used, project_ids, {}))[0]
        cache.remember(before, summed)
        return used

    async def get_quota(self, project_id: int) -> Quota | None:
        return (await self.quotas_of([project_id])).get(project_id)

    async def quotas_of(self, project_ids: Collection[int]) -> dict[int, Quota]:
        if not project_ids:
            return {}
        await self._add_missing_rows(project_ids)
        async with self._read() as conn:
            rows = (await conn.execute(self._query().where(quotas.c.project_id.in_(list(project_ids))))).all()
        if not rows:
            return {}
        used = await self.storage_used([r.project_id for r in rows])
        return {r.project_id: _quota(r, used.get(r.project_id, 0)) for r in rows}

    async def list_quotas(self, query: QuotaQuery, offset: int, limit: int) -> Page[Quota]:
        one = None if query.project_id is None else [query.project_id]
        await self._add_missing_rows(one)
        stmt = self._query()
        if query.project_id is not None:
            stmt = stmt.where(quotas.c.project_id == query.project_id)
        if any(name == "used.storage" for name, _ in query.sort):
            # Usage is not a column: compute it for every project, then sort and page here.
            async with self._read() as conn:
                rows = (await conn.execute(stmt)).all()
            used = await self.storage_used(one)
            found = [_quota(r, used.get(r.project_id, 0)) for r in rows]
            found.sort(key=lambda q: q.project_id)
            for name, descending in reversed(query.sort):
                found.sort(
                    key=lambda q: q.storage_used if name == "used.storage" else q.storage_limit,
                    reverse=descending,
                )
            return Page(found[offset : offset + limit], len(found))
        async with self._read() as conn:
            total = int((await conn.execute(select(func.count()).select_from(stmt.subquery()))).scalar() or 0)
            order = [quotas.c.storage_limit.desc() if d else quotas.c.storage_limit for _, d in query.sort]
            rows = (await conn.execute(stmt.order_by(*order, quotas.c.project_id).offset(offset).limit(limit))).all()
        used = await self.storage_used([r.project_id for r in rows]) if rows else {}
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
