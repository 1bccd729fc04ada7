"""How current the vulnerability database is: per source, and overall.

A source's `imported_at` is when its data was last read or last confirmed unchanged at
its origin (an HTTP 304 counts). The database is as current as its least current
source, so `updated_at` is the oldest of them and `stale` says whether that is older than
the allowed age; an empty database is stale (nothing has ever been imported).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from portside.meta.vulndb import VulnerabilityStore

__all__ = ["DEFAULT_MAX_AGE", "DatabaseStatus", "SourceStatus", "database_status"]

DEFAULT_MAX_AGE = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class SourceStatus:
    name: str
    record_count: int
    imported_at: datetime
    newest_record: datetime | None  # the newest `modified` its records carry
    origin: str
    age_seconds: float
    stale: bool


@dataclass(frozen=True, slots=True)
class DatabaseStatus:
    sources: tuple[SourceStatus, ...]
    updated_at: datetime | None
    stale: bool
    generation: int
    max_age_seconds: float

    @property
    def record_count(self) -> int:
        return sum(source.record_count for source in self.sources)

    def as_json(self) -> dict[str, object]:
        return {
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "stale": self.stale,
            "generation": self.generation,
            "max_age_seconds": self.max_age_seconds,
            "record_count": self.record_count,
            "sources": [
                {
                    "name": s.name,
                    "record_count": s.record_count,
                    "imported_at": s.imported_at.isoformat(),
                    "newest_record": s.newest_record.isoformat() if s.newest_record else None,
                    "origin": s.origin,
                    "age_seconds": round(s.age_seconds),
                    "stale": s.stale,
                }
                for s in self.sources
            ],
        }


async def database_status(
    store: VulnerabilityStore, max_age_seconds: float = DEFAULT_MAX_AGE, now: datetime | None = None
) -> DatabaseStatus:
    when = now or datetime.now(UTC)
    records = await store.sources()
    sources = tuple(
        SourceStatus(
            name=record.name,
            record_count=record.record_count,
            imported_at=record.imported_at,
            newest_record=record.modified,
            origin=record.origin,
            age_seconds=(age := max(0.0, (when - record.imported_at).total_seconds())),
            stale=age > max_age_seconds,
        )
        for record in records
    )
    updated_at = min((source.imported_at for source in sources), default=None)
    return DatabaseStatus(
        sources=sources,
        updated_at=updated_at,
        stale=updated_at is None or any(source.stale for source in sources),
        generation=max((record.generation for record in records), default=0),
        max_age_seconds=max_age_seconds,
    )
