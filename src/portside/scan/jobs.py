"""Scans in the background: a worker per process takes Pending reports from the store's queue,
at most `concurrency` at once, and runs them; and the job runner's kinds built on it:
scan-all (queue every artifact) and re-matching (match stored inventories again when the
vulnerability database moved, reading no layers).

A report a worker holds carries its heartbeat; one whose process died is taken again by the
next claim after its lease, so a restart resumes the queue. The request path only queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from portside.meta.scans import ScanReport, ScanStore
from portside.scan.adapter import AdapterError
from portside.scan.service import NothingToScan, ScanOutcome, ScanService
from portside.upkeep.jobs import Journal as JobJournal
from portside.upkeep.jobs import Stopped

__all__ = ["ScanWorker", "ScanJournal", "rematch_job", "scan_all_job"]

log = logging.getLogger("portside.scan")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ScanJournal:
    """A report's log lines and stop flag, written with each heartbeat."""

    def __init__(self, store: ScanStore, report_id: str, beat_seconds: float):
        self._store = store
        self._report_id = report_id
        self._beat_seconds = beat_seconds
        self._pending: list[str] = []
        self._beaten_at = time.monotonic()
        self.stop_requested = False

    def info(self, message: str) -> None:
        self._pending.append(f"{_stamp()} [INFO] {message}\n")

    def error(self, message: str) -> None:
        self._pending.append(f"{_stamp()} [ERROR] {message}\n")

    def take(self) -> str:
        text, self._pending = "".join(self._pending), []
        return text

    async def beat(self) -> None:
        self._beaten_at = time.monotonic()
        if await self._store.beat(self._report_id, self.take()):
            self.stop_requested = True

    async def checkpoint(self) -> None:
        if time.monotonic() - self._beaten_at >= self._beat_seconds:
            await self.beat()
        if self.stop_requested:
            raise Stopped


# A scan run by an external adapter: the outcome, or None when the built-in scanner runs it.
ExternalScan = Callable[[ScanReport, "ScanJournal"], Awaitable[ScanOutcome | None]]


class ScanWorker:
    """Runs queued scans, `concurrency` at a time in this process."""

    def __init__(
        self,
        store: ScanStore,
        service: ScanService,
        *,
        concurrency: int = 1,
        lease_seconds: float = 300.0,
        beat_seconds: float = 15.0,
        on_finished: Callable[[ScanReport, str], Awaitable[None]] | None = None,
    ):
        self._store = store
        self._service = service
        self._slots = asyncio.Semaphore(max(1, concurrency))
        self._lease = timedelta(seconds=lease_seconds)
        self._beat_seconds = beat_seconds
        self._on_finished = on_finished
        self._running: set[asyncio.Task[None]] = set()
        self._draining: asyncio.Task[None] | None = None
        # Set by wiring once the scanner registry exists: a scan whose project chose an
        # external adapter goes there (it answers None for the built-in scanner's scans).
        self.external: ExternalScan | None = None

    def wake(self) -> None:
        """Look for queued scans now (after a request queued one), in the background."""
        if self._draining is None or self._draining.done():
            self._draining = asyncio.create_task(self.drain(), name="scan queue")

    async def drain(self) -> None:
        """Start queued scans while slots are free (the periodic poll, and `wake`)."""
        while True:
            await self._slots.acquire()
            try:
                report = await self._store.claim(datetime.now(UTC) - self._lease)
            except BaseException:
                self._slots.release()
                raise
            if report is None:
                self._slots.release()
                return
            task = asyncio.create_task(self._run(report), name=f"scan {report.id}")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, report: ScanReport) -> None:
        journal = ScanJournal(self._store, report.id, self._beat_seconds)
        beating = asyncio.create_task(self._beat(journal))
        status, sbom_digest = "Error", None
        journal.info(f"{report.scan_type} scan of {report.repository}@{report.digest} started ({report.trigger})")
        try:
            outcome = await self.external(report, journal) if self.external is not None else None
            if outcome is None:
                outcome = await self._service.scan(
                    report.repository, report.digest, journal, sbom=report.scan_type == "sbom"
                )
            sbom_digest = outcome.sbom_digest
            status = "Success"
            journal.info(f"finished: {outcome.summary.total} findings")
        except Stopped:
            status = "Stopped"
            journal.info("stopped on request")
        except NothingToScan as exc:
            journal.error(str(exc))
        except AdapterError as exc:
            journal.error(f"the scanner adapter failed: {exc}")
        except asyncio.CancelledError:
            # The server is shutting down: left Running, the next claim after the lease resumes it.
            beating.cancel()
            raise
        except Exception as exc:
            log.exception("scan %s failed", report.id)
            journal.error(f"failed: {exc!r}")
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            self._slots.release()
        await self._store.finish(report.id, status, journal.take(), sbom_digest)
        if self._on_finished is not None:
            await self._on_finished(report, status)

    async def _beat(self, journal: ScanJournal) -> None:
        while True:
            await asyncio.sleep(self._beat_seconds)
            try:
                await journal.beat()
            except Exception:
                log.warning("heartbeat of scan %s failed", journal, exc_info=True)

    async def wait(self) -> None:
        """Until the queue is empty and this worker's scans have ended (tests, the CLI)."""
        while True:
            if self._draining is not None:
                await asyncio.gather(self._draining, return_exceptions=True)
            await self.drain()
            if not self._running:
                return
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def close(self) -> None:
        tasks = [*self._running, *([self._draining] if self._draining is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def rematch_job(
    store: ScanStore, service: ScanService, generation: Callable[[], Awaitable[int]], batch: int = 200
) -> Callable[[Mapping[str, Any], JobJournal], Awaitable[Mapping[str, Any]]]:
    """The job runner's `scan_rematch`: every stored inventory not matched against the
    database's current generation is matched again."""

    async def job(_parameters: Mapping[str, Any], journal: JobJournal) -> Mapping[str, Any]:
        current = await generation()
        matched, after = 0, None
        while digests := await store.stale_inventories(current, after, batch):
            for digest in digests:
                await service.rematch(digest, current)
                matched += 1
            after = digests[-1]
            await journal.checkpoint()
        journal.info(f"matched {matched} inventories again against database generation {current}")
        return {"matched": matched, "generation": current}

    return job


def scan_all_job(
    store: ScanStore,
    worker: ScanWorker,
    batch: int = 500,
) -> Callable[[Mapping[str, Any], JobJournal], Awaitable[Mapping[str, Any]]]:
    """The job runner's `scan_all`: queue a scan of every artifact (that the queue does not
    hold already), then let the workers take them."""

    async def job(_parameters: Mapping[str, Any], journal: JobJournal) -> Mapping[str, Any]:
        queued, after = 0, None
        while found := await store.top_artifacts(after, batch):
            for repository, digest in found:
                if await store.enqueue(repository, digest, "vulnerability", "Schedule") is not None:
                    queued += 1
            after = found[-1]
            worker.wake()
            await journal.checkpoint()
        journal.info(f"queued {queued} scans")
        return {"queued": queued}

    return job
