"""Harbor's P2P preheat policies: which of a project's images a P2P instance is asked to
fetch ahead of the pulls, and when; their executions, one task per image sent.

A policy's `filters`, `trigger` and `extra_attrs` are the JSON texts Harbor uses, checked
when stored and kept as given (mgmt/preheat_rules.py reads them):

- filters: `label` is kept, but Portside's artifacts carry no labels, so such a policy selects
  nothing (its executions say so). `vulnerability` and `signature` are kept too; what
  decides is the project's own pull policy, which Portside always applies, as Harbor's
  enforcer force-adds it: only what a pull would be let through is preheated, and an image
  it refuses is skipped with the reason in its task's log (mgmt/pull_policy.py's dry run).
- trigger: scheduled runs are the upkeep scheduler's (a schedule per policy, `preheat:<id>`), and
  event-based ones start when a matching image is pushed, off the push's path, and when
  its scan completes in a project whose vulnerability policy is on (so an image skipped
  at push for want of a scan is preheated once it passes). Portside's artifacts have no
  labels, so there is no label event.
- extra_attrs: the scope and the clusters, handed to the P2P system with each image.

The P2P system fetches each image from Portside with a short-lived pull token for that
one repository, issued in the name of whoever runs the policy: the caller of a manual run,
the policy's owner (who last saved it) for scheduled and event-based runs. So a preheat
can fetch nothing its owner could not pull."""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from portside.auth.access import Access
from portside.auth.authn import Authenticator
from portside.auth.controller import AccessController
from portside.auth.principal import Principal
from portside.errors import BadRequest, Conflict, NotFound
from portside.meta.accounts import AuditStore, Page, Project
from portside.meta.artifacts import ArtifactInfo, ArtifactStore
from portside.meta.criteria import Criteria
from portside.meta.events import SCANNING_COMPLETED, EventOutbox
from portside.meta.preheat import Execution, Instance, NewPolicy, Policy, PreheatStore, Task
from portside.mgmt.guard import Guard
from portside.mgmt.p2p_instances import InstanceService
from portside.mgmt.paging import Listing, Paging
from portside.mgmt.preheat_rules import ExtraAttrs, Filters, parse_extra_attrs, parse_filters, parse_trigger
from portside.mgmt.pull_policy import RuleVerdict
from portside.oci import mediatypes as mt
from portside.oci.manifest import Manifest
from portside.remote.p2p import FAILURE, SUCCESS, Connection, Driver, Image, JobStatus, P2PError
from portside.upkeep.jobs import JobRunner, Journal
from portside.upkeep.schedule import Scheduler

__all__ = ["FAMILY", "Candidate", "DryRun", "PolicyChange", "PreheatService", "PullTokens"]

log = logging.getLogger("portside.preheat")

FAMILY = "preheat"  # the job runner's kinds `preheat:<policy id>`: one schedule per policy
# Harbor's names for what started an execution.
_EXECUTION_TRIGGER = {"manual": "MANUAL", "scheduled": "SCHEDULE", "event_based": "EVENT"}
_NAME, _TEXT = 255, 65_535
_LISTING = Listing.of(
    ("id", "name", "description", "provider_id", "enabled", "creation_time", "update_time"),
    ("id", "name", "provider_id", "creation_time", "update_time"),
)
_PAGE = 100
MAX_CANDIDATES = 1000  # one execution sends at most this many images
TASK_CONCURRENCY = 4
_SCAN_CURSOR = "scan-completed"


# --- what a run needs from elsewhere --------------------------------------------------


class DryRun(Protocol):
    """The project's pull policy, asked what it would say of a pull (mgmt/pull_policy.py)."""

    async def dry_run(self, repository: str, digest: str) -> Sequence[RuleVerdict]: ...


class PullTokens:
    """Short-lived pull tokens for one repository, in an account's name, as the token
    service issues them to a client (what the account may pull, and nothing more)."""

    def __init__(self, controller: AccessController, authenticator: Authenticator):
        self._controller = controller
        self._authn = authenticator

    async def owner(self, kind: str, account_id: int) -> Principal | None:
        return await self._authn.principal(kind, account_id)

    async def issue(self, who: Principal, repository: str) -> str | None:
        """None when `who` may not pull `repository`."""
        grant = await self._controller.grant(who, [Access.pull(repository)], creating=False)
        if not grant.granted:
            return None
        return self._controller.tokens.issue(who, grant.granted, grant.project_ids or {}).token


@dataclass(frozen=True, slots=True)
class Candidate:
    """One image a run sends: by tag when it has one the policy matches."""

    repository: str
    digest: str
    tag: str
    media_type: str

    @property
    def reference(self) -> str:
        return self.tag or self.digest

    @property
    def name(self) -> str:
        return f"{self.repository}:{self.tag}" if self.tag else f"{self.repository}@{self.digest}"


@dataclass(frozen=True, slots=True)
class PolicyChange:
    """Harbor's PreheatPolicy as a create or update gives it."""

    name: str
    provider_id: int
    filters: str = ""
    trigger: str = ""
    extra_attrs: str = ""
    description: str = ""
    enabled: bool = True


# --- the service ----------------------------------------------------------------------


class PreheatService:
    def __init__(
        self,
        guard: Guard,
        store: PreheatStore,
        instances: InstanceService,
        artifacts: ArtifactStore,
        tokens: PullTokens,
        audit: AuditStore,
        base_url: str,
        *,
        scheduler: Scheduler | None = None,
        runner: JobRunner | None = None,
        events: EventOutbox | None = None,
        poll_seconds: float = 2.0,
        job_timeout: float = 1800.0,
    ) -> None:
        self._guard = guard
        self._store = store
        self.instances = instances
        self._artifacts = artifacts
        self._tokens = tokens
        self._audit = audit
        self._base_url = base_url.rstrip("/")
        self._scheduler = scheduler
        self._events = events
        self.poll_seconds = poll_seconds  # how often a job is asked about (tests: less)
        self._job_timeout = job_timeout
        # The project's pull policy (set by wiring when scanning, which judges, is on).
        self.pull_policy: DryRun | None = None
        self._running: set[asyncio.Task[None]] = set()
        if runner is not None:
            runner.add_handler(f"{FAMILY}:*", self.scheduled_job)

    # --- policies --------------------------------------------------------------------

    async def providers(self, who: Principal, project_name: str) -> builtins.list[Instance]:
        """Harbor's /projects/{p}/preheat/providers: the instances a policy may name."""
        await self._guard.project_for(who, project_name, "preheat-policy", "read")
        return await self.instances.all()

    async def list_policies(
        self, who: Principal, project_name: str, q: str | None, sort: str | None, paging: Paging
    ) -> Page[Policy]:
        project = await self._guard.project_for(who, project_name, "preheat-policy", "list")
        return await self._store.list_policies(
            project.project_id, _LISTING.criteria(q, sort), paging.offset, paging.limit
        )

    async def get_policy(self, who: Principal, project_name: str, name: str) -> Policy:
        project = await self._guard.project_for(who, project_name, "preheat-policy", "read")
        return await self._policy(project, name)

    async def create_policy(self, who: Principal, project_name: str, change: PolicyChange) -> Policy:
        project = await self._guard.project_for(who, project_name, "preheat-policy", "create")
        made = await self._store.create_policy(await self._checked(who, project, change))
        await self._schedule(made)
        await self._record(who, project, made, "create")
        return made

    async def update_policy(self, who: Principal, project_name: str, name: str, change: PolicyChange) -> Policy:
        project = await self._guard.project_for(who, project_name, "preheat-policy", "update")
        current = await self._policy(project, name)
        updated = await self._store.update_policy(current.id, await self._checked(who, project, change))
        if updated is None:
            raise _no_policy(name)
        await self._schedule(updated)
        await self._record(who, project, updated, "update")
        return updated

    async def delete_policy(self, who: Principal, project_name: str, name: str) -> Policy:
        project = await self._guard.project_for(who, project_name, "preheat-policy", "delete")
        current = await self._policy(project, name)
        removed = await self._store.delete_policy(current.id)
        if removed is None:
            raise _no_policy(name)
        if self._scheduler is not None:
            await self._scheduler.set(f"{FAMILY}:{removed.id}", "None", None, {})
        await self._record(who, project, removed, "delete")
        return removed

    # --- executions ------------------------------------------------------------------

    async def run(self, who: Principal, project_name: str, name: str) -> Execution:
        """Harbor's manual preheat: an execution of the policy now, in the background, its
        images fetched with pull tokens in the caller's name."""
        project = await self._guard.project_for(who, project_name, "preheat-policy", "update")
        policy = await self._policy(project, name)
        if not policy.enabled:
            raise BadRequest(f"preheat policy {name} is disabled; enable it to run it")
        candidates = await self._candidates(project, policy)
        return await self._start(policy, "manual", who, candidates)

    async def list_executions(self, who: Principal, project_name: str, name: str, paging: Paging) -> Page[Execution]:
        project = await self._guard.project_for(who, project_name, "preheat-policy", "read")
        policy = await self._policy(project, name)
        return await self._store.list_executions(policy.id, paging.offset, paging.limit)

    async def get_execution(self, who: Principal, project_name: str, name: str, execution_id: int) -> Execution:
        project = await self._guard.project_for(who, project_name, "preheat-policy", "read")
        return await self._execution(await self._policy(project, name), execution_id)

    async def stop_execution(self, who: Principal, project_name: str, name: str, execution_id: int) -> None:
        project = await self._guard.project_for(who, project_name, "preheat-policy", "update")
        execution = await self._execution(await self._policy(project, name), execution_id)
        if not await self._store.request_stop(execution.id):
            raise Conflict(f"execution {execution_id} is not running")

    async def list_tasks(
        self, who: Principal, project_name: str, name: str, execution_id: int, paging: Paging
    ) -> Page[Task]:
        project = await self._guard.project_for(who, project_name, "preheat-policy", "read")
        execution = await self._execution(await self._policy(project, name), execution_id)
        return await self._store.list_tasks(execution.id, paging.offset, paging.limit)

    async def task_log(self, who: Principal, project_name: str, name: str, execution_id: int, task_id: int) -> str:
        project = await self._guard.project_for(who, project_name, "preheat-policy", "read")
        execution = await self._execution(await self._policy(project, name), execution_id)
        task = await self._store.get_task(task_id)
        if task is None or task.execution_id != execution.id:
            raise NotFound(f"task {task_id} of execution {execution_id} not found")
        return await self._store.task_log(task.id)

    # --- triggers --------------------------------------------------------------------

    async def pushed(self, repository: str, manifest: Manifest) -> None:
        """Event-based preheat: the push never waits; what policies want is found, and
        their executions run, in the background."""
        if manifest.subject is not None or manifest.media_type not in mt.MANIFESTS:
            return  # a referrer (signature, SBOM) is nothing a node pulls
        self._background(self._on_event(repository, str(manifest.digest), "push"))

    async def scans_completed(self) -> int:
        """Event-based preheat on scan completion (the server's periodic task): the
        outbox's SCANNING_COMPLETED events since the last look, for the images of projects
        whose vulnerability policy is on, the one case where a scan changes what may be
        preheated (a push there was skipped until the image was scanned). The cursor moves
        by a conditional update, so of several instances one handles each batch; the
        first look starts at the end, not at events from before. How many were handled."""
        if self._events is None:
            return 0
        position = await self._store.cursor(_SCAN_CURSOR)
        if position is None:
            last = 0
            while batch := await self._events.events_after(last, _PAGE):
                last = batch[-1].id
            await self._store.move_cursor(_SCAN_CURSOR, None, last)
            return 0
        events = await self._events.events_after(position, _PAGE)
        if not events or not await self._store.move_cursor(_SCAN_CURSOR, position, events[-1].id):
            return 0
        handled = 0
        for event in events:
            if event.event_type == SCANNING_COMPLETED and event.repository and event.digest:
                self._background(self._on_event(event.repository, event.digest, "scan_completed"))
                handled += 1
        return handled

    async def _on_event(self, repository: str, digest: str, event: str) -> None:
        """Run the project's event-based policies that select the image; after a scan, only
        where the project's vulnerability policy is on."""
        if event == "scan_completed":
            verdicts = await self.pull_policy.dry_run(repository, digest) if self.pull_policy is not None else []
            if not any(v.rule == "vulnerability" and v.enabled for v in verdicts):
                return
        try:
            project = await self._guard.project(repository.split("/", 1)[0])
        except NotFound:
            return  # an open registry's repository outside any project: no policies
        found = await self._store.list_policies(project.project_id, Criteria(), 0, _PAGE)
        wanted = [p for p in found.items if p.enabled and parse_trigger(p.trigger).type == "event_based"]
        if not wanted:
            return
        artifact = await self._artifacts.get_artifact(repository, digest)
        if artifact is None:
            return
        for policy in wanted:
            candidate = _candidate(parse_filters(policy.filters), artifact)
            if candidate is None:
                continue
            owner = await self._tokens.owner(policy.owner_kind, policy.owner_id)
            await self._start(policy, "event_based", owner, [candidate], event=event)

    async def scheduled_job(self, parameters: Mapping[str, Any], journal: Journal) -> Mapping[str, Any]:
        """The upkeep scheduler's `preheat:<id>` job: one execution of that policy."""
        policy_id = int(parameters.get("policy_id", 0))
        policy = await self._store.get_policy_by_id(policy_id)
        if policy is None or not policy.enabled:
            journal.info("the preheat policy is gone or disabled: nothing to do")
            if policy is None and self._scheduler is not None:  # gone with its project
                await self._scheduler.set(f"{FAMILY}:{policy_id}", "None", None, {})
            return {"execution_id": None}
        project = await self._guard.project(policy.project_id)
        owner = await self._tokens.owner(policy.owner_kind, policy.owner_id)
        execution = await self._start(policy, "scheduled", owner, await self._candidates(project, policy), wait=True)
        journal.info(f"preheat policy {policy.name} of {project.name}: execution {execution.id}")
        return {"execution_id": execution.id}

    async def wait(self) -> None:
        """Until the executions started in the background have ended (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*list(self._running), return_exceptions=True)

    # --- running ---------------------------------------------------------------------

    def _background(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("preheat failed")

        task = asyncio.create_task(guarded())
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _start(
        self,
        policy: Policy,
        trigger: str,
        who: Principal | None,
        candidates: Sequence[Candidate] | str,
        *,
        wait: bool = False,
        event: str | None = None,
    ) -> Execution:
        """An execution of `policy` for `candidates` (or a text saying why there are none),
        run in the background (or here, `wait`); `event`, what an event-based one follows."""
        extra: dict[str, Any] = {"trigger": trigger, "owner": who.name if who is not None else None}
        if event is not None:
            extra["event"] = event
        execution = await self._store.create_execution(policy.id, _EXECUTION_TRIGGER[trigger], json.dumps(extra))
        work = self._execute(execution, policy, who, candidates)
        if wait:
            await work
        else:
            self._background(work)
        return execution

    async def _execute(
        self, execution: Execution, policy: Policy, who: Principal | None, candidates: Sequence[Candidate] | str
    ) -> None:
        try:
            status, message = await self._run_tasks(execution, policy, who, candidates)
        except asyncio.CancelledError:
            await self._store.end_execution(execution.id, "Stopped", "stopped: the server is shutting down")
            raise
        except Exception as error:
            log.exception("preheat execution %s failed", execution.id)
            status, message = "Error", f"failed: {error!r}"[:1000]
        await self._store.end_execution(execution.id, status, message)

    async def _run_tasks(
        self, execution: Execution, policy: Policy, who: Principal | None, candidates: Sequence[Candidate] | str
    ) -> tuple[str, str]:
        if isinstance(candidates, str):
            return "Success", candidates
        if who is None:
            return "Error", "the policy's owner no longer exists: save the policy again to own it"
        instance = await self.instances.by_id(policy.provider_id)
        if instance is None:
            return "Error", f"preheat instance {policy.provider_id} no longer exists"
        if not instance.enabled:
            return "Error", f"preheat instance {instance.name} is disabled"
        if not candidates:
            return "Success", "no image matches the policy's filters"
        connection = await self.instances.connection(instance)
        driver = self.instances.driver(instance)
        extra = parse_extra_attrs(policy.extra_attrs)
        slots = asyncio.Semaphore(TASK_CONCURRENCY)

        async def one(candidate: Candidate) -> str:
            async with slots:
                return await self._task(execution, instance, connection, driver, who, extra, candidate)

        outcomes = await asyncio.gather(*(one(c) for c in candidates))
        errors, skipped = outcomes.count("Error"), outcomes.count("Skipped")
        stopped = outcomes.count("Stopped")
        sent = len(outcomes) - errors - skipped - stopped
        summary = f"{sent} preheated, {skipped} skipped by the project's pull policy, {errors} failed"
        if stopped:
            return "Stopped", f"stopped on request; {summary}"
        return ("Error" if errors else "Success"), summary

    async def _task(
        self,
        execution: Execution,
        instance: Instance,
        connection: Connection,
        driver: Driver,
        who: Principal,
        extra: ExtraAttrs,
        candidate: Candidate,
    ) -> str:
        """Send one image and follow its job to the end; the outcome (Success, Error,
        Skipped, Stopped)."""
        attrs: dict[str, Any] = {
            "artifact": candidate.name,
            "digest": candidate.digest,
            "kind": "image",
            "provider": instance.name,
            "vendor": instance.vendor,
        }
        task = await self._store.create_task(execution.id, json.dumps(attrs))
        lines: list[str] = []

        def note(level: str, message: str) -> None:
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            lines.append(f"{stamp} [{level}] {message}\n")

        async def end(status: str, message: str, outcome: str | None = None) -> str:
            await self._store.update_task(
                task.id, status=status, message=message, extra_attrs=json.dumps(attrs), log="".join(lines)
            )
            return outcome or status

        if await self._stop_requested(execution.id):
            note("WARNING", "stopped on request before it was sent")
            return await end("Stopped", "stopped on request")
        refusals = await self._refusals(candidate)
        if refusals:
            for rule, reason in refusals:
                note(
                    "WARNING", f"skipped: the project's {rule} policy would refuse a pull of {candidate.name}: {reason}"
                )
            return await end("Stopped", "skipped: " + "; ".join(f"{r}: {why}" for r, why in refusals), "Skipped")
        token = await self._tokens.issue(who, candidate.repository)
        if token is None:
            note("ERROR", f"{who.name} may not pull {candidate.repository}, so no pull token could be issued")
            return await end("Error", f"{who.name} may not pull {candidate.repository}")
        url = f"{self._base_url}/v2/{candidate.repository}/manifests/{candidate.reference}"
        image = Image(
            repository=candidate.repository,
            tag=candidate.tag,
            digest=candidate.digest,
            media_type=candidate.media_type,
            url=url,
            headers={"Authorization": f"Bearer {token}"},
            scope=extra.scope,
            cluster_ids=extra.cluster_ids,
        )
        await self._store.update_task(task.id, status="Running", started=True)
        note("INFO", f"asking {instance.vendor} instance {instance.name} to preheat {url} (scope {extra.scope})")
        try:
            job = await driver.preheat(connection, image)
            attrs["job_id"] = job.job_id
            note("INFO", f"{instance.vendor} job {job.job_id} created")
            job = await self._follow(driver, connection, job, execution.id)
        except P2PError as error:
            note("ERROR", str(error))
            return await end("Error", str(error)[:1000])
        if job.state == SUCCESS:
            note("INFO", f"{instance.vendor} job {job.job_id} succeeded: {candidate.name} is preheated")
            return await end("Success", "preheated")
        if job.state == FAILURE:
            note("ERROR", job.message or "the job failed")
            return await end("Error", job.message or "the job failed")
        note("WARNING", f"{instance.vendor} job {job.job_id}: {job.message}")
        return await end("Stopped" if job.message.startswith("stopped") else "Error", job.message)

    async def _follow(self, driver: Driver, connection: Connection, job: JobStatus, execution_id: int) -> JobStatus:
        deadline = time.monotonic() + self._job_timeout
        while not job.done:
            if time.monotonic() >= deadline:
                return JobStatus(
                    job.job_id, job.state, f"still {job.message or 'running'} after {self._job_timeout:.0f}s"
                )
            if await self._stop_requested(execution_id):
                return JobStatus(job.job_id, job.state, "stopped on request (the provider's job goes on)")
            await asyncio.sleep(self.poll_seconds)
            job = await driver.status(connection, job.job_id)
        return job

    async def _stop_requested(self, execution_id: int) -> bool:
        found = await self._store.get_execution(execution_id)
        return found is None or found.stop_requested

    async def _refusals(self, candidate: Candidate) -> list[tuple[str, str]]:
        """What the project's pull policy says against a pull of the image (rule, reason)."""
        if self.pull_policy is None:
            return []
        verdicts = await self.pull_policy.dry_run(candidate.repository, candidate.digest)
        return [(v.rule, v.reason) for v in verdicts if v.enabled and v.reason]

    async def _candidates(self, project: Project, policy: Policy) -> builtins.list[Candidate] | str:
        """The project's images the policy's filters select (at most MAX_CANDIDATES), or
        why none can be."""
        filters = parse_filters(policy.filters)
        if filters.labels:
            return "the policy filters by label, and Portside's artifacts carry no labels: nothing is selected"
        found: builtins.list[Candidate] = []
        offset = 0
        while len(found) < MAX_CANDIDATES:
            repositories = await self._artifacts.list_repositories(
                projects=[project.name], criteria=Criteria(), offset=offset, limit=_PAGE
            )
            for repository in repositories.items:
                if filters.repository_matches(repository.name):
                    found.extend(await self._repository_candidates(repository.name, filters))
            offset += _PAGE
            if offset >= repositories.total or not repositories.items:
                break
        return found[:MAX_CANDIDATES]

    async def _repository_candidates(self, repository: str, filters: Filters) -> builtins.list[Candidate]:
        found: builtins.list[Candidate] = []
        offset = 0
        while len(found) < MAX_CANDIDATES:
            page = await self._artifacts.list_artifacts(repository, Criteria(), offset, _PAGE)
            for artifact in page.items:
                candidate = _candidate(filters, artifact)
                if candidate is not None:
                    found.append(candidate)
            offset += _PAGE
            if offset >= page.total or not page.items:
                break
        return found

    # --- shared ----------------------------------------------------------------------

    async def _policy(self, project: Project, name: str) -> Policy:
        found = await self._store.get_policy(project.project_id, name)
        if found is None:
            raise _no_policy(name)
        return found

    async def _execution(self, policy: Policy, execution_id: int) -> Execution:
        found = await self._store.get_execution(execution_id)
        if found is None or found.policy_id != policy.id:
            raise NotFound(f"execution {execution_id} of preheat policy {policy.name} not found")
        return found

    async def _checked(self, who: Principal, project: Project, change: PolicyChange) -> NewPolicy:
        name = change.name.strip()
        if not name or len(name) > _NAME or "/" in name:
            raise BadRequest(f"name: a policy needs a name of at most {_NAME} characters, without '/'")
        for field, value in (
            ("name", name),
            ("description", change.description),
            ("filters", change.filters),
            ("trigger", change.trigger),
            ("extra_attrs", change.extra_attrs),
        ):
            if "\0" in value:
                raise BadRequest(f"{field}: NUL characters are not allowed")
            if len(value) > _TEXT:
                raise BadRequest(f"{field}: at most {_TEXT} characters")
        parse_filters(change.filters)
        parse_trigger(change.trigger)
        parse_extra_attrs(change.extra_attrs)
        if change.provider_id < 1 or await self.instances.by_id(change.provider_id) is None:
            raise BadRequest(f"provider_id: no preheat instance {change.provider_id}")
        if who.account_id is None:
            raise BadRequest("a preheat policy is owned by an account: sign in")
        return NewPolicy(
            name=name,
            project_id=project.project_id,
            provider_id=change.provider_id,
            filters=change.filters,
            trigger=change.trigger,
            extra_attrs=change.extra_attrs,
            description=change.description,
            enabled=change.enabled,
            owner_kind="robot" if who.robot is not None else "user",
            owner_id=who.account_id,
        )

    async def _schedule(self, policy: Policy) -> None:
        """Keep the policy's schedule as its trigger says (none unless scheduled and enabled)."""
        if self._scheduler is None:
            return
        trigger = parse_trigger(policy.trigger)
        kind = f"{FAMILY}:{policy.id}"
        if trigger.type == "scheduled" and policy.enabled:
            await self._scheduler.set(kind, "Custom", trigger.cron, {"policy_id": policy.id})
        else:
            await self._scheduler.set(kind, "None", None, {})

    async def _record(self, who: Principal, project: Project, policy: Policy, operation: str) -> None:
        await self._audit.record(
            project_id=project.project_id,
            username=who.name,
            operation=operation,
            resource_type="preheat_policy",
            resource=f"{project.name}/{policy.name}",
        )


def _candidate(filters: Filters, artifact: ArtifactInfo) -> Candidate | None:
    """The artifact as a run sends it, or None when the filters leave it out: by its most
    recently pushed tag the tag filter matches; untagged, only when there is no tag filter."""
    if filters.labels or not filters.repository_matches(artifact.repository_name):
        return None
    media_type = artifact.manifest_media_type
    tags = sorted(artifact.tags, key=lambda t: t.push_time, reverse=True)
    matching = [t.name for t in tags if filters.tag_matches(t.name)]
    if matching:
        return Candidate(artifact.repository_name, artifact.digest, matching[0], media_type)
    if not tags and filters.tag is None:
        return Candidate(artifact.repository_name, artifact.digest, "", media_type)
    return None


def _no_policy(name: str) -> NotFound:
    return NotFound(f"preheat policy {name} not found")
