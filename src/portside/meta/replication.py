"""Replication (Harbor's `/replication/policies` and `/replication/executions`): policies
that copy artifacts between this Portside and a registry, the executions that run them, and
their tasks, one per artifact (or one deletion) with its log.

A task is the unit of durable work: it is written before anything is acknowledged (the
push that an event-based policy follows waits for its row), claimed by one worker with a
lease (a worker that died leaves a lease that runs out, and another takes the task), and
put back Pending with a later `next_attempt` when it fails and may be tried again. An
execution's counts and status follow from its tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from portside.meta.accounts import Page

__all__ = [
    "EXECUTION_STATUSES",
    "Execution",
    "Filter",
    "NewPolicy",
    "NewTask",
    "Policy",
    "ReplicationStore",
    "Task",
    "TaskOutcome",
]

# Harbor's statuses. An execution is InProgress while any task is Pending or Running.
EXECUTION_STATUSES = ("InProgress", "Succeed", "Failed", "Stopped")
TASK_STATUSES = ("Pending", "Running", "Succeed", "Failed", "Stopped")


@dataclass(frozen=True, slots=True)
class Filter:
    """Harbor's ReplicationFilter: `type` name, tag, label or resource; `value` a
    doublestar pattern (a list of label names for `label`); `decoration` matches or
    excludes (tag and label only)."""

    type: str
    value: str | tuple[str, ...]
    decoration: str = ""


@dataclass(frozen=True, slots=True)
class NewPolicy:
    name: str
    description: str = ""
    src_registry_id: int | None = None  # None: this Portside (a push policy)
    dest_registry_id: int | None = None  # None: this Portside (a pull policy)
    dest_namespace: str = ""
    dest_namespace_replace_count: int = -1
    filters: tuple[Filter, ...] = ()
    trigger: str = "manual"  # manual, scheduled, event_based
    cron: str = ""  # the scheduled trigger's, six fields
    replicate_deletion: bool = False
    override: bool = True
    enabled: bool = True
    speed: int = -1  # KB/s; -1 unlimited
    copy_by_chunk: bool = False
    single_active_replication: bool = False


@dataclass(frozen=True, slots=True)
class Policy(NewPolicy):
    id: int = 0
    next_run: datetime | None = None  # the scheduled trigger's next firing
    creation_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class Execution:
    id: int
    policy_id: int
    status: str
    status_text: str
    trigger: str
    start_time: datetime
    end_time: datetime | None
    total: int = 0
    failed: int = 0
    succeed: int = 0
    in_progress: int = 0
    stopped: int = 0
    stop_requested: bool = False


@dataclass(frozen=True, slots=True)
class NewTask:
    """One artifact to copy (`operation` copy: `digest`, or a tag the worker resolves
    when it runs) or to delete at the destination (`operation` deletion)."""

    src_repository: str
    reference: str  # a digest, or a tag
    dst_repository: str
    operation: str = "copy"
    resource_type: str = "image"
    tags: tuple[str, ...] = ()  # the tags known when the task was made (the worker looks again)


@dataclass(frozen=True, slots=True)
class Task(NewTask):
    id: int = 0
    execution_id: int = 0
    policy_id: int = 0
    status: str = "Pending"
    attempts: int = 0
    next_attempt: datetime | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    job_id: str = ""
    src_resource: str = ""  # Harbor's `repo:[tag,…]`
    dst_resource: str = ""


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How a run of a task ended: `status` Succeed, Failed or Stopped, or Pending again
    (a retry at `retry_at`); `log` is appended to the task's log."""

    status: str
    log: str
    retry_at: datetime | None = None
    unreachable: bool = False  # Failed because a registry could not be reached
    src_resource: str = ""
    dst_resource: str = ""
    tags: tuple[str, ...] = field(default=())


class ReplicationStore(Protocol):
    # --- policies --------------------------------------------------------------------

    async def create_policy(self, new: NewPolicy, next_run: datetime | None) -> Policy:
        """Conflict when the name is taken."""

    async def get_policy(self, policy_id: int) -> Policy | None: ...

    async def list_policies(self, name: str | None, offset: int, limit: int) -> Page[Policy]:
        """Policies by id; `name` keeps those whose name holds it."""

    async def update_policy(self, policy_id: int, new: NewPolicy, next_run: datetime | None) -> Policy | None:
        """Conflict on a taken name; None: no such policy."""

    async def delete_policy(self, policy_id: int) -> bool:
        """The policy, its executions and their tasks; False when there was none."""

    async def policies_using(self, registry_id: int) -> list[str]:
        """The names of the policies whose source or destination is that registry."""

    async def event_policies(self) -> list[Policy]:
        """Enabled event-based policies."""

    async def claim_schedule(self, policy_id: int, due: datetime, following: datetime) -> bool:
        """Move a scheduled policy's `next_run` from `due` to `following`; False when
        another instance did first (it runs that occurrence)."""

    async def due_policies(self, now: datetime) -> list[Policy]:
        """Enabled scheduled policies whose next run is at or before `now`."""

    # --- executions and tasks --------------------------------------------------------

    async def create_execution(
        self, policy_id: int, trigger: str, tasks: Sequence[NewTask], *, listing_until: datetime | None = None
    ) -> int:
        """An execution with its tasks, in one transaction. With `listing_until`, its tasks
        are still being listed (it cannot end before), under a lease the lister renews."""

    async def add_tasks(self, execution_id: int, tasks: Sequence[NewTask], listing_until: datetime) -> None:
        """More tasks of a listing, its lease renewed."""

    async def expire_listings(self, now: datetime) -> int:
        """End the listings whose lease ran out (their server stopped): the execution goes
        on with the tasks it has, and says its listing was cut short. How many."""

    async def end_execution(self, execution_id: int, status: str, status_text: str) -> None:
        """End an execution that could not list its work (Failed), or note a listing's
        outcome; tasks already made keep running."""

    async def get_execution(self, execution_id: int) -> Execution | None: ...

    async def list_executions(
        self, policy_id: int | None, status: str | None, trigger: str | None, offset: int, limit: int
    ) -> Page[Execution]: ...

    async def active_execution(self, policy_id: int) -> int | None:
        """An InProgress execution of the policy, if any."""

    async def stop_execution(self, execution_id: int) -> bool:
        """Ask the execution to stop: Pending tasks become Stopped now, Running ones when
        their worker next looks (`stop_requested`). False: no such execution."""

    async def claim_tasks(self, now: datetime, lease_until: datetime, limit: int, worker: str) -> list[Task]:
        """Up to `limit` tasks due (Pending with `next_attempt` at or before `now`, or
        Running whose lease ran out), now Running under `worker` until `lease_until`."""

    async def renew_lease(self, task_id: int, worker: str, lease_until: datetime) -> bool:
        """Extend a running task's lease; False when it is no longer this worker's, or its
        execution was asked to stop."""

    async def finish_task(self, task_id: int, worker: str, outcome: TaskOutcome) -> None:
        """Record a run's outcome (only while the task is still this worker's) and update
        its execution's status and end time."""

    async def revive(self, policy_id: int, failed_before: datetime, note: str) -> int:
        """Put back Pending, with their attempts anew, the tasks of the policy's event-based
        executions that failed for good before `failed_before` because a registry could
        not be reached (the catch-up once it answers again); how many."""

    async def list_tasks(self, execution_id: int, offset: int, limit: int) -> Page[Task]: ...

    async def task_log(self, execution_id: int, task_id: int) -> str | None: ...
