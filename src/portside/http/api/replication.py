"""Harbor's replication over HTTP: `/replication/policies` (list, create, read, update,
delete), `/replication/executions` (start, list, read, stop), their tasks and each task's
log (plain text); mgmt/replication.py decides. Portside adds
`/replication/policies/{id}/dry-run`: what a run would copy now.

A policy's `src_registry` or `dest_registry` is null or `{"id": 0}` for this Portside, and
is shown as Harbor shows its own: registry 0, named "Local"."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from portside.errors import NotFound
from portside.http.api.context import Caller, Pages, iso, paged, services
from portside.http.api.registries import registry_resp
from portside.meta.registries import Endpoint
from portside.meta.replication import Execution, Filter, NewPolicy, Policy, Task
from portside.mgmt.limits import MAX_ID
from portside.mgmt.replication import ReplicationService

__all__ = ["execution_resp", "local_registry", "policy_resp", "router", "task_resp"]

router = APIRouter(tags=["replication"])
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
_Text = Annotated[str, Field(max_length=65_535)]


class RegistryRef(BaseModel):
    id: Annotated[int, Field(ge=0, le=MAX_ID)] | None = None


class FilterReq(BaseModel):
    type: Annotated[str, Field(max_length=16)]
    value: Annotated[str, Field(max_length=1024)] | list[Annotated[str, Field(max_length=255)]] = ""
    decoration: Annotated[str, Field(max_length=16)] = ""


class TriggerSettingsReq(BaseModel):
    cron: Annotated[str, Field(max_length=64)] = ""


class TriggerReq(BaseModel):
    type: Annotated[str, Field(max_length=16)] = "manual"
    trigger_settings: TriggerSettingsReq | None = None


class PolicyReq(BaseModel):
    """Harbor's ReplicationPolicy (its read-only fields are ignored, as Harbor does)."""

    name: Annotated[str, Field(max_length=255)] = ""
    description: _Text = ""
    src_registry: RegistryRef | None = None
    dest_registry: RegistryRef | None = None
    dest_namespace: Annotated[str, Field(max_length=255)] = ""
    dest_namespace_replace_count: Annotated[int, Field(ge=-1, le=127)] | None = None
    trigger: TriggerReq | None = None
    filters: Annotated[list[FilterReq], Field(max_length=32)] | None = None
    replicate_deletion: bool = False
    override: bool = False
    enabled: bool = True
    speed: Annotated[int, Field(ge=-1, le=2**31 - 1)] | None = None
    copy_by_chunk: bool = False
    single_active_replication: bool = False

    def new(self) -> NewPolicy:
        trigger = self.trigger or TriggerReq()
        return NewPolicy(
            name=self.name,
            description=self.description,
            src_registry_id=_registry_id(self.src_registry),
            dest_registry_id=_registry_id(self.dest_registry),
            dest_namespace=self.dest_namespace,
            dest_namespace_replace_count=-1
            if self.dest_namespace_replace_count is None
            else self.dest_namespace_replace_count,
            filters=tuple(
                Filter(f.type, tuple(f.value) if isinstance(f.value, list) else f.value, f.decoration)
                for f in self.filters or []
            ),
            trigger=trigger.type,
            cron=trigger.trigger_settings.cron if trigger.trigger_settings else "",
            replicate_deletion=self.replicate_deletion,
            override=self.override,
            enabled=self.enabled,
            speed=-1 if self.speed in (None, 0) else self.speed,
            copy_by_chunk=self.copy_by_chunk,
            single_active_replication=self.single_active_replication,
        )


class StartReq(BaseModel):
    policy_id: Annotated[int, Field(ge=1, le=MAX_ID)]


def _registry_id(ref: RegistryRef | None) -> int | None:
    return None if ref is None or not ref.id else ref.id


def _replication(request: Request) -> ReplicationService:
    found = services(request).replication
    if found is None:
        raise NotFound("replication is not available on this server")
    return found


def local_registry(url: str) -> dict[str, Any]:
    """This Portside as Harbor shows itself in a policy: registry 0, "Local"."""
    return {
        "id": 0,
        "name": "Local",
        "type": "harbor",
        "url": url,
        "description": "",
        "insecure": False,
        "credential": {"type": "", "access_key": "", "access_secret": ""},
        "status": "healthy",
    }


def policy_resp(policy: Policy, src: Endpoint | None, dest: Endpoint | None, local_url: str) -> dict[str, Any]:
    local = local_registry(local_url)
    return {
        "id": policy.id,
        "name": policy.name,
        "description": policy.description,
        "src_registry": registry_resp(src) if src is not None else local,
        "dest_registry": registry_resp(dest) if dest is not None else local,
        "dest_namespace": policy.dest_namespace,
        "dest_namespace_replace_count": policy.dest_namespace_replace_count,
        "trigger": {"type": policy.trigger, "trigger_settings": {"cron": policy.cron}},
        "filters": [
            {
                "type": f.type,
                "value": list(f.value) if isinstance(f.value, tuple) else f.value,
                **({"decoration": f.decoration} if f.decoration else {}),
            }
            for f in policy.filters
        ],
        "replicate_deletion": policy.replicate_deletion,
        "deletion": policy.replicate_deletion,  # Harbor's older name, still in its document
        "override": policy.override,
        "enabled": policy.enabled,
        "speed": policy.speed,
        "copy_by_chunk": policy.copy_by_chunk,
        "single_active_replication": policy.single_active_replication,
        "creation_time": iso(policy.creation_time),
        "update_time": iso(policy.update_time),
    }


def execution_resp(execution: Execution) -> dict[str, Any]:
    return {
        "id": execution.id,
        "policy_id": execution.policy_id,
        "status": execution.status,
        "status_text": execution.status_text,
        "trigger": execution.trigger,
        "total": execution.total,
        "failed": execution.failed,
        "succeed": execution.succeed,
        "in_progress": execution.in_progress,
        "stopped": execution.stopped,
        "start_time": iso(execution.start_time),
        "end_time": iso(execution.end_time),
    }


def task_resp(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "execution_id": task.execution_id,
        "status": task.status,
        "job_id": task.job_id,
        "operation": task.operation,
        "resource_type": task.resource_type,
        "src_resource": task.src_resource,
        "dst_resource": task.dst_resource,
        "attempts": task.attempts,  # Portside's: runs so far (a failed one is retried)
        "start_time": iso(task.start_time),
        "end_time": iso(task.end_time),
    }


async def _policy_resp(request: Request, service: ReplicationService, policy: Policy) -> dict[str, Any]:
    src, dest = await service.registry_names(policy)
    return policy_resp(policy, src, dest, str(request.base_url).rstrip("/"))


@router.get("/replication/policies", summary="Replication policies (system administrators)")
async def list_policies(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    name: Annotated[str | None, Query(max_length=255)] = None,
) -> list[dict[str, Any]]:
    service = _replication(request)
    found = await service.list_policies(who, name, paging)
    paged(request, response, found, paging)
    return [await _policy_resp(request, service, p) for p in found.items]


@router.post("/replication/policies", summary="Create a replication policy", status_code=201, response_class=Response)
async def create_policy(request: Request, response: Response, who: Caller, body: PolicyReq) -> None:
    made = await _replication(request).create_policy(who, body.new())
    response.headers["Location"] = f"{request.url.path}/{made.id}"


@router.get("/replication/policies/{id}", summary="A replication policy")
async def get_policy(request: Request, who: Caller, id: Id) -> dict[str, Any]:  # noqa: A002 (Harbor's name)
    service = _replication(request)
    return await _policy_resp(request, service, await service.get_policy(who, id))


@router.put("/replication/policies/{id}", summary="Change a replication policy", response_class=Response)
async def update_policy(request: Request, who: Caller, id: Id, body: PolicyReq) -> None:  # noqa: A002
    await _replication(request).update_policy(who, id, body.new())


@router.delete("/replication/policies/{id}", summary="Delete a replication policy", response_class=Response)
async def delete_policy(request: Request, who: Caller, id: Id) -> None:  # noqa: A002
    await _replication(request).delete_policy(who, id)


@router.get("/replication/policies/{id}/dry-run", summary="What a run of the policy would copy now")
async def dry_run(request: Request, who: Caller, id: Id) -> dict[str, Any]:  # noqa: A002
    found = await _replication(request).dry_run(who, id)
    return {
        "total": len(found),
        "artifacts": [
            {
                "src_repository": c.src_repository,
                "digest": c.digest,
                "tags": list(c.tags),
                "dst_repository": c.dst_repository,
            }
            for c in found
        ],
    }


@router.post(
    "/replication/executions", summary="Run a replication policy now", status_code=201, response_class=Response
)
async def start_execution(request: Request, response: Response, who: Caller, body: StartReq) -> None:
    execution_id = await _replication(request).start(who, body.policy_id)
    response.headers["Location"] = f"{request.url.path}/{execution_id}"


@router.get("/replication/executions", summary="Replication executions, newest first")
async def list_executions(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    policy_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    trigger: Annotated[str | None, Query(max_length=16)] = None,
) -> list[dict[str, Any]]:
    found = await _replication(request).list_executions(who, policy_id, status, trigger, paging)
    paged(request, response, found, paging)
    return [execution_resp(e) for e in found.items]


@router.get("/replication/executions/{id}", summary="A replication execution")
async def get_execution(request: Request, who: Caller, id: Id) -> dict[str, Any]:  # noqa: A002
    return execution_resp(await _replication(request).get_execution(who, id))


@router.put("/replication/executions/{id}", summary="Stop a replication execution", response_class=Response)
async def stop_execution(request: Request, who: Caller, id: Id) -> None:  # noqa: A002
    await _replication(request).stop(who, id)


@router.get("/replication/executions/{id}/tasks", summary="The tasks of a replication execution")
async def list_tasks(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    id: Id,  # noqa: A002
) -> list[dict[str, Any]]:
    found = await _replication(request).tasks(who, id, paging)
    paged(request, response, found, paging)
    return [task_resp(t) for t in found.items]


@router.get(
    "/replication/executions/{id}/tasks/{task_id}/log",
    summary="The log of a replication task",
    response_class=PlainTextResponse,
)
async def task_log(request: Request, who: Caller, id: Id, task_id: Id) -> PlainTextResponse:  # noqa: A002
    return PlainTextResponse(await _replication(request).task_log(who, id, task_id))
