"""The event outbox on both databases: a finished scan writes Harbor's SCANNING_* event in
the transaction that finishes it, an image whose findings gain a Critical vulnerability
writes CRITICAL_VULNERABILITY_FOUND once (not again for the same one, nor for lesser ones),
ids only grow, and old events are pruned."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from portside.meta.scans import ScannedBy
from portside.meta.sql.events import SqlEvents
from portside.meta.sql.scans import SqlScans
from portside.scan.service import summarise
from tests.meta.conftest import Stores
from tests.scan.shared import stored_finding

DIGEST = "sha256:" + "ab" * 32


_finding = stored_finding


async def test_scans_ended_and_critical_findings_are_told_once(stores: Stores) -> None:
    scans, events = SqlScans(stores.engine), SqlEvents(stores.engine)
    assert await events.events_after(0, 10) == []

    outcomes = []
    for status in ("Success", "Error", "Stopped"):
        report = await scans.enqueue("lib/app", DIGEST, "vulnerability", "Manual")
        assert report is not None
        claimed = await scans.claim(datetime.now(UTC) - timedelta(minutes=5))
        assert claimed is not None and claimed.id == report.id
        await scans.finish(report.id, status)
        outcomes.append(report.id)
    told = await events.events_after(0, 10)
    assert [(e.event_type, e.repository, e.digest, e.payload["report_id"]) for e in told] == [
        ("SCANNING_COMPLETED", "lib/app", DIGEST, outcomes[0]),
        ("SCANNING_FAILED", "lib/app", DIGEST, outcomes[1]),
        ("SCANNING_STOPPED", "lib/app", DIGEST, outcomes[2]),
    ]
    assert told[0].payload["scan_type"] == "vulnerability"
    last = told[-1].id
    assert told[0].id < told[1].id < last

    # High findings only: nothing to tell. A Critical one appears: told, about the content.
    high = [_finding("CVE-2018-18074", 4)]
    await scans.replace_findings(DIGEST, high, summarise(high, 1))
    assert await events.events_after(last, 10) == []
    critical = [*high, _finding("CVE-2099-0001", 5)]
    await scans.replace_findings(DIGEST, critical, summarise(critical, 2))
    [found] = await events.events_after(last, 10)
    assert (found.event_type, found.repository, found.digest) == ("CRITICAL_VULNERABILITY_FOUND", None, DIGEST)
    assert found.payload == {"vulnerabilities": ["CVE-2099-0001"], "scanner": "built-in"}

    # Matched again with the same Critical finding: not told twice. A second one (here from
    # an adapter): told, naming only the new one and the scanner.
    await scans.replace_findings(DIGEST, critical, summarise(critical, 3))
    assert await events.events_after(found.id, 10) == []
    more = [*critical, _finding("CVE-2099-0002", 5)]
    by = ScannedBy("reg-1", "Trivy", "Aqua Security", "0.50")
    await scans.replace_findings(DIGEST, more, replace(summarise(more, 3), scanned_by=by))
    [second] = await events.events_after(found.id, 10)
    assert second.payload == {"vulnerabilities": ["CVE-2099-0002"], "scanner": "Trivy"}

    # Pruning removes what is older than the cut, and ids are never handed out again.
    assert await events.prune_events(datetime.now(UTC) - timedelta(days=1)) == 0
    assert await events.prune_events(datetime.now(UTC) + timedelta(seconds=1)) == 5
    assert await events.events_after(0, 10) == []
    await scans.replace_findings("sha256:" + "ef" * 32, more, summarise(more, 3))
    [after_prune] = await events.events_after(0, 10)
    assert after_prune.id > second.id
