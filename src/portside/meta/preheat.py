"""P2P preheat (Harbor's `/p2p/preheat`): the P2P systems Portside asks to fetch images ahead
of the pulls (instances of a provider, Dragonfly or Kraken), the projects' preheat policies
that say which images and when, and the executions of those policies with one task per
image sent.

An instance's secret (a password, a token, a custom header's value) is stored encrypted
and given back decrypted only through `instance_secret`: an `Instance` never carries it.
A policy's `filters`, `trigger` and `extra_attrs` are kept as the JSON texts Harbor sends
(mgmt/preheat.py reads them); a task keeps its log as text, appended to as it runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from portside.meta.accounts import Page
from portside.meta.criteria import Criteria

__all__ = [
    "AUTH_MODES",
    "Execution",
    "Instance",
    "NewInstance",
    "NewPolicy",
    "Policy",
    "PreheatStore",
    "STATUSES",
    "Task",
    "TaskCounts",
]

# Harbor's instance auth modes; BASIC and OAUTH are the drivers' own, CUSTOM a header.
AUTH_MODES = ("NONE", "BASIC", "OAUTH", "CUSTOM")
# Harbor's execution and task statuses.
STATUSES = ("Pending", "Running", "Success", "Error", "Stopped")


@dataclass(frozen=True, slots=True)
class NewInstance:
    name: str
    vendor: str
    endpoint: str
    description: str = ""
    auth_mode: str = "NONE"
    # BASIC's username, CUSTOM's header name ("" otherwise): not secret, shown as it is.
    auth_key: str = ""
    # BASIC's password, OAUTH's token, CUSTOM's header value: stored encrypted.
    auth_secret: str = ""
    enabled: bool = True
    default: bool = False
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class Instance:
    id: int
    name: str
    vendor: str
    endpoint: str
    description: str
    auth_mode: str
    auth_key: str
    has_secret: bool
    enabled: bool
    default: bool
    insecure: bool
    status: str  # "healthy", "unhealthy", or "unknown" before the first check
    last_error: str
    setup_timestamp: int  # seconds since the epoch, as Harbor's
    update_time: datetime


@dataclass(frozen=True, slots=True)
class NewPolicy:
    name: str
    project_id: int
    provider_id: int
    filters: str  # Harbor's JSON text
    trigger: str  # Harbor's JSON text
    extra_attrs: str  # Harbor's JSON text
    description: str = ""
    enabled: bool = True
    # Who made or last changed the policy ("user" or "robot", and the account's id): the
    # pull tokens of its event-based and scheduled runs are issued in their name.
    owner_kind: str = "user"
    owner_id: int = 0


@dataclass(frozen=True, slots=True)
class Policy:
    id: int
    name: str
    project_id: int
    provider_id: int
    filters: str
    trigger: str
    extra_attrs: str
    description: str
    enabled: bool
    owner_kind: str
    owner_id: int
    creation_time: datetime
    update_time: datetime


@dataclass(frozen=True, slots=True)
class TaskCounts:
    """How many of an execution's tasks are in each status (Harbor's Metrics)."""

    pending: int = 0
    running: int = 0
    success: int = 0
    error: int = 0
    stopped: int = 0

    @property
    def total(self) -> int:
        return self.pending + self.running + self.success + self.error + self.stopped


@dataclass(frozen=True, slots=True)
class Execution:
    id: int
    policy_id: int
    status: str
    status_message: str
    trigger: str  # Harbor's MANUAL, SCHEDULE or EVENT
    extra_attrs: str  # JSON object text
    stop_requested: bool
    counts: TaskCounts
    start_time: datetime
    end_time: datetime | None


@dataclass(frozen=True, slots=True)
class Task:
    id: int
    execution_id: int
    status: str
    status_message: str
    run_count: int
    extra_attrs: str  # JSON object text: the image, its digest, the provider's job id
    creation_time: datetime
    update_time: datetime
    start_time: datetime | None
    end_time: datetime | None


class PreheatStore(Protocol):
    # --- instances --------------------------------------------------------------------
    async def create_instance(self, new: NewInstance) -> Instance:
        """Conflict when the name is taken. A default instance stops the others being it."""

    async def get_instance(self, key: int | str) -> Instance | None:
        """By id (int) or name (str)."""

    async def list_instances(self, criteria: Criteria, offset: int, limit: int) -> Page[Instance]:
        """Fields: id, name, vendor, endpoint, description, status, enabled, default."""

    async def update_instance(self, instance_id: int, new: NewInstance, keep_secret: bool) -> Instance | None:
        """Replace an instance's fields; `keep_secret` leaves the stored secret as it is.
        Conflict on a taken name; None: no such instance."""

    async def delete_instance(self, instance_id: int) -> Instance | None: ...

    async def instance_secret(self, instance_id: int) -> str:
        """The decrypted secret ("" when none)."""

    async def record_instance_health(self, instance_id: int, status: str, error: str) -> None: ...

    # --- policies ---------------------------------------------------------------------
    async def create_policy(self, new: NewPolicy) -> Policy:
        """Conflict when the project has a policy of that name."""

    async def get_policy(self, project_id: int, name: str) -> Policy | None: ...

    async def get_policy_by_id(self, policy_id: int) -> Policy | None: ...

    async def list_policies(self, project_id: int | None, criteria: Criteria, offset: int, limit: int) -> Page[Policy]:
        """A project's policies (None: every project's). Fields: id, name, description,
        provider_id, enabled, creation_time, update_time."""

    async def update_policy(self, policy_id: int, new: NewPolicy) -> Policy | None:
        """Conflict on a taken name; None: no such policy."""

    async def delete_policy(self, policy_id: int) -> Policy | None:
        """With its executions and their tasks."""

    async def policies_of_instance(self, instance_id: int) -> list[Policy]: ...

    # --- executions and tasks ---------------------------------------------------------
    async def create_execution(self, policy_id: int, trigger: str, extra_attrs: str) -> Execution:
        """A Running execution, started now."""

    async def get_execution(self, execution_id: int) -> Execution | None: ...

    async def list_executions(self, policy_id: int, offset: int, limit: int) -> Page[Execution]:
        """Newest first."""

    async def end_execution(self, execution_id: int, status: str, message: str) -> None: ...

    async def request_stop(self, execution_id: int) -> bool:
        """Mark a running execution to stop at its next task; False when it is not running."""

    async def create_task(self, execution_id: int, extra_attrs: str) -> Task:
        """A Pending task."""

    async def update_task(
        self,
        task_id: int,
        *,
        status: str | None = None,
        message: str | None = None,
        extra_attrs: str | None = None,
        log: str = "",
        started: bool = False,
    ) -> None:
        """Change what is given; `log` is appended; `started` counts a run and stamps its
        start; a final status (Success, Error, Stopped) stamps the end."""

    async def get_task(self, task_id: int) -> Task | None: ...

    async def list_tasks(self, execution_id: int, offset: int, limit: int) -> Page[Task]: ...

    async def task_log(self, task_id: int) -> str: ...

    # --- reading the event outbox -----------------------------------------------------
    async def cursor(self, name: str) -> int | None:
        """How far the reader `name` has read (an event id); None before it first read."""

    async def move_cursor(self, name: str, old: int | None, new: int) -> bool:
        """Move the reader from `old` to `new`; False when another instance moved it first
        (the events between are that instance's)."""
