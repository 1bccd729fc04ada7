"""Running upkeep work as recorded jobs: one of a kind at a time, logged, stoppable.

A job is a row (`meta.upkeep.JobStore`): Pending when created, Running once its handler
starts, then Success, Error or Stopped. The handler reports through a `JobLog`: lines it
logs reach the row in batches, and `checkpoint()` raises `Stopped` once someone asked the
job to stop (checked between steps, so a stop takes effect at the next one). While it
runs, a heartbeat refreshes the row; a job whose process died stops beating and the next
claim or poll ends it as Error, so it never blocks the next job for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from portside.errors import Conflict
from portside.meta.upkeep import JobRecord, JobStore

__all__ = ["JobHandler", "JobLog", "JobRunner", "Journal", "PlainJournal", "Stopped"]

log = logging.getLogger("portside.upkeep")

# What a handler gets (the job's parameters and its log) and returns (the result summary).
JobHandler = Callable[[Mapping[str, Any], "JobLog"], Awaitable[Mapping[str, Any]]]


class Stopped(Exception):
    """Someone asked the job to stop; raised by `JobLog.checkpoint`."""


class Journal(Protocol):
    """Where upkeep work reports progress, and learns between steps that it must stop."""

    def info(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    async def checkpoint(self) -> None:
        """Raise `Stopped` when the work was asked to stop."""


class PlainJournal:
    """A journal outside any job (periodic purges, tests): lines go to the process log
    (or a list), and nothing asks it to stop."""

    def __init__(self, lines: list[str] | None = None):
        self.lines = lines

    def info(self, message: str) -> None:
        self._add(logging.INFO, message)

    def warning(self, message: str) -> None:
        self._add(logging.WARNING, message)

    def _add(self, level: int, message: str) -> None:
        if self.lines is not None:
            self.lines.append(message)
        else:
            log.log(level, "%s", message)

    async def checkpoint(self) -> None:
        return None


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class JobLog:
    """A running job's log and stop flag. Lines are kept and written every
    `flush_seconds` (or at a checkpoint after that), not one statement per line."""

    def __init__(
        self,
        store: JobStore,
        job_id: int,
        flush_seconds: float = 1.0,
        echo: Callable[[str], None] | None = None,
    ):
        self._store = store
        self.job_id = job_id
        self._flush_seconds = flush_seconds
        self._echo = echo
        self._pending: list[str] = []
        self._flushed_at = time.monotonic()
        self._writing = asyncio.Lock()  # the heartbeat and the handler both flush
        self.stop_requested = False

    def info(self, message: str) -> None:
        self._add("INFO", message)

    def warning(self, message: str) -> None:
        self._add("WARNING", message)

    def error(self, message: str) -> None:
        self._add("ERROR", message)

    def _add(self, level: str, message: str) -> None:
        line = f"{_stamp()} [{level}] {message}"
        self._pending.append(line + "\n")
        if self._echo is not None:
            self._echo(line)

    def take(self) -> str:
        text, self._pending = "".join(self._pending), []
        self._flushed_at = time.monotonic()
        return text

    async def flush(self) -> None:
        """Write what was logged, and learn whether a stop was asked for."""
        async with self._writing:
            if await self._store.update_job(self.job_id, log=self.take()):
                self.stop_requested = True

    async def checkpoint(self) -> None:
        """Between steps: write the log when due; raise `Stopped` when asked to stop."""
        if time.monotonic() - self._flushed_at >= self._flush_seconds:
            await self.flush()
        if self.stop_requested:
            raise Stopped


class JobRunner:
    """Creates jobs and runs their handlers, in the background (API, schedules) or in the
    foreground (CLI). `lease_seconds`: a job not heard of for this long is abandoned.

    A handler registered as `family:*` runs every kind `family:<anything>`: one kind per
    owner (a user's CVE exports are `cve:u7`), so each owner has one such job at a time
    while others run theirs."""

    def __init__(
        self,
        store: JobStore,
        handlers: Mapping[str, JobHandler],
        *,
        checks: Mapping[str, Callable[[Mapping[str, Any]], object]] | None = None,
        lease_seconds: float = 300.0,
        heartbeat_seconds: float = 15.0,
        flush_seconds: float = 1.0,
    ):
        self._store = store
        self._handlers = dict(handlers)
        # Per kind: raises BadRequest for parameters its handler would refuse, before a job
        # is recorded for them.
        self._checks = dict(checks or {})
        self._lease = timedelta(seconds=lease_seconds)
        self._heartbeat = heartbeat_seconds
        self._flush = flush_seconds
        self._running: set[asyncio.Task[JobRecord]] = set()

    def add_handler(self, kind: str, handler: JobHandler) -> None:
        """Run jobs of `kind` (or of a `family:*`) with `handler`: for services built after
        the runner that start jobs through it."""
        self._handlers[kind] = handler

    @property
    def kinds(self) -> list[str]:
        return list(self._handlers)

    def handles(self, kind: str) -> bool:
        """Whether jobs of `kind` have a handler (its own, or its family's `family:*`)."""
        return self._handler(kind) is not None

    def check(self, kind: str, parameters: Mapping[str, Any]) -> None:
        """Raise BadRequest when a `kind` job would refuse `parameters`."""
        if kind in self._checks:
            self._checks[kind](parameters)

    def _handler(self, kind: str) -> JobHandler | None:
        found = self._handlers.get(kind)
        if found is None and ":" in kind:
            found = self._handlers.get(kind.partition(":")[0] + ":*")
        return found

    async def _create(self, kind: str, trigger: str, parameters: Mapping[str, Any]) -> JobRecord:
        if self._handler(kind) is None:
            raise ValueError(f"no handler for jobs of kind {kind!r}")
        self.check(kind, parameters)
        abandoned_before = datetime.now(UTC) - self._lease
        job = await self._store.create_job(kind, trigger, json.dumps(dict(parameters)), abandoned_before)
        if job is None:
            raise Conflict(f"a {kind} job is already running; wait for it or stop it first")
        return job

    async def start(self, kind: str, trigger: str, parameters: Mapping[str, Any]) -> JobRecord:
        """Create a job and run it in the background; raises `Conflict` while one of its
        kind is active."""
        job = await self._create(kind, trigger, parameters)
        task = asyncio.create_task(self._execute(job, None), name=f"{kind} job {job.id}")
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return job

    async def run(
        self,
        kind: str,
        trigger: str,
        parameters: Mapping[str, Any],
        echo: Callable[[str], None] | None = None,
    ) -> JobRecord:
        """Create a job and run it to the end here; `echo` sees each log line."""
        return await self._execute(await self._create(kind, trigger, parameters), echo)

    async def expire(self) -> int:
        """End jobs whose process stopped reporting (periodic)."""
        return await self._store.abandon_jobs(datetime.now(UTC) - self._lease)

    async def wait(self) -> None:
        """Until the jobs this runner started in the background have ended (tests)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def close(self) -> None:
        """Stop background jobs (server shutdown); each ends as Stopped."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*list(self._running), return_exceptions=True)

    async def _execute(self, job: JobRecord, echo: Callable[[str], None] | None) -> JobRecord:
        journal = JobLog(self._store, job.id, self._flush, echo)
        parameters = json.loads(job.parameters)
        journal.info(f"{job.kind} job {job.id} started ({job.trigger.lower()}), parameters {job.parameters}")
        beating = asyncio.create_task(self._beat(journal))
        status, result = "Error", None
        try:
            if await self._store.update_job(job.id, status="Running", log=journal.take()):
                raise Stopped
            handler = self._handler(job.kind)
            assert handler is not None  # checked when the job was created
            summary = await handler(parameters, journal)
            result = json.dumps(dict(summary))
            status = "Success"
            journal.info(f"{job.kind} job {job.id} finished")
        except Stopped:
            status = "Stopped"
            journal.warning(f"{job.kind} job {job.id} stopped on request")
        except asyncio.CancelledError:
            status = "Stopped"
            journal.warning(f"{job.kind} job {job.id} stopped: the server is shutting down")
            raise
        except Exception as exc:
            log.exception("%s job %s failed", job.kind, job.id)
            journal.error(f"{job.kind} job {job.id} failed: {exc!r}")
        finally:
            beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beating
            # Shielded: a shutdown must not leave the job Running (it would wait out its lease).
            await asyncio.shield(self._store.update_job(job.id, status=status, result=result, log=journal.take()))
        final = await self._store.get_job(job.id)
        assert final is not None
        return final

    async def _beat(self, journal: JobLog) -> None:
        while True:
            await asyncio.sleep(self._heartbeat)
            try:
                await journal.flush()
            except Exception:  # a missed beat is retried; the lease allows several
                log.warning("heartbeat of job %s failed", journal.job_id, exc_info=True)
