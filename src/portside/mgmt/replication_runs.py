"""Running replication tasks: the worker that claims due tasks, copies each artifact with
the copy engine (`portside.remote.copy`), and records how it went.

Where each side is (`Sides`): a stored registry through `RegistryService.target`, or this
Portside itself over its own /v2 at a loopback URL, signed in as a system robot made for
the one task and removed after it. Going through /v2, rather than writing into the
registry services directly, keeps everything a push or pull means here exactly as it is
for any client: quotas are charged and refused, a proxy project refuses pushes, pull
policies apply, the manifest cache is invalidated, and a replicated push is itself an event
that other policies (a chain of sites) follow. The robot's secret lives only in memory.

A task that fails is tried again after an exponential backoff (`Retries`: base, doubling,
capped), up to `attempts` runs, then it is Failed. A run holds a lease on its task and
renews it; a worker that dies lets the lease run out and another worker takes the task up.
A stop request is seen at the next renewal, and the copy is cancelled there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from portside.meta.accounts import RobotPermission
from portside.meta.registries import Endpoint, EndpointStore
from portside.meta.replication import Policy, ReplicationStore, Task, TaskOutcome
from portside.mgmt.registries import RegistryService
from portside.mgmt.replication_rules import config_media_type, has_tag_filter, keeps_kind, kept_tags
from portside.mgmt.robots import RobotService, RobotSpec
from portside.remote.client import RemoteRegistry
from portside.remote.copy import BlobOutcome, Copier, CopyOptions, ManifestOutcome, ProgressListener
from portside.remote.errors import RemoteError, RemoteNotFound, RemoteUnreachable

__all__ = ["Retries", "Sides", "ReplicationWorker", "LOCAL_ROBOT_CREATOR"]

log = logging.getLogger("portside.replication")

LOCAL_ROBOT_CREATOR = "replication"  # the audit trail's name for the robots made for tasks
_LOCAL_ACCESS = (("repository", "pull"), ("repository", "push"), ("repository", "delete"))


@dataclass(frozen=True, slots=True)
class Retries:
    attempts: int = 10
    base_seconds: float = 5.0
    max_seconds: float = 300.0
    lease_seconds: float = 60.0

    def delay(self, attempt: int) -> float:
        """The wait before run `attempt + 1`: base, doubled each time, at most max."""
        return float(min(self.max_seconds, self.base_seconds * 2.0 ** max(0, attempt - 1)))


class EnsureProject(Protocol):
    async def __call__(self, name: str) -> None:
        """Make the project of that name here unless it exists (for pull policies)."""


class Sides:
    """Opens a client on one side of a policy: a stored registry (by id), or this Portside
    (None) over its /v2 at `local_url` (module docstring says why)."""

    def __init__(
        self,
        registries: RegistryService,
        endpoints: EndpointStore,
        robots: RobotService,
        local_url: str,
        ensure_project: EnsureProject,
    ) -> None:
        self._registries = registries
        self._endpoints = endpoints
        self._robots = robots
        self._local_url = local_url.rstrip("/")
        self.ensure_project = ensure_project

    async def endpoint(self, registry_id: int) -> Endpoint | None:
        return await self._endpoints.get(registry_id)

    async def kind(self, registry_id: int) -> str | None:
        """The adapter type of a stored registry (None: gone)."""
        found = await self._endpoints.get(registry_id)
        return found.type if found is not None else None

    @contextlib.asynccontextmanager
    async def open(self, registry_id: int | None, timeout: float = 60.0) -> AsyncIterator[RemoteRegistry]:
        if registry_id is not None:
            endpoint = await self._endpoints.get(registry_id)
            if endpoint is None:
                raise LookupError(f"registry {registry_id} no longer exists")
            target = await self._registries.target(endpoint, timeout)
            async with target.client() as client:
                yield client
            return
        made = await self._robots.add(
            RobotSpec(
                name=f"replication-{secrets.token_hex(6)}",
                level="system",
                permissions=(RobotPermission("project", "*", _LOCAL_ACCESS),),
                description="copies one replication task through this registry's /v2",
                duration=1,
            ),
            None,
            by=LOCAL_ROBOT_CREATOR,
        )
        try:
            async with RemoteRegistry(self._local_url, _basic(made.robot.name, made.secret), timeout=timeout) as client:
                yield client
        finally:
            try:
                await self._robots.remove(made.robot, by=LOCAL_ROBOT_CREATOR)
            except Exception:  # it expires in a day regardless
                log.exception("could not delete %s after its task", made.robot.name)


async def ensure_harbor_project(client: RemoteRegistry, name: str, journal: _Log) -> None:
    """Make the project at a Harbor (or another Portside) destination unless it exists, as
    Harbor's replication does: private, with the registry's credential. A refusal is only
    noted, since the push may still be allowed there (the project's members may push)."""
    body = json.dumps({"project_name": name, "metadata": {"public": "false"}}).encode()
    headers = {"Content-Type": "application/json"}
    try:
        response = await client.request(
            "POST", f"{client.base_url}/api/v2.0/projects", "", headers, actions="", content=body
        )
    except RemoteError as error:
        journal.add(f"could not make project {name} at the destination: {error}")
        return
    await response.aclose()
    if response.status_code == 201:
        journal.add(f"made project {name} at the destination")
    elif response.status_code != 409:  # 409: it exists
        journal.add(f"the destination did not make project {name} ({response.status_code}); pushing anyway")


def _basic(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


class _Log(ProgressListener):
    """The task's log: what the copy did, line by line."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, message: str) -> None:
        self.lines.append(f"{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')} {message}")

    def blob_done(self, digest: str, size: int, outcome: BlobOutcome) -> None:
        self.add(f"blob {digest} ({size} bytes): {outcome}")

    def manifest_done(self, repository: str, reference: str, digest: str, outcome: ManifestOutcome) -> None:
        self.add(f"manifest {repository}:{reference} ({digest}): {outcome}")

    def text(self) -> str:
        return "".join(line + "\n" for line in self.lines)


class ReplicationWorker:
    """Claims due tasks (at most `slots` at once in this process) and runs them."""

    def __init__(
        self,
        store: ReplicationStore,
        sides: Sides,
        retries: Retries = Retries(),
        *,
        slots: int = 4,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        self._sides = sides
        self._retries = retries
        self._slots = slots
        self._clock = clock
        self._id = f"worker-{secrets.token_hex(6)}"
        self._running: set[asyncio.Task[None]] = set()

    async def tick(self) -> int:
        """Start the tasks that are due, as many as there are free slots; how many."""
        free = self._slots - len(self._running)
        if free <= 0:
            return 0
        now = self._clock()
        lease = now + timedelta(seconds=self._retries.lease_seconds)
        claimed = await self._store.claim_tasks(now, lease, free, self._id)
        for task in claimed:
            job = asyncio.create_task(self._run(task), name=f"replication-task-{task.id}")
            self._running.add(job)
            job.add_done_callback(self._running.discard)
        return len(claimed)

    async def wait(self) -> None:
        """Until the tasks running now end (tests, the CLI)."""
        while self._running:
            await asyncio.gather(*list(self._running), return_exceptions=True)

    async def close(self) -> None:
        for job in list(self._running):
            job.cancel()
        await asyncio.gather(*list(self._running), return_exceptions=True)

    async def _run(self, task: Task) -> None:
        journal = _Log()
        journal.add(f"attempt {task.attempts}: {task.operation} {task.src_repository}@{task.reference}")
        work = asyncio.create_task(self._work(task, journal))
        stopped = False
        try:
            while not work.done():
                # Renewing every few seconds is also how a stop request reaches the copy.
                done, _ = await asyncio.wait({work}, timeout=min(2.0, self._retries.lease_seconds / 3))
                if done:
                    break
                until = self._clock() + timedelta(seconds=self._retries.lease_seconds)
                if not await self._store.renew_lease(task.id, self._id, until):
                    stopped = True  # asked to stop (or taken over): the copy ends here
                    work.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await work
                    break
            outcome = TaskOutcome("Stopped", journal.text() + "stopped\n") if stopped else await work
        except asyncio.CancelledError:
            work.cancel()
            raise  # the server is shutting down: the lease runs out and another run takes it
        except Exception as error:  # noqa: BLE001 (a task's failure is its log's business)
            outcome = self._failed(task, journal, error)
        try:
            await self._store.finish_task(task.id, self._id, outcome)
        except Exception:
            log.exception("could not record how replication task %s ended", task.id)

    def _failed(self, task: Task, journal: _Log, error: BaseException) -> TaskOutcome:
        reason = f"{type(error).__name__}: {error}"
        if task.attempts >= self._retries.attempts:
            journal.add(f"failed: {reason}; no attempts left ({task.attempts})")
            return TaskOutcome("Failed", journal.text(), unreachable=isinstance(error, RemoteUnreachable))
        delay = self._retries.delay(task.attempts)
        journal.add(f"failed: {reason}; trying again in {delay:g}s")
        log.info("replication task %s failed (%s); again in %gs", task.id, reason, delay)
        return TaskOutcome("Pending", journal.text(), retry_at=self._clock() + timedelta(seconds=delay))

    async def _work(self, task: Task, journal: _Log) -> TaskOutcome:
        policy = await self._store.get_policy(task.policy_id)
        if policy is None:
            journal.add("the policy was deleted")
            return TaskOutcome("Failed", journal.text())
        try:
            if task.operation == "deletion":
                return await self._delete(policy, task, journal)
            return await self._copy(policy, task, journal)
        except (RemoteError, LookupError, OSError) as error:
            return self._failed(task, journal, error)

    async def _copy(self, policy: Policy, task: Task, journal: _Log) -> TaskOutcome:
        if policy.dest_registry_id is None:
            await self._sides.ensure_project(task.dst_repository.split("/", 1)[0])
        speed = policy.speed if policy.speed > 0 else None
        # `copy_by_chunk` is kept as Harbor has it, but the engine sends any blob over one
        # chunk in chunks either way: its one-request upload holds the whole blob in memory.
        options = CopyOptions(referrers=True, speed=speed)
        async with (
            self._sides.open(policy.src_registry_id) as source,
            self._sides.open(policy.dest_registry_id) as target,
        ):
            if policy.dest_registry_id is not None and await self._sides.kind(policy.dest_registry_id) == "harbor":
                await ensure_harbor_project(target, task.dst_repository.split("/", 1)[0], journal)
            copier = Copier(source, target, options, progress=journal)
            reference, src_repo, dst_repo = task.reference, task.src_repository, task.dst_repository
            try:
                digest = reference if ":" in reference else await copier.source.resolve(src_repo, reference)
                manifest = await copier.source.manifest(src_repo, digest)
            except RemoteNotFound:
                journal.add(f"{src_repo}@{reference} is gone from the source: nothing to copy")
                return TaskOutcome("Succeed", journal.text())
            # Every tag naming the artifact now (not only the one pushed), as the filters admit.
            tags = kept_tags(policy.filters, await copier.tags_of(src_repo, digest))
            if has_tag_filter(policy.filters) and not tags:
                journal.add(f"no tag of {digest} passes the tag filters: nothing to copy")
                return TaskOutcome("Succeed", journal.text())
            if not keeps_kind(policy.filters, manifest.media_type, config_media_type(manifest.body)):
                journal.add(f"{digest} is no image ({manifest.media_type}): the resource filter leaves it")
                return TaskOutcome("Succeed", journal.text())
            if not policy.override:
                kept = []
                for tag in tags:
                    there = await copier.target.tag_digest(dst_repo, tag)
                    if there is not None and there != digest:
                        journal.add(f"{dst_repo}:{tag} names {there} there; override is off, so it stays")
                    else:
                        kept.append(tag)
                tags = kept
            report = await copier.copy(src_repo, digest, dst_repo, tags=tags)
        journal.add(
            f"copied {src_repo}@{digest} to {dst_repo} with tags [{', '.join(report.tags or tags)}]: "
            f"{report.blobs_copied} blobs sent ({report.bytes_copied} bytes), {report.blobs_mounted} mounted, "
            f"{report.blobs_present} present, {len(report.referrers)} referrers"
        )
        return TaskOutcome(
            "Succeed",
            journal.text(),
            src_resource=_resource(src_repo, digest, tags),
            dst_resource=_resource(dst_repo, report.destination_digest, tags),
            tags=tuple(tags),
        )

    async def _delete(self, policy: Policy, task: Task, journal: _Log) -> TaskOutcome:
        async with self._sides.open(policy.dest_registry_id) as target:
            path = f"/v2/{task.dst_repository}/manifests/{task.reference}"
            response = await target.request("DELETE", path, task.dst_repository, {}, actions="delete")
            await response.aclose()
        if response.status_code in (200, 202, 404):
            journal.add(f"deleted {task.dst_repository}@{task.reference} ({response.status_code})")
            return TaskOutcome("Succeed", journal.text())
        raise RemoteError(f"DELETE {path} answered {response.status_code}")


def _resource(repository: str, digest: str, tags: list[str]) -> str:
    return f"{repository}:[{','.join(tags)}]" if tags else f"{repository}@{digest}"
