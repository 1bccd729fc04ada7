"""The scan queue on a real database: one active report per artifact and type, claims that
exactly one of several racing workers wins, a report whose worker died taken again after
its lease, stop requests, and the summaries an artifact list reads in one query."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from portside import wiring
from portside.config import load_settings
from portside.meta.scans import ScannedBy
from portside.meta.sql.engine import create_engine
from portside.meta.sql.scans import SqlScans
from portside.scan.service import summarise
from tests.scan.shared import stored_finding


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlScans]:
    settings = load_settings(data_dir=tmp_path, log_requests=False)
    await wiring.upgrade_database(settings)
    engine = create_engine(settings.sqlalchemy_url, pool_size=4, inline=False)
    try:
        yield SqlScans(engine)
    finally:
        await engine.dispose()


DIGEST = "sha256:" + "ab" * 32


_finding = stored_finding


async def test_one_active_report_and_one_winner(store: SqlScans) -> None:
    first = await store.enqueue("p/app", DIGEST, "vulnerability", "Manual")
    assert first is not None and first.status == "Pending"
    assert await store.enqueue("p/app", DIGEST, "vulnerability", "Manual") is None
    # Another type, or the same image in another repository, is a scan of its own.
    assert await store.enqueue("p/app", DIGEST, "sbom", "Manual") is not None
    assert await store.enqueue("q/app", DIGEST, "vulnerability", "Manual") is not None

    lease = datetime.now(UTC) - timedelta(minutes=5)
    claimed = await asyncio.gather(*(store.claim(lease) for _ in range(6)))
    taken = [c for c in claimed if c is not None]
    # Three reports queued: each taken exactly once, however many workers raced.
    assert sorted(c.id for c in taken) == sorted({c.id for c in taken})
    assert len(taken) == 3
    assert all(c.status == "Running" for c in taken)
    assert await store.claim(lease) is None


async def test_a_dead_workers_scan_is_taken_again(store: SqlScans) -> None:
    queued = await store.enqueue("p/app", DIGEST, "vulnerability", "Push")
    assert queued is not None
    running = await store.claim(datetime.now(UTC) - timedelta(minutes=5))
    assert running is not None and running.id == queued.id
    # Its worker still beats: nobody else may take it.
    assert not await store.beat(running.id, "a line\n")
    assert await store.claim(datetime.now(UTC) - timedelta(minutes=5)) is None
    # Its worker stopped beating a lease ago (the process died): the next claim resumes it.
    resumed = await store.claim(datetime.now(UTC) + timedelta(seconds=1))
    assert resumed is not None and resumed.id == queued.id and resumed.status == "Running"
    log = await store.report_log(queued.id)
    assert log is not None and "a line" in log and "taken again" in log


async def test_stop_and_summaries(store: SqlScans) -> None:
    pending = await store.enqueue("p/app", DIGEST, "vulnerability", "Manual")
    assert pending is not None
    stopped = await store.request_stop("p/app", DIGEST, "vulnerability")
    assert stopped is not None and stopped.status == "Stopped"
    assert await store.claim(datetime.now(UTC)) is None  # a stopped report is not run

    other = "sha256:" + "ef" * 32
    for digest in (DIGEST, other):
        report = await store.enqueue("p/app", digest, "vulnerability", "Manual")
        assert report is not None
        claimed = await store.claim(datetime.now(UTC) - timedelta(minutes=5))
        assert claimed is not None
        await store.finish(claimed.id, "Success")
    findings = [_finding("CVE-2018-18074", 4, "2.20.0"), _finding("CVE-2023-32681", 3, None)]
    await store.put_inventory(DIGEST, b"inventory")
    await store.replace_findings(DIGEST, findings, summarise(findings, generation=7))
    latest = await store.latest("p/app", [DIGEST, other], ["vulnerability", "sbom"])
    assert set(latest) == {(DIGEST, "vulnerability"), (other, "vulnerability")}
    # The newest report of each: the stopped one is older than the one that succeeded.
    assert latest[(DIGEST, "vulnerability")].status == "Success"
    summary = latest[(DIGEST, "vulnerability")].summary
    assert summary is not None
    assert (summary.total, summary.fixable, dict(summary.counts)) == (2, 1, {"High": 1, "Medium": 1})
    assert latest[(other, "vulnerability")].summary is None  # finished, never matched
    # Matched against generation 7: stale once the database is at 8.
    assert await store.stale_inventories(7, None, 10) == []
    assert await store.stale_inventories(8, None, 10) == [DIGEST]
    assert [f.vulnerability_id for f in await store.findings(DIGEST)] == ["CVE-2018-18074", "CVE-2023-32681"]
    # An external adapter's report replaces them: it names its scanner, and re-matching the
    # built-in inventory (which would replace the adapter's findings) passes it by.
    by = ScannedBy("registration-1", "Trivy", "Aqua Security", "0.50")
    await store.replace_findings(DIGEST, findings[:1], replace(summarise(findings[:1], generation=7), scanned_by=by))
    assert await store.stale_inventories(8, None, 10) == []
    external = await store.summary(DIGEST)
    assert external is not None and external.scanned_by == by and external.total == 1
    # The built-in scanner's next scan takes the artifact back, and with it re-matching.
    await store.replace_findings(DIGEST, findings, summarise(findings, generation=7))
    back = await store.summary(DIGEST)
    assert back is not None and back.scanned_by is None
    assert await store.stale_inventories(8, None, 10) == [DIGEST]
