"""Harbor's replication: policies (`/replication/policies`), the executions that run them
(`/replication/executions`), and their tasks and logs. System administrators only, as in
Harbor (and system robots given `replication-policy` or `replication` permissions).

A policy copies between this Portside and one stored registry: a push policy has no
source registry (`src_registry` is this Portside), a pull policy no destination. Its
triggers:

* manual: `start` makes an execution, lists what the filters select at the source in the
  background, and makes one task per artifact (with all its tags the filters admit);
* scheduled: the same when its six-field cron comes (`tick`, on every instance; claiming an
  occurrence is a conditional update, so one instance runs each);
* event_based (push policies): each push by tag here (`pushed`) and, with
  `replicate_deletion`, each deletion by digest (`deleted`) becomes an execution with its
  one task, written before the push is answered, so nothing pushed is lost even when the
  target is down: the task waits and is tried again (replication_runs.py) until it
  returns, and reads the artifact's tags when it runs, not when it was pushed.

`single_active_replication` refuses a manual run, and skips a scheduled one, while an
execution of the policy is in progress.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from portside.auth.principal import Principal
from portside.errors import BadRequest, Conflict, NotFound, PreconditionFailed
from portside.meta.accounts import Page
from portside.meta.registries import Endpoint
from portside.meta.replication import Execution, NewPolicy, NewTask, Policy, ReplicationStore, Task
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Paging
from portside.mgmt.registries import RegistryService
from portside.mgmt.replication_rules import (
    check_filters,
    config_media_type,
    destination,
    has_tag_filter,
    keeps_kind,
    keeps_repository,
    kept_tags,
)
from portside.mgmt.replication_runs import ReplicationWorker, Sides
from portside.oci.digest import Digest
from portside.oci.manifest import Manifest
from portside.remote.copy import Copier
from portside.remote.transfer import catalog
from portside.upkeep.schedule import next_run, valid_cron

__all__ = ["Candidate", "ReplicationService", "TRIGGERS"]

log = logging.getLogger("portside.replication")

TRIGGERS = ("manual", "scheduled", "event_based")
_NAME, _TEXT = 255, 65_535
_BATCH = 100  # tasks written per transaction while listing
_DRY_RUN_LIMIT = 10_000
LISTING_LEASE_SECONDS = 120.0
CATCH_UP_SECONDS = 5.0  # how often a round looks for targets that answer again


@dataclass(frozen=True, slots=True)
class Candidate:
    """An artifact a policy selects: where it is, its tags, where it goes."""

    src_repository: str
    digest: str
    tags: tuple[str, ...]
    dst_repository: str


class ReplicationService:
    def __init__(
        self,
        guard: Guard,
        store: ReplicationStore,
        registries: RegistryService,
        sides: Sides,
        worker: ReplicationWorker,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._guard = guard
        self._store = store
        self._registries = registries
        self._sides = sides
        self.worker = worker
        self._clock = clock
        self._listings: set[asyncio.Task[None]] = set()
        self._caught_up_at = float("-inf")
        registries.in_use.append(self._using)

    # --- policies --------------------------------------------------------------------

    async def list_policies(self, who: Principal, name: str | None, paging: Paging) -> Page[Policy]:
        self._guard.system(who, "replication-policy", "list")
        return await self._store.list_policies(name, paging.offset, paging.limit)

    async def get_policy(self, who: Principal, policy_id: int) -> Policy:
        self._guard.system(who, "replication-policy", "read")
        return await self._policy(policy_id)

    async def create_policy(self, who: Principal, new: NewPolicy) -> Policy:
        self._guard.system(who, "replication-policy", "create")
        checked = await self._checked(new)
        return await self._store.create_policy(checked, self._next_run(checked))

    async def update_policy(self, who: Principal, policy_id: int, new: NewPolicy) -> Policy:
        self._guard.system(who, "replication-policy", "update")
        checked = await self._checked(new)
        updated = await self._store.update_policy(policy_id, checked, self._next_run(checked))
        if updated is None:
            raise _no_policy(policy_id)
        return updated

    async def delete_policy(self, who: Principal, policy_id: int) -> None:
        self._guard.system(who, "replication-policy", "delete")
        if await self._store.active_execution(policy_id) is not None:
            raise PreconditionFailed(f"replication policy {policy_id} has an execution in progress: stop it first")
        if not await self._store.delete_policy(policy_id):
            raise _no_policy(policy_id)

    async def registry_names(self, policy: Policy) -> tuple[Endpoint | None, Endpoint | None]:
        """The stored registries of a policy's source and destination (None: this one)."""
        return await self._endpoint(policy.src_registry_id), await self._endpoint(policy.dest_registry_id)

    async def dry_run(self, who: Principal, policy_id: int) -> list[Candidate]:
        """What a run would copy now (at most 10,000 artifacts), without copying."""
        self._guard.system(who, "replication-policy", "read")
        policy = await self._policy(policy_id)
        found: list[Candidate] = []
        async for batch in self._candidates(policy):
            found.extend(batch)
            if len(found) >= _DRY_RUN_LIMIT:
                break
        return found[:_DRY_RUN_LIMIT]

    # --- executions ------------------------------------------------------------------

    async def start(self, who: Principal, policy_id: int) -> int:
        self._guard.system(who, "replication", "create")
        policy = await self._policy(policy_id)
        if not policy.enabled:
            raise PreconditionFailed(f"replication policy {policy.name} is disabled")
        if policy.single_active_replication and await self._store.active_execution(policy.id) is not None:
            raise Conflict(f"replication policy {policy.name} has an execution in progress (single_active_replication)")
        return await self._begin(policy, "manual")

    async def list_executions(
        self, who: Principal, policy_id: int | None, status: str | None, trigger: str | None, paging: Paging
    ) -> Page[Execution]:
        self._guard.system(who, "replication", "list")
        return await self._store.list_executions(policy_id, status, trigger, paging.offset, paging.limit)

    async def get_execution(self, who: Principal, execution_id: int) -> Execution:
        self._guard.system(who, "replication", "read")
        return await self._execution(execution_id)

    async def stop(self, who: Principal, execution_id: int) -> None:
        self._guard.system(who, "replication", "update")
        if not await self._store.stop_execution(execution_id):
            raise _no_execution(execution_id)

    async def tasks(self, who: Principal, execution_id: int, paging: Paging) -> Page[Task]:
        self._guard.system(who, "replication", "read")
        await self._execution(execution_id)
        return await self._store.list_tasks(execution_id, paging.offset, paging.limit)

    async def task_log(self, who: Principal, execution_id: int, task_id: int) -> str:
        self._guard.system(who, "replication", "read")
        found = await self._store.task_log(execution_id, task_id)
        if found is None:
            raise NotFound(f"execution {execution_id} has no task {task_id}")
        return found

    # --- triggers --------------------------------------------------------------------

    async def pushed(self, repository: str, manifest: Manifest) -> None:
        """A manifest was pushed here by tag (the after-push hook): an execution with one
        task for each event-based push policy that selects the repository, written before
        the push is answered."""
        await self._event(repository, str(manifest.digest), "copy")

    async def referred(self, repository: str, manifest: Manifest) -> None:
        """A referrer (a signature, an SBOM) was pushed here by digest: its subject is
        copied again, which brings its referrers, the new one among them."""
        if manifest.subject is not None:
            await self._event(repository, str(manifest.subject.digest), "copy")

    async def deleted(self, repository: str, digest: Digest) -> None:
        """A manifest was deleted here by digest: its deletion at the destinations of the
        event-based push policies that replicate deletions."""
        await self._event(repository, str(digest), "deletion")

    async def _event(self, repository: str, digest: str, operation: str) -> None:
        for policy in await self._store.event_policies():
            if policy.src_registry_id is not None or not keeps_repository(policy.filters, repository):
                continue  # event-based triggers follow this registry's own changes only
            if operation == "deletion" and not policy.replicate_deletion:
                continue
            try:
                target = destination(repository, policy.dest_namespace, policy.dest_namespace_replace_count)
            except BadRequest as error:
                log.warning("replication policy %s cannot name %s: %s", policy.name, repository, error)
                continue
            task = NewTask(repository, digest, target, operation=operation)
            await self._store.create_execution(policy.id, "event_based", [task])

    async def tick(self) -> int:
        """Start what is due: the scheduled policies' executions, then the tasks waiting
        (new, or due to be tried again); returns how many tasks started."""
        now = self._clock()
        await self._store.expire_listings(now)
        if time.monotonic() - self._caught_up_at >= CATCH_UP_SECONDS:
            self._caught_up_at = time.monotonic()
            await self._catch_up()
        for policy in await self._store.due_policies(now):
            assert policy.next_run is not None
            if not await self._store.claim_schedule(policy.id, policy.next_run, next_run(policy.cron, now)):
                continue  # another instance runs this occurrence
            if policy.single_active_replication and await self._store.active_execution(policy.id) is not None:
                log.info("replication policy %s: previous execution still running; this one skipped", policy.name)
                continue
            await self._begin(policy, "scheduled")
        return await self.worker.tick()

    async def _catch_up(self) -> None:
        """Event-based tasks that ran out of attempts while their target was unreachable
        run again once the registries' background check has found it healthy since: an
        outage longer than the retries lasts still loses nothing pushed during it."""
        for policy in await self._store.event_policies():
            if policy.dest_registry_id is None:
                continue
            endpoint = await self._sides.endpoint(policy.dest_registry_id)
            health = endpoint.health if endpoint is not None else None
            if endpoint is None or health is None or health.status != "healthy":
                continue
            note = f"{health.checked_at:%Y-%m-%dT%H:%M:%SZ} {endpoint.name} answers again: tried anew\n"
            revived = await self._store.revive(policy.id, health.checked_at, note)
            if revived:
                log.info("replication policy %s: %d tasks tried anew, its target answers again", policy.name, revived)

    async def wait(self) -> None:
        """Until the listings and tasks started in this process end (tests, the CLI)."""
        while self._listings:
            await asyncio.gather(*list(self._listings), return_exceptions=True)
        await self.worker.wait()

    async def close(self) -> None:
        for job in list(self._listings):
            job.cancel()
        await asyncio.gather(*list(self._listings), return_exceptions=True)
        await self.worker.close()

    # --- internals -------------------------------------------------------------------

    async def _begin(self, policy: Policy, trigger: str) -> int:
        execution_id = await self._store.create_execution(policy.id, trigger, [], listing_until=self._lease())
        job = asyncio.create_task(self._list(policy, execution_id), name=f"replication-listing-{execution_id}")
        self._listings.add(job)
        job.add_done_callback(self._listings.discard)
        return execution_id

    def _lease(self) -> datetime:
        return self._clock() + timedelta(seconds=LISTING_LEASE_SECONDS)

    async def _list(self, policy: Policy, execution_id: int) -> None:
        """List what the policy selects into tasks, renewing the listing's lease as it goes:
        a server that stops mid-way lets it run out, and any server's `tick` then ends the
        listing, so no execution waits for it for ever."""
        count = 0
        renewing = asyncio.create_task(self._renew_listing(execution_id))
        try:
            async for batch in self._candidates(policy):
                tasks = [NewTask(c.src_repository, c.digest, c.dst_repository, tags=c.tags) for c in batch]
                await self._store.add_tasks(execution_id, tasks, self._lease())
                count += len(tasks)
        except Exception as error:  # noqa: BLE001 (the execution says why it failed)
            log.warning("replication execution %s could not list its source: %s", execution_id, error)
            await self._store.end_execution(execution_id, "Failed", f"listing the source failed: {error}")
            return
        finally:
            renewing.cancel()
        await self._store.end_execution(execution_id, "Listed", f"{count} artifact{'' if count == 1 else 's'} selected")

    async def _renew_listing(self, execution_id: int) -> None:
        while True:
            await asyncio.sleep(LISTING_LEASE_SECONDS / 4)
            await self._store.add_tasks(execution_id, [], self._lease())

    async def _candidates(self, policy: Policy) -> AsyncIterator[builtins.list[Candidate]]:
        """What the policy selects at its source, in batches: each repository its name
        filter keeps, each digest a kept tag names there, with all its kept tags."""
        async with self._sides.open(policy.src_registry_id) as source:
            copier = Copier(source, source)
            batch: builtins.list[Candidate] = []
            for repository in sorted(await catalog(source)):
                if not keeps_repository(policy.filters, repository):
                    continue
                target = destination(repository, policy.dest_namespace, policy.dest_namespace_replace_count)
                by_digest: dict[str, builtins.list[str]] = {}
                for tag, digest in (await copier.resolve_tags(copier.source, repository)).items():
                    by_digest.setdefault(digest, []).append(tag)
                for digest, tags in sorted(by_digest.items()):
                    kept = kept_tags(policy.filters, sorted(tags))
                    if has_tag_filter(policy.filters) and not kept:
                        continue
                    if any(f.type == "resource" for f in policy.filters):
                        manifest = await source.manifest(repository, digest)
                        if not keeps_kind(policy.filters, manifest.media_type, config_media_type(manifest.body)):
                            continue
                    batch.append(Candidate(repository, digest, tuple(kept), target))
                    if len(batch) >= _BATCH:
                        yield batch
                        batch = []
            if batch:
                yield batch

    async def _checked(self, new: NewPolicy) -> NewPolicy:
        name = new.name.strip()
        if not name or len(name) > _NAME:
            raise BadRequest(f"a replication policy needs a name of at most {_NAME} characters")
        if len(new.description) > _TEXT:
            raise BadRequest(f"description must be at most {_TEXT} characters long")
        if (new.src_registry_id is None) == (new.dest_registry_id is None):
            raise BadRequest("exactly one of src_registry and dest_registry is another registry; the other is this one")
        for registry_id in (new.src_registry_id, new.dest_registry_id):
            if registry_id is not None and await self._endpoint(registry_id) is None:
                raise BadRequest(f"registry {registry_id} does not exist")
        if new.trigger not in TRIGGERS:
            raise BadRequest(f"trigger type must be one of {', '.join(TRIGGERS)}")
        if new.trigger == "event_based" and new.src_registry_id is not None:
            raise BadRequest("an event-based trigger follows this registry's pushes: only push policies take it")
        cron = valid_cron(new.cron, self._clock()) if new.trigger == "scheduled" else ""
        if new.speed < -1 or new.speed == 0:
            raise BadRequest("speed is in KB/s, more than 0, or -1 for no limit")
        namespace = new.dest_namespace.strip().strip("/")
        if len(namespace) > _NAME:
            raise BadRequest(f"dest_namespace must be at most {_NAME} characters long")
        destination("a/b", namespace, min(new.dest_namespace_replace_count, 1))  # its range
        return replace(new, name=name, cron=cron, dest_namespace=namespace, filters=check_filters(new.filters))

    def _next_run(self, policy: NewPolicy) -> datetime | None:
        return next_run(policy.cron, self._clock()) if policy.trigger == "scheduled" and policy.enabled else None

    async def _endpoint(self, registry_id: int | None) -> Endpoint | None:
        if registry_id is None:
            return None
        return await self._sides.endpoint(registry_id)

    async def _using(self, endpoint: Endpoint) -> str | None:
        names = await self._store.policies_using(endpoint.id)
        return f"replication policies {', '.join(names)}" if names else None

    async def _policy(self, policy_id: int) -> Policy:
        found = await self._store.get_policy(policy_id)
        if found is None:
            raise _no_policy(policy_id)
        return found

    async def _execution(self, execution_id: int) -> Execution:
        found = await self._store.get_execution(execution_id)
        if found is None:
            raise _no_execution(execution_id)
        return found


def _no_policy(policy_id: int) -> NotFound:
    return NotFound(f"replication policy {policy_id} not found")


def _no_execution(execution_id: int) -> NotFound:
    return NotFound(f"replication execution {execution_id} not found")
