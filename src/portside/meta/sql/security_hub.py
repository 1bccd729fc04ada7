"""The security hub's list of findings on SQLAlchemy Core (`ScanStore.list_findings`).

One row per finding per repository that holds its manifest (an image pushed to two
repositories shows in both, as Harbor's list does). The conditions on tags and digests
reach an index's children, since an index is scanned as its child manifests: the tag
`latest` of a multi-platform image finds the findings of each platform's manifest.

The total is counted over a bounded subquery when asked to (Harbor's `tune_count`), so a
registry with millions of findings answers the first page without counting them all.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, and_, desc, false, func, or_, select, true
from sqlalchemy.sql import Select

from portside.errors import BadRequest
from portside.meta.accounts import Page
from portside.meta.criteria import Criteria, Match
from portside.meta.scans import HubFinding
from portside.meta.sql.criteria import Fields, conditions, like_escape
from portside.meta.sql.engine import SqlBase
from portside.meta.sql.scan_rows import finding, scanned_by
from portside.meta.sql.schema import manifest_refs, repo_manifests, repositories, scan_findings, scan_summaries, tags

__all__ = ["SqlSecurityHub"]


def _texts(field: str, match: Match, kinds: tuple[str, ...] = ("exact", "any")) -> list[str]:
    if match.kind not in kinds:
        raise BadRequest(f"{field} takes {' or '.join(kinds)} conditions, not {match.kind}")
    return [str(v) for v in match.values if v is not None]


def _vulnerability(match: Match) -> ColumnElement[bool]:
    ids = _texts("cve_id", match)
    return or_(scan_findings.c.vulnerability_id.in_(ids), scan_findings.c.advisory_id.in_(ids)) if ids else false()


def _score(match: Match) -> ColumnElement[bool]:
    try:
        values = [None if v is None else float(str(v)) for v in match.values]
    except ValueError:
        raise BadRequest(f"cvss_score_v3 takes numbers, not {match.values!r}") from None
    score = scan_findings.c.cvss_score
    if match.kind == "range":
        low, high = values
        return and_(
            score.is_not(None),
            *([score >= low] if low is not None else []),
            *([score <= high] if high is not None else []),
        )
    if match.kind in ("exact", "any"):
        return score.in_([v for v in values if v is not None])
    raise BadRequest(f"cvss_score_v3 takes a range ([7~10]) or a number, not a {match.kind} condition")


def _fixed(match: Match) -> ColumnElement[bool]:
    wanted = {str(v).lower() == "true" for v in _texts("status", match)}
    known = scan_findings.c.fixed_version.is_not(None)
    if wanted == {True}:
        return known
    if wanted == {False}:
        return ~known
    return true() if wanted else false()


def _project(match: Match) -> ColumnElement[bool]:
    names = _texts("project", match)
    return or_(false(), *(repositories.c.name.startswith(name + "/", autoescape=True) for name in names))


def _package(match: Match) -> ColumnElement[bool]:
    if match.kind == "fuzzy":
        return scan_findings.c.package.ilike(f"%{like_escape(str(match.value or ''))}%", escape="\\")
    names = _texts("package", match, ("exact", "any", "fuzzy"))
    return scan_findings.c.package.in_(names) if names else false()


def _with_children(digests: Any) -> ColumnElement[bool]:
    """The finding's manifest is one of `digests` (a subquery or a list), or a child of one."""
    children = select(manifest_refs.c.child).where(
        manifest_refs.c.parent.in_(digests), manifest_refs.c.kind == "manifest"
    )
    return or_(repo_manifests.c.digest.in_(digests), repo_manifests.c.digest.in_(children))


def _tag(match: Match) -> ColumnElement[bool]:
    names = _texts("tag", match)
    if not names:
        return false()
    # Tags of the very repository the row is in: the same digest tagged elsewhere is not it.
    named = (
        select(tags.c.digest)
        .where(tags.c.repo_id == repo_manifests.c.repo_id, tags.c.name.in_(names))
        .correlate(repo_manifests)
    )
    return _with_children(named)


def _digest(match: Match) -> ColumnElement[bool]:
    digests = _texts("digest", match)
    return _with_children(digests) if digests else false()


_FIELDS: Fields = {
    "vulnerability": _vulnerability,
    "severity": scan_findings.c.severity,
    "cvss_score": _score,
    "fixed": _fixed,
    "repository": repositories.c.name,
    "project": _project,
    "package": _package,
    "tag": _tag,
    "digest": _digest,
}

_HELD = (
    scan_findings.join(repo_manifests, repo_manifests.c.digest == scan_findings.c.digest)
    .join(repositories, repositories.c.id == repo_manifests.c.repo_id)
    .outerjoin(scan_summaries, scan_summaries.c.digest == scan_findings.c.digest)
)
_COLUMNS = tuple(c for c in scan_findings.c if c.name != "id")


class SqlSecurityHub(SqlBase):
    async def list_findings(
        self, criteria: Criteria, offset: int, limit: int, count_limit: int | None = None, with_tags: bool = False
    ) -> Page[HubFinding]:
        where = conditions(_FIELDS, criteria)
        page: Select[Any] = (
            select(
                repositories.c.id.label("repo_id"),
                repositories.c.name.label("repository"),
                scan_summaries.c.scanner,
                *_COLUMNS,
            )
            .select_from(_HELD)
            .where(*where)
            .order_by(
                desc(scan_findings.c.severity),
                desc(func.coalesce(scan_findings.c.cvss_score, -1.0)),
                self._bytewise(repositories.c.name),
                scan_findings.c.digest,
                scan_findings.c.id,
            )
            .offset(offset)
            .limit(limit)
        )
        counted = select(scan_findings.c.id).select_from(_HELD).where(*where)
        if count_limit is not None:
            counted = counted.limit(count_limit + 1)
        async with self._read() as conn:
            total = await conn.scalar(select(func.count()).select_from(counted.subquery()))
            rows = (await conn.execute(page)).all()
            tagged = await self._tags_of(conn, [(row.repo_id, row.digest) for row in rows]) if with_tags else {}
        return Page(
            [
                HubFinding(
                    row.repository,
                    row.digest,
                    finding(row),
                    tagged.get((row.repo_id, row.digest), ()),
                    scanned_by(row.scanner),
                )
                for row in rows
            ],
            total or 0,
        )

    async def _tags_of(self, conn: Any, held: Sequence[tuple[int, str]]) -> dict[tuple[int, str], tuple[str, ...]]:
        """The tags of each (repository id, digest) in that repository: the digest's own and
        those of the indexes holding it, by name."""
        if not held:
            return {}
        digests = sorted({digest for _, digest in held})
        parents: dict[str, set[str]] = {digest: {digest} for digest in digests}
        refs = await conn.execute(
            select(manifest_refs.c.parent, manifest_refs.c.child).where(
                manifest_refs.c.child.in_(digests), manifest_refs.c.kind == "manifest"
            )
        )
        for parent, child in refs.all():
            parents[child].add(parent)
        reachable = sorted(set().union(*parents.values()))
        repo_ids = sorted({repo_id for repo_id, _ in held})
        named: dict[tuple[int, str], list[str]] = {}
        found = await conn.execute(
            select(tags.c.repo_id, tags.c.digest, tags.c.name).where(
                tags.c.repo_id.in_(repo_ids), tags.c.digest.in_(reachable)
            )
        )
        for repo_id, digest, name in found.all():
            named.setdefault((repo_id, digest), []).append(name)
        return {
            (repo_id, digest): tuple(sorted({n for d in parents[digest] for n in named.get((repo_id, d), ())}))
            for repo_id, digest in held
        }
