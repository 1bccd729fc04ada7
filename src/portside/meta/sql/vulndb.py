"""The vulnerability database on SQLAlchemy Core.

An import is one write transaction: the source's rows are deleted and written again with
executemany in batches, so 10^5 advisories take seconds (measured on 2 cores, SQLite:
about 4 s on the inline driver, 3.5 s on an engine with worker threads, which a server
should use so the import does not hold its event loop). The rows are built on a worker
thread before the transaction starts, so the database is locked only for the writing.
Lists (aliases, references, CWE ids) are JSON text; the matcher reads ranges itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select

from portside.meta.sql.direct import Tx
from portside.meta.sql.engine import SqlBase, now, utc
from portside.meta.sql.schema import vulndb_advisories, vulndb_affected, vulndb_sources
from portside.meta.vulndb import Advisory, AffectedPackage, Candidate, ImportedSource, SourceRecord

__all__ = ["SqlVulnerabilities"]

_BATCH = 5000
# Names per lookup statement: well under SQLite's and asyncpg's parameter limits.
_NAMES_PER_QUERY = 500


def _rows(source: str, advisories: Iterable[Advisory]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    advisory_rows: dict[str, dict[str, Any]] = {}
    affected_rows: list[dict[str, Any]] = []
    for advisory in advisories:
        if advisory.id in advisory_rows:
            # The same id twice in one source (a record shipped in two files): the later wins.
            affected_rows = [row for row in affected_rows if row["advisory_id"] != advisory.id]
        advisory_rows[advisory.id] = {
            "source": source,
            "advisory_id": advisory.id,
            "aliases": json.dumps(list(advisory.aliases)),
            "summary": advisory.summary,
            "details": advisory.details,
            "refs": json.dumps(list(advisory.references)),
            "cvss_vector": advisory.cvss_vector,
            "cvss_score": advisory.cvss_score,
            "cwe_ids": json.dumps(list(advisory.cwe_ids)),
            "severity": advisory.severity,
            "modified": advisory.modified,
            "withdrawn": advisory.withdrawn,
        }
        for entry in advisory.affected:
            affected_rows.append(
                {
                    "source": source,
                    "advisory_id": advisory.id,
                    "ecosystem": entry.ecosystem,
                    "package": entry.package,
                    "release": entry.release,
                    "ranges": entry.ranges,
                    "versions": entry.versions,
                    "fixed": entry.fixed,
                    "severity": entry.severity,
                    "not_affected": entry.not_affected,
                }
            )
    return list(advisory_rows.values()), affected_rows


def _batches(rows: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), _BATCH):
        yield rows[start : start + _BATCH]


def _newest(rows: list[dict[str, Any]]) -> datetime | None:
    stamps = [utc(row["modified"]) for row in rows if row["modified"] is not None]
    return max(stamps) if stamps else None


def _source(row: Sequence[Any]) -> SourceRecord:
    return SourceRecord(
        name=row[0],
        record_count=int(row[1]),
        imported_at=utc(row[2]),
        modified=utc(row[3]) if row[3] is not None else None,
        origin=row[4],
        etag=row[5],
        last_modified=row[6],
        generation=int(row[7]),
    )


_SOURCE_COLUMNS = (
    vulndb_sources.c.name,
    vulndb_sources.c.record_count,
    vulndb_sources.c.imported_at,
    vulndb_sources.c.modified,
    vulndb_sources.c.origin,
    vulndb_sources.c.etag,
    vulndb_sources.c.last_modified,
    vulndb_sources.c.generation,
)


def _next_generation(tx: Tx) -> int:
    return int(tx.scalar(select(func.coalesce(func.max(vulndb_sources.c.generation), 0)))) + 1


def _insert(tx: Tx, advisory_rows: list[dict[str, Any]], affected_rows: list[dict[str, Any]]) -> None:
    for batch in _batches(advisory_rows):
        tx.run(vulndb_advisories.insert(), batch)
    for batch in _batches(affected_rows):
        tx.run(vulndb_affected.insert(), batch)


def _write_source(
    tx: Tx, source: ImportedSource, count: int, modified: datetime | None, generation: int
) -> SourceRecord:
    tx.run(delete(vulndb_sources).where(vulndb_sources.c.name == source.name))
    record = SourceRecord(
        name=source.name,
        record_count=count,
        imported_at=now(),
        modified=modified,
        origin=source.origin,
        etag=source.etag,
        last_modified=source.last_modified,
        generation=generation,
    )
    tx.run(
        vulndb_sources.insert(),
        {
            "name": record.name,
            "record_count": record.record_count,
            "imported_at": record.imported_at,
            "modified": record.modified,
            "origin": record.origin,
            "etag": record.etag,
            "last_modified": record.last_modified,
            "generation": record.generation,
        },
    )
    return record


def _replace(
    tx: Tx, source: ImportedSource, advisory_rows: list[dict[str, Any]], affected_rows: list[dict[str, Any]]
) -> SourceRecord:
    generation = _next_generation(tx)
    tx.run(delete(vulndb_affected).where(vulndb_affected.c.source == source.name))
    tx.run(delete(vulndb_advisories).where(vulndb_advisories.c.source == source.name))
    _insert(tx, advisory_rows, affected_rows)
    return _write_source(tx, source, len(advisory_rows), _newest(advisory_rows), generation)


def _update(
    tx: Tx,
    source: ImportedSource,
    advisory_rows: list[dict[str, Any]],
    affected_rows: list[dict[str, Any]],
    removed: list[str],
) -> SourceRecord:
    existing = tx.first(select(*_SOURCE_COLUMNS).where(vulndb_sources.c.name == source.name))
    if existing is None:
        raise LookupError(f"no vulnerability source {source.name!r} to update")
    generation = _next_generation(tx)
    gone = sorted({row["advisory_id"] for row in advisory_rows} | set(removed))
    for start in range(0, len(gone), _NAMES_PER_QUERY):
        ids = gone[start : start + _NAMES_PER_QUERY]
        tx.run(
            delete(vulndb_affected).where(
                vulndb_affected.c.source == source.name, vulndb_affected.c.advisory_id.in_(ids)
            )
        )
        tx.run(
            delete(vulndb_advisories).where(
                vulndb_advisories.c.source == source.name, vulndb_advisories.c.advisory_id.in_(ids)
            )
        )
    _insert(tx, advisory_rows, affected_rows)
    count = int(
        tx.scalar(select(func.count()).select_from(vulndb_advisories).where(vulndb_advisories.c.source == source.name))
    )
    previous = _source(existing).modified
    newest = _newest(advisory_rows)
    modified = max((stamp for stamp in (previous, newest) if stamp is not None), default=None)
    return _write_source(tx, source, count, modified, generation)


def _loads(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


class SqlVulnerabilities(SqlBase):
    """VulnerabilityStore."""

    async def replace_source(self, source: ImportedSource, advisories: Iterable[Advisory]) -> SourceRecord:
        advisory_rows, affected_rows = await asyncio.to_thread(_rows, source.name, advisories)
        return await self._write_tx(_replace, source, advisory_rows, affected_rows, notify=False)

    async def update_source(
        self, source: ImportedSource, advisories: Iterable[Advisory], removed: Collection[str] = ()
    ) -> SourceRecord:
        advisory_rows, affected_rows = _rows(source.name, advisories)
        return await self._write_tx(_update, source, advisory_rows, affected_rows, list(removed), notify=False)

    async def touch_source(self, name: str, etag: str | None, last_modified: str | None) -> None:
        def body(tx: Tx) -> None:
            tx.run(
                vulndb_sources.update()
                .where(vulndb_sources.c.name == name)
                .values(etag=etag, last_modified=last_modified, imported_at=now())
            )

        await self._write_tx(body, notify=False)

    async def candidates(self, ecosystem: str, releases: Sequence[str], names: Collection[str]) -> list[Candidate]:
        a, e = vulndb_advisories, vulndb_affected
        found: list[Candidate] = []
        ordered = sorted(set(names))
        async with self._read() as conn:
            for start in range(0, len(ordered), _NAMES_PER_QUERY):
                statement = (
                    select(
                        e.c.source,
                        e.c.advisory_id,
                        e.c.package,
                        e.c.release,
                        e.c.ranges,
                        e.c.versions,
                        e.c.fixed,
                        e.c.severity,
                        e.c.not_affected,
                        a.c.aliases,
                        a.c.summary,
                        a.c.details,
                        a.c.refs,
                        a.c.cvss_vector,
                        a.c.cvss_score,
                        a.c.cwe_ids,
                        a.c.severity,
                        a.c.modified,
                    )
                    .join(a, and_(a.c.source == e.c.source, a.c.advisory_id == e.c.advisory_id))
                    .where(
                        e.c.ecosystem == ecosystem,
                        e.c.package.in_(ordered[start : start + _NAMES_PER_QUERY]),
                        e.c.release.in_(list(releases)),
                        a.c.withdrawn.is_(False),
                    )
                    .order_by(e.c.source, e.c.advisory_id, e.c.id)
                )
                for row in await conn.execute(statement):
                    entry = AffectedPackage(
                        ecosystem=ecosystem,
                        package=row[2],
                        release=row[3],
                        ranges=row[4],
                        versions=row[5],
                        fixed=row[6],
                        severity=row[7],
                        not_affected=bool(row[8]),
                    )
                    advisory = Advisory(
                        id=row[1],
                        affected=(entry,),
                        aliases=_loads(row[9]),
                        summary=row[10],
                        details=row[11],
                        references=_loads(row[12]),
                        cvss_vector=row[13],
                        cvss_score=row[14],
                        cwe_ids=_loads(row[15]),
                        severity=row[16],
                        modified=utc(row[17]) if row[17] is not None else None,
                    )
                    found.append(Candidate(source=row[0], advisory=advisory, entry=entry))
        return found

    async def sources(self) -> list[SourceRecord]:
        async with self._read() as conn:
            rows = (await conn.execute(select(*_SOURCE_COLUMNS).order_by(vulndb_sources.c.name))).all()
        return [_source(row) for row in rows]

    async def generation(self) -> int:
        async with self._read() as conn:
            value = (await conn.execute(select(func.coalesce(func.max(vulndb_sources.c.generation), 0)))).scalar()
        return int(value or 0)
