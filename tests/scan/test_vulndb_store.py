"""The vulnerability store on SQLite and PostgreSQL: replacing a source, incremental
updates, look-ups by name, generations; and the speed of a 100k-record import."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portside.meta.sql.engine import create_engine
from portside.meta.sql.migrate import upgrade
from portside.meta.sql.vulndb import SqlVulnerabilities
from portside.meta.vulndb import Advisory, AffectedPackage, ImportedSource
from portside.scan.vulndb.records import fixed_range
from portside.scan.vulndb.status import database_status
from tests.stacks import Backing


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}"
        return
    backing: Backing = request.getfixturevalue("backing")  # the session's PostgreSQL cluster
    pg = backing.postgres
    name = f"vulndb_{uuid.uuid4().hex[:12]}"
    pg.psql(f'CREATE DATABASE "{name}"')
    yield pg.url(name).replace("postgresql://", "postgresql+asyncpg://", 1)
    pg.psql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', check=False)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[SqlVulnerabilities]:
    engine = create_engine(database_url, pool_size=2)
    await upgrade(engine)
    yield SqlVulnerabilities(engine)
    await engine.dispose()


def _advisory(advisory_id: str, package: str, fixed: str, *, modified: datetime | None = None) -> Advisory:
    return Advisory(
        id=advisory_id,
        affected=(AffectedPackage("PyPI", package, "", fixed_range(fixed), "[]", fixed),),
        aliases=(f"CVE-{advisory_id}",),
        summary=f"{advisory_id} in {package}",
        references=("https://example.invalid/a",),
        cwe_ids=("CWE-79",),
        modified=modified,
    )


async def test_replace_source_swaps_every_record(store: SqlVulnerabilities) -> None:
    when = datetime(2024, 5, 1, tzinfo=UTC)
    first = await store.replace_source(
        ImportedSource("osv:PyPI", "/data/a.zip"),
        [_advisory("A-1", "django", "3.2.1", modified=when), _advisory("A-2", "requests", "2.20.0")],
    )
    assert (first.record_count, first.modified, first.generation) == (2, when, 1)
    second = await store.replace_source(ImportedSource("osv:PyPI", "/data/b.zip"), [_advisory("A-3", "django", "4.0")])
    assert (second.record_count, second.generation, second.modified) == (1, 2, None)
    found = await store.candidates("PyPI", [""], ["django", "requests"])
    assert [(c.advisory.id, c.entry.package, c.entry.fixed) for c in found] == [("A-3", "django", "4.0")]
    assert found[0].advisory.aliases == ("CVE-A-3",)
    assert found[0].advisory.cwe_ids == ("CWE-79",)
    assert await store.generation() == 2


async def test_sources_are_independent(store: SqlVulnerabilities) -> None:
    await store.replace_source(ImportedSource("osv:PyPI", "x"), [_advisory("A-1", "django", "1")])
    await store.replace_source(ImportedSource("osv:npm", "y"), [_advisory("B-1", "django", "1")])
    await store.replace_source(ImportedSource("osv:npm", "y"), [])
    assert [c.source for c in await store.candidates("PyPI", [""], ["django"])] == ["osv:PyPI"]
    assert [(s.name, s.record_count) for s in await store.sources()] == [("osv:PyPI", 1), ("osv:npm", 0)]


async def test_lookup_filters_release_and_withdrawn(store: SqlVulnerabilities) -> None:
    entry = AffectedPackage("Debian", "zlib", "bookworm", fixed_range(None))
    default = AffectedPackage("Debian", "zlib", "", fixed_range("1:1.3"))
    other = AffectedPackage("Debian", "zlib", "bullseye", fixed_range(None))
    await store.replace_source(
        ImportedSource("debian-tracker", "t"),
        [
            Advisory("CVE-1", (entry, default, other)),
            Advisory("CVE-2", (entry,), withdrawn=True),
        ],
    )
    found = await store.candidates("Debian", ["bookworm", ""], ["zlib"])
    assert sorted((c.advisory.id, c.entry.release) for c in found) == [("CVE-1", ""), ("CVE-1", "bookworm")]


async def test_update_source_replaces_and_removes_only_the_named(store: SqlVulnerabilities) -> None:
    old = datetime(2024, 1, 1, tzinfo=UTC)
    await store.replace_source(
        ImportedSource("osv:PyPI", "u"),
        [_advisory("A-1", "django", "1", modified=old), _advisory("A-2", "django", "2", modified=old)],
    )
    newer = old + timedelta(days=3)
    record = await store.update_source(
        ImportedSource("osv:PyPI", "u"),
        [_advisory("A-1", "django", "1.5", modified=newer), _advisory("A-9", "pip", "9", modified=newer)],
        removed=["A-2"],
    )
    assert (record.record_count, record.modified, record.generation) == (2, newer, 2)
    found = await store.candidates("PyPI", [""], ["django", "pip"])
    assert sorted((c.advisory.id, c.entry.fixed) for c in found) == [("A-1", "1.5"), ("A-9", "9")]
    with pytest.raises(LookupError):
        await store.update_source(ImportedSource("osv:npm", "u"), [])


async def test_touch_keeps_records_and_refreshes_the_check(store: SqlVulnerabilities) -> None:
    await store.replace_source(ImportedSource("osv:Go", "http://h/all.zip", '"e1"', "Mon"), [_advisory("G", "x", "1")])
    before = (await store.sources())[0]
    await store.touch_source("osv:Go", '"e2"', "Tue")
    after = (await store.sources())[0]
    assert (after.etag, after.last_modified, after.record_count, after.generation) == ('"e2"', "Tue", 1, 1)
    assert after.imported_at >= before.imported_at


async def test_status_counts_and_staleness(store: SqlVulnerabilities) -> None:
    empty = await database_status(store)
    assert empty.stale and empty.updated_at is None and empty.sources == ()
    await store.replace_source(ImportedSource("osv:PyPI", "p"), [_advisory("A", "x", "1")])
    fresh = await database_status(store, max_age_seconds=3600)
    assert not fresh.stale and fresh.record_count == 1 and fresh.generation == 1
    later = await database_status(store, max_age_seconds=3600, now=datetime.now(UTC) + timedelta(hours=2))
    assert later.stale and later.sources[0].stale
    assert later.as_json()["sources"][0]["name"] == "osv:PyPI"  # type: ignore[index]


async def test_a_hundred_thousand_records_import_in_seconds(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'meta.db'}")
    try:
        await upgrade(engine)
        store = SqlVulnerabilities(engine)
        advisories = [_advisory(f"PYSEC-{n}", f"package-{n % 5000}", f"{n}.0") for n in range(100_000)]
        started = time.perf_counter()
        record = await store.replace_source(ImportedSource("osv:PyPI", "synthetic"), advisories)
        first = time.perf_counter() - started
        started = time.perf_counter()
        await store.replace_source(ImportedSource("osv:PyPI", "synthetic"), advisories)  # over existing rows
        second = time.perf_counter() - started
        assert record.record_count == 100_000
        print(f"100k advisories: first import {first:.1f}s, replacing them {second:.1f}s")
        assert first < 20 and second < 20  # measured: 4-5 s each on a 2-core machine
        found = await store.candidates("PyPI", [""], ["package-7"])
        assert len(found) == 20
    finally:
        await engine.dispose()
