"""The audit trail of registry operations (push, pull, delete), and pull statistics.

Recording must not slow the data plane: events are queued in memory and written in
batches, one transaction per batch, by a background task (and on shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime

from portside.meta.accounts import AuditEntry, AuditStore, ProjectStore
from portside.meta.stores import RepoStore
from portside.oci.digest import Digest

__all__ = ["RegistryEvent", "AuditTrail"]

log = logging.getLogger("portside.audit")

_FLUSH_SECONDS = 1.0
_BATCH = 500


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    operation: str  # "create" (push), "pull", "delete"
    resource_type: str  # "artifact", "tag" or "blob"
    repository: str
    reference: str  # tag or digest
    digest: Digest | None  # the manifest pulled, for pull statistics
    actor: str
    client: str
    when: datetime


class AuditTrail:
    def __init__(self, audit: AuditStore, projects: ProjectStore, repos: RepoStore):
        self._audit = audit
        self._projects = projects
        self._repos = repos
        self._queue: list[RegistryEvent] = []
        self._task: asyncio.Task[None] | None = None

    def emit(self, event: RegistryEvent) -> None:
        self._queue.append(event)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while self._queue:
            await asyncio.sleep(_FLUSH_SECONDS)
            await self.flush()

    async def close(self) -> None:
        """Stop the background writer and write what is queued (at shutdown)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:_BATCH], self._queue[_BATCH:]
            try:
                await self._write(batch)
            except Exception:  # the trail must never break the registry; say so loudly
                log.exception("could not record %d audit events", len(batch))

    async def _write(self, batch: list[RegistryEvent]) -> None:
        # Project ids are looked up once per batch, not kept: a project can be deleted and
        # made again under a new id.
        project_ids: dict[str, int | None] = {}
        for name in {e.repository.split("/", 1)[0] for e in batch}:
            project = await self._projects.get_project(name)
            project_ids[name] = project.project_id if project else None
        entries = [
            AuditEntry(
                project_id=project_ids[e.repository.split("/", 1)[0]],
                username=e.actor,
                operation=e.operation,
                resource_type=e.resource_type,
                resource=f"{e.repository}@{e.reference}" if ":" in e.reference else f"{e.repository}:{e.reference}",
                client=e.client,
                success=True,
                op_time=e.when,
            )
            for e in batch
        ]
        await self._audit.record_many(entries)
        pulls = [(e.repository, e.digest, e.when) for e in batch if e.operation == "pull" and e.digest is not None]
        if pulls:
            await self._repos.record_pulls(pulls)
