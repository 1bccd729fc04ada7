"""Harbor's P2P preheat over HTTP: `/p2p/preheat/providers`, `/p2p/preheat/instances` (with
`ping`), `/projects/{project_name}/preheat/providers`, and `/projects/{project_name}/preheat/
policies` with their executions, tasks and logs (mgmt/p2p_instances.py and mgmt/preheat.py
decide). A manual run is Harbor's `POST .../policies/{name}`; an execution is stopped with
`PATCH .../executions/{id}` and `{"status": "Stopped"}`.

An instance's secret is never sent: `auth_info` shows its user or header name, and
Harbor's `*****` for the stored secret."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from portside.errors import BadRequest, NotFound
from portside.http.api.context import Caller, Pages, iso, paged, services
from portside.meta.preheat import Execution, Instance, NewInstance, Policy, Task
from portside.mgmt.limits import MAX_ID
from portside.mgmt.p2p_instances import MASKED_SECRET, InstanceChange, InstanceService
from portside.mgmt.preheat import PolicyChange, PreheatService
from portside.remote.p2p import DriverInfo

__all__ = ["router"]

router = APIRouter(tags=["preheat"])
_Name = Annotated[str, Path(max_length=255)]
_Id = Annotated[int, Path(ge=1, le=MAX_ID)]
_Text = Annotated[str, Field(max_length=65_535)]
_INSTANCES = "/p2p/preheat/instances"
_POLICIES = "/projects/{project_name}/preheat/policies"
_POLICY = _POLICIES + "/{preheat_policy_name}"
_EXECUTION = _POLICY + "/executions/{execution_id}"


def _preheat(request: Request) -> PreheatService:
    found = services(request).preheat
    if found is None:
        raise NotFound("P2P preheat is not available on this server")
    return found


def _instances(request: Request) -> InstanceService:
    return _preheat(request).instances


# --- instances --------------------------------------------------------------------------


class InstanceReq(BaseModel):
    """Harbor's Instance; `auth_info` by auth mode: BASIC {username, password}, OAUTH
    {token}, CUSTOM {header_key, header_value}. Read-only fields are ignored."""

    id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    name: Annotated[str, Field(max_length=255)] | None = None
    description: _Text | None = None
    vendor: Annotated[str, Field(max_length=32)] | None = None
    endpoint: Annotated[str, Field(max_length=1024)] | None = None
    auth_mode: Annotated[str, Field(max_length=16)] | None = None
    auth_info: dict[str, Annotated[str, Field(max_length=65_535)]] | None = None
    enabled: bool | None = None
    default: bool | None = None
    insecure: bool | None = None

    def change(self) -> InstanceChange:
        key, secret = _auth(self.auth_mode, self.auth_info)
        return InstanceChange(
            name=self.name,
            description=self.description,
            vendor=self.vendor,
            endpoint=self.endpoint,
            auth_mode=self.auth_mode,
            auth_key=key,
            auth_secret=secret,
            enabled=self.enabled,
            default=self.default,
            insecure=self.insecure,
        )

    def new(self) -> NewInstance:
        key, secret = _auth(self.auth_mode, self.auth_info)
        return NewInstance(
            name=self.name or "",
            vendor=self.vendor or "",
            endpoint=self.endpoint or "",
            description=self.description or "",
            auth_mode=self.auth_mode or "NONE",
            auth_key=key or "",
            auth_secret=secret or "",
            enabled=True if self.enabled is None else self.enabled,
            default=bool(self.default),
            insecure=bool(self.insecure),
        )


def _auth(mode: str | None, info: dict[str, str] | None) -> tuple[str | None, str | None]:
    """The key and secret `auth_info` holds for `mode` (None: not given, kept as stored)."""
    if info is None:
        return None, None
    kind = (mode or "").upper()
    if kind == "BASIC":
        return info.get("username", ""), info.get("password")
    if kind == "OAUTH":
        return "", info.get("token")
    if kind == "CUSTOM":
        return info.get("header_key", ""), info.get("header_value")
    return None, None


def instance_resp(instance: Instance) -> dict[str, Any]:
    """Harbor's Instance, the secret masked; `last_error` is Portside's (why the last
    check found it unhealthy)."""
    masked = MASKED_SECRET if instance.has_secret else ""
    auth_info: dict[str, str] = {}
    if instance.auth_mode == "BASIC":
        auth_info = {"username": instance.auth_key, "password": masked}
    elif instance.auth_mode == "OAUTH":
        auth_info = {"token": masked}
    elif instance.auth_mode == "CUSTOM":
        auth_info = {"header_key": instance.auth_key, "header_value": masked}
    return {
        "id": instance.id,
        "name": instance.name,
        "description": instance.description,
        "vendor": instance.vendor,
        "endpoint": instance.endpoint,
        "auth_mode": instance.auth_mode,
        "auth_info": auth_info,
        "status": instance.status,
        "last_error": instance.last_error,
        "enabled": instance.enabled,
        "default": instance.default,
        "insecure": instance.insecure,
        "setup_timestamp": instance.setup_timestamp,
    }


def provider_resp(info: DriverInfo) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "icon": info.icon,
        "maintainers": list(info.maintainers),
        "version": info.version,
        "source": info.source,
    }


@router.get("/p2p/preheat/providers", summary="The P2P providers Portside has drivers for")
async def list_providers(request: Request, who: Caller) -> list[dict[str, Any]]:
    return [provider_resp(p) for p in _instances(request).providers(who)]


@router.get(_INSTANCES, summary="The P2P preheat instances (system administrators)")
async def list_instances(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    q: Annotated[str | None, Query(max_length=4096)] = None,
    sort: Annotated[str | None, Query(max_length=1024)] = None,
) -> list[dict[str, Any]]:
    found = await _instances(request).list(who, q, sort, paging)
    paged(request, response, found, paging)
    return [instance_resp(i) for i in found.items]


@router.post(_INSTANCES, summary="Add a P2P preheat instance", status_code=201, response_class=Response)
async def create_instance(request: Request, response: Response, who: Caller, body: InstanceReq) -> None:
    made = await _instances(request).create(who, body.new())
    response.headers["Location"] = f"{request.url.path}/{made.name}"


@router.post(_INSTANCES + "/ping", summary="Whether an instance answers healthy", response_class=Response)
async def ping_instance(request: Request, who: Caller, body: InstanceReq) -> None:
    await _instances(request).ping(who, body.id, body.change())


@router.get(_INSTANCES + "/{preheat_instance_name}", summary="A P2P preheat instance")
async def get_instance(request: Request, who: Caller, preheat_instance_name: _Name) -> dict[str, Any]:
    return instance_resp(await _instances(request).get(who, preheat_instance_name))


@router.put(_INSTANCES + "/{preheat_instance_name}", summary="Change an instance", response_class=Response)
async def update_instance(request: Request, who: Caller, preheat_instance_name: _Name, body: InstanceReq) -> None:
    await _instances(request).update(who, preheat_instance_name, body.change())


@router.delete(
    _INSTANCES + "/{preheat_instance_name}", summary="Remove an instance no policy uses", response_class=Response
)
async def delete_instance(request: Request, who: Caller, preheat_instance_name: _Name) -> None:
    await _instances(request).delete(who, preheat_instance_name)


# --- policies ---------------------------------------------------------------------------


class PolicyReq(BaseModel):
    """Harbor's PreheatPolicy: `filters`, `trigger` and `extra_attrs` are JSON texts."""

    name: Annotated[str, Field(max_length=255)] = ""
    description: _Text = ""
    provider_id: Annotated[int, Field(ge=0, le=MAX_ID)] = 0
    filters: _Text = ""
    trigger: _Text = ""
    enabled: bool = True
    extra_attrs: _Text = ""

    def change(self) -> PolicyChange:
        return PolicyChange(
            name=self.name,
            provider_id=self.provider_id,
            filters=self.filters,
            trigger=self.trigger,
            extra_attrs=self.extra_attrs,
            description=self.description,
            enabled=self.enabled,
        )


def policy_resp(policy: Policy, provider_name: str = "") -> dict[str, Any]:
    return {
        "id": policy.id,
        "name": policy.name,
        "description": policy.description,
        "project_id": policy.project_id,
        "provider_id": policy.provider_id,
        "provider_name": provider_name,
        "filters": policy.filters,
        "trigger": policy.trigger,
        "enabled": policy.enabled,
        "extra_attrs": policy.extra_attrs,
        "creation_time": iso(policy.creation_time),
        "update_time": iso(policy.update_time),
    }


def execution_resp(execution: Execution) -> dict[str, Any]:
    counts = execution.counts
    return {
        "id": execution.id,
        "vendor_type": "P2P_PREHEAT",
        "vendor_id": execution.policy_id,
        "status": execution.status,
        "status_message": execution.status_message,
        "metrics": {
            "task_count": counts.total,
            "success_task_count": counts.success,
            "error_task_count": counts.error,
            "pending_task_count": counts.pending,
            "running_task_count": counts.running,
            "scheduled_task_count": 0,
            "stopped_task_count": counts.stopped,
        },
        "trigger": execution.trigger,
        "extra_attrs": _object(execution.extra_attrs),
        "start_time": iso(execution.start_time),
        "end_time": _time(execution.end_time),
    }


def task_resp(task: Task) -> dict[str, Any]:
    return {
        "id": task.id,
        "execution_id": task.execution_id,
        "status": task.status,
        "status_message": task.status_message,
        "run_count": task.run_count,
        "extra_attrs": _object(task.extra_attrs),
        "creation_time": iso(task.creation_time),
        "update_time": iso(task.update_time),
        "start_time": _time(task.start_time),
        "end_time": _time(task.end_time),
    }


def _object(text: str) -> dict[str, Any]:
    found = json.loads(text) if text else {}
    return found if isinstance(found, dict) else {}


def _time(when: datetime | None) -> str:
    return iso(when) or ""  # Harbor sends "" for a time not reached yet


async def _provider_names(service: PreheatService) -> dict[int, str]:
    return {i.id: i.name for i in await service.instances.all()}


@router.get("/projects/{project_name}/preheat/providers", summary="The instances a project's policies may use")
async def list_project_providers(request: Request, who: Caller, project_name: _Name) -> list[dict[str, Any]]:
    found = await _preheat(request).providers(who, project_name)
    return [{"id": i.id, "provider": i.name, "enabled": i.enabled, "default": i.default} for i in found]


@router.get(_POLICIES, summary="A project's preheat policies")
async def list_policies(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    project_name: _Name,
    q: Annotated[str | None, Query(max_length=4096)] = None,
    sort: Annotated[str | None, Query(max_length=1024)] = None,
) -> list[dict[str, Any]]:
    service = _preheat(request)
    found = await service.list_policies(who, project_name, q, sort, paging)
    paged(request, response, found, paging)
    names = await _provider_names(service)
    return [policy_resp(p, names.get(p.provider_id, "")) for p in found.items]


@router.post(_POLICIES, summary="Add a preheat policy", status_code=201, response_class=Response)
async def create_policy(
    request: Request, response: Response, who: Caller, project_name: _Name, body: PolicyReq
) -> None:
    made = await _preheat(request).create_policy(who, project_name, body.change())
    response.headers["Location"] = f"{request.url.path}/{made.name}"


@router.get(_POLICY, summary="A preheat policy")
async def get_policy(request: Request, who: Caller, project_name: _Name, preheat_policy_name: _Name) -> dict[str, Any]:
    service = _preheat(request)
    policy = await service.get_policy(who, project_name, preheat_policy_name)
    return policy_resp(policy, (await _provider_names(service)).get(policy.provider_id, ""))


@router.put(_POLICY, summary="Change a preheat policy", response_class=Response)
async def update_policy(
    request: Request, who: Caller, project_name: _Name, preheat_policy_name: _Name, body: PolicyReq
) -> None:
    await _preheat(request).update_policy(who, project_name, preheat_policy_name, body.change())


@router.delete(_POLICY, summary="Remove a preheat policy with its executions", response_class=Response)
async def delete_policy(request: Request, who: Caller, project_name: _Name, preheat_policy_name: _Name) -> None:
    await _preheat(request).delete_policy(who, project_name, preheat_policy_name)


@router.post(_POLICY, summary="Run a preheat policy now", status_code=201, response_class=Response)
async def manual_preheat(
    request: Request,
    response: Response,
    who: Caller,
    project_name: _Name,
    preheat_policy_name: _Name,
    body: Annotated[dict[str, Any] | None, Body()] = None,  # Harbor sends the policy; its name decides
) -> None:
    execution = await _preheat(request).run(who, project_name, preheat_policy_name)
    response.headers["Location"] = f"{request.url.path}/executions/{execution.id}"


@router.get(_POLICY + "/executions", summary="A preheat policy's executions, newest first")
async def list_executions(
    request: Request, response: Response, who: Caller, paging: Pages, project_name: _Name, preheat_policy_name: _Name
) -> list[dict[str, Any]]:
    found = await _preheat(request).list_executions(who, project_name, preheat_policy_name, paging)
    paged(request, response, found, paging)
    return [execution_resp(e) for e in found.items]


@router.get(_EXECUTION, summary="An execution of a preheat policy")
async def get_execution(
    request: Request, who: Caller, project_name: _Name, preheat_policy_name: _Name, execution_id: _Id
) -> dict[str, Any]:
    return execution_resp(await _preheat(request).get_execution(who, project_name, preheat_policy_name, execution_id))


class ExecutionPatch(BaseModel):
    status: Annotated[str, Field(max_length=16)] = ""


@router.patch(_EXECUTION, summary="Stop an execution", response_class=Response)
async def stop_execution(
    request: Request,
    who: Caller,
    project_name: _Name,
    preheat_policy_name: _Name,
    execution_id: _Id,
    body: ExecutionPatch,
) -> None:
    if body.status != "Stopped":
        raise BadRequest('status: an execution can only be stopped ({"status": "Stopped"})')
    await _preheat(request).stop_execution(who, project_name, preheat_policy_name, execution_id)


@router.get(_EXECUTION + "/tasks", summary="The tasks of an execution: one per image sent")
async def list_tasks(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    project_name: _Name,
    preheat_policy_name: _Name,
    execution_id: _Id,
) -> list[dict[str, Any]]:
    found = await _preheat(request).list_tasks(who, project_name, preheat_policy_name, execution_id, paging)
    paged(request, response, found, paging)
    return [task_resp(t) for t in found.items]


@router.get(_EXECUTION + "/tasks/{task_id}/logs", summary="A task's log", response_class=PlainTextResponse)
async def task_log(
    request: Request, who: Caller, project_name: _Name, preheat_policy_name: _Name, execution_id: _Id, task_id: _Id
) -> PlainTextResponse:
    text = await _preheat(request).task_log(who, project_name, preheat_policy_name, execution_id, task_id)
    return PlainTextResponse(text)
