"""Pages: administration's replication, `/admin/replication`. The replication policies
(Harbor's `/replication/policies`) with a form to add one, each policy's page to change,
run or delete it and see its executions, a dry run ("these N artifacts would be copied"),
and each execution's tasks with their logs (mgmt/replication.py decides everything).

Only system administrators (and system robots given `replication-policy` permissions)
reach it: the service checks, as /api/v2.0 does. Every form posts with the CSRF token.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.errors import BadRequest, Conflict, NotFound, PreconditionFailed, RegistryError
from portside.meta.replication import Filter, NewPolicy, Policy
from portside.mgmt.paging import Paging
from portside.mgmt.replication import TRIGGERS, ReplicationService
from portside.ui.render import page, read_form, redirect
from portside.ui.views import common
from portside.ui.views.admin import administration
from portside.ui.visitor import Visitor, check_csrf, management

__all__ = ["routes"]

REPLICATION = "/admin/replication"
_TEXT_FIELDS = ("name", "description", "name_filter", "tag_filter", "exclude_tags", "dest_namespace", "cron")


def _replication(request: Request) -> ReplicationService:
    found = management(request).replication
    if found is None:
        raise NotFound("replication is not available on this server")
    return found


def _number(request: Request, key: str, noun: str) -> int:
    text = request.path_params[key]
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise NotFound(f"{noun} {text[:40]} not found")
    return int(text)


def _int(form: Any, key: str, default: int) -> int:
    text = str(form.get(key, "")).strip()
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise BadRequest(f"{key}: a whole number, not {text[:20]!r}") from None


def _new(form: Any) -> NewPolicy:
    registry = _int(form, "registry", 0) or None
    push = form.get("direction", "push") != "pull"
    filters: list[Filter] = []
    if form.get("name_filter", "").strip():
        filters.append(Filter("name", form.get("name_filter", "").strip()))
    if form.get("tag_filter", "").strip():
        filters.append(Filter("tag", form.get("tag_filter", "").strip(), "matches"))
    if form.get("exclude_tags", "").strip():
        filters.append(Filter("tag", form.get("exclude_tags", "").strip(), "excludes"))
    if form.get("resource", "") in ("image", "artifact"):
        filters.append(Filter("resource", form.get("resource", "")))
    speed = _int(form, "speed", -1)
    return NewPolicy(
        name=form.get("name", "").strip(),
        description=form.get("description", "").strip(),
        src_registry_id=None if push else registry,
        dest_registry_id=registry if push else None,
        dest_namespace=form.get("dest_namespace", "").strip(),
        dest_namespace_replace_count=_int(form, "replace_count", -1),
        filters=tuple(filters),
        trigger=form.get("trigger", "manual"),
        cron=form.get("cron", "").strip(),
        replicate_deletion=form.get("replicate_deletion") == "on",
        override=form.get("override") == "on",
        enabled=form.get("enabled") == "on",
        speed=-1 if speed == 0 else speed,
        copy_by_chunk=form.get("copy_by_chunk") == "on",
        single_active_replication=form.get("single_active_replication") == "on",
    )


def _form_of(policy: Policy) -> dict[str, Any]:
    tags = [f for f in policy.filters if f.type == "tag"]
    return {
        "name": policy.name,
        "description": policy.description,
        "direction": "push" if policy.src_registry_id is None else "pull",
        "registry": str(policy.dest_registry_id or policy.src_registry_id or ""),
        "name_filter": next((str(f.value) for f in policy.filters if f.type == "name"), ""),
        "tag_filter": next((str(f.value) for f in tags if f.decoration != "excludes"), ""),
        "exclude_tags": next((str(f.value) for f in tags if f.decoration == "excludes"), ""),
        "resource": next((str(f.value) for f in policy.filters if f.type == "resource"), ""),
        "dest_namespace": policy.dest_namespace,
        "replace_count": str(policy.dest_namespace_replace_count),
        "trigger": policy.trigger,
        "cron": policy.cron,
        "speed": str(policy.speed),
        "replicate_deletion": policy.replicate_deletion,
        "override": policy.override,
        "enabled": policy.enabled,
        "copy_by_chunk": policy.copy_by_chunk,
        "single_active_replication": policy.single_active_replication,
    }


def _posted(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {key: form.get(key, "") for key in _TEXT_FIELDS}
    values.update(
        direction=form.get("direction", "push"),
        registry=form.get("registry", ""),
        resource=form.get("resource", ""),
        replace_count=form.get("replace_count", "-1"),
        trigger=form.get("trigger", "manual"),
        speed=form.get("speed", "-1"),
    )
    for flag in ("replicate_deletion", "override", "enabled", "copy_by_chunk", "single_active_replication"):
        values[flag] = form.get(flag) == "on"
    return values


_BLANK = {
    "direction": "push",
    "trigger": "manual",
    "replace_count": "-1",
    "speed": "-1",
    "override": True,
    "enabled": True,
}


async def _registry_choices(request: Request, who: Visitor) -> list[tuple[int, str]]:
    registries = management(request).registries
    if registries is None:
        return []
    found = await registries.list(who.principal, None, "name", Paging(1, 100))
    return [(e.id, f"{e.name} ({e.type}, {e.url})") for e in found.items]


async def _names(service: ReplicationService, policy: Policy) -> str:
    src, dest = await service.registry_names(policy)
    if dest is not None:
        return f"push to {dest.name}"
    return f"pull from {src.name}" if src is not None else "?"


async def _list_context(request: Request, who: Visitor, nav: dict[str, Any]) -> dict[str, Any]:
    service = _replication(request)
    paging = common.paging(request, 25)
    found = await service.list_policies(who.principal, None, paging)
    executions = await service.list_executions(who.principal, None, None, None, Paging(1, 10))
    return {
        **nav,
        "rows": [{"policy": p, "way": await _names(service, p)} for p in found.items],
        "total": found.total,
        "paging": paging,
        "executions": executions.items,
        "registries": await _registry_choices(request, who),
        "triggers": TRIGGERS,
        "errors": {},
        "form": dict(_BLANK),
    }


def _field(error: RegistryError) -> str:
    text = error.text
    for key in ("cron", "speed", "dest_namespace", "filter", "registry", "trigger", "name"):
        if key in text:
            return {"filter": "name_filter", "registry": "registry"}.get(key, key)
    return "name"


async def policies(request: Request) -> Response:
    who, nav = await administration(request, "replication")
    return await page(request, "admin/replication.html", await _list_context(request, who, nav))


async def add(request: Request) -> Response:
    who, nav = await administration(request, "replication")
    form = await read_form(request)
    check_csrf(request, who, form)
    try:
        made = await _replication(request).create_policy(who.principal, _new(form))
    except (BadRequest, Conflict) as error:
        context = await _list_context(request, who, nav)
        context.update({"errors": {_field(error): error.text}, "form": _posted(form), "open_form": True})
        return await page(request, "admin/replication.html", context, status=error.status)
    return redirect(f"{REPLICATION}/{made.id}", notice=f"Replication policy {made.name} added.")


async def _policy_context(
    request: Request, who: Visitor, nav: dict[str, Any], policy: Policy, form: dict[str, Any] | None = None
) -> dict[str, Any]:
    service = _replication(request)
    paging = common.paging(request, 25)
    executions = await service.list_executions(who.principal, policy.id, None, None, paging)
    return {
        **nav,
        "policy": policy,
        "way": await _names(service, policy),
        "executions": executions.items,
        "total": executions.total,
        "paging": paging,
        "registries": await _registry_choices(request, who),
        "triggers": TRIGGERS,
        "errors": {},
        "form": form or _form_of(policy),
    }


async def show(request: Request) -> Response:
    who, nav = await administration(request, "replication")
    policy = await _replication(request).get_policy(who.principal, _number(request, "policy_id", "policy"))
    return await page(request, "admin/replication_policy.html", await _policy_context(request, who, nav, policy))


async def update(request: Request) -> Response:
    who, nav = await administration(request, "replication")
    form = await read_form(request)
    check_csrf(request, who, form)
    service = _replication(request)
    policy = await service.get_policy(who.principal, _number(request, "policy_id", "policy"))
    try:
        updated = await service.update_policy(who.principal, policy.id, _new(form))
    except (BadRequest, Conflict) as error:
        context = await _policy_context(request, who, nav, policy, _posted(form))
        context["errors"] = {_field(error): error.text}
        return await page(request, "admin/replication_policy.html", context, status=error.status)
    return redirect(f"{REPLICATION}/{updated.id}", notice=f"Replication policy {updated.name} changed.")


async def run(request: Request) -> Response:
    who, _ = await administration(request, "replication")
    check_csrf(request, who, await read_form(request))
    policy_id = _number(request, "policy_id", "policy")
    try:
        execution_id = await _replication(request).start(who.principal, policy_id)
    except (Conflict, PreconditionFailed) as error:
        return redirect(f"{REPLICATION}/{policy_id}", notice=error.text)
    return redirect(f"{REPLICATION}/executions/{execution_id}", notice="Execution started.")


async def delete(request: Request) -> Response:
    who, _ = await administration(request, "replication")
    check_csrf(request, who, await read_form(request))
    policy_id = _number(request, "policy_id", "policy")
    try:
        await _replication(request).delete_policy(who.principal, policy_id)
    except PreconditionFailed as error:
        return redirect(f"{REPLICATION}/{policy_id}", notice=error.text)
    return redirect(REPLICATION, notice="Replication policy deleted.")


async def dry_run(request: Request) -> Response:
    who, nav = await administration(request, "replication")
    service = _replication(request)
    policy = await service.get_policy(who.principal, _number(request, "policy_id", "policy"))
    problem = ""
    try:
        found = await service.dry_run(who.principal, policy.id)
    except RegistryError as error:
        found, problem = [], error.text
    except Exception as error:  # noqa: BLE001 (the source is another registry: say what it answered)
        found, problem = [], f"the source could not be listed: {error}"
    context = {**nav, "policy": policy, "way": await _names(service, policy), "found": found, "problem": problem}
    return await page(request, "admin/replication_dry_run.html", context)


async def execution(request: Request) -> Response:
    who, nav = await administration(request, "replication")
    service = _replication(request)
    found = await service.get_execution(who.principal, _number(request, "execution_id", "execution"))
    paging = common.paging(request, 50)
    tasks = await service.tasks(who.principal, found.id, paging)
    policy = await service.get_policy(who.principal, found.policy_id)
    context = {
        **nav,
        "execution": found,
        "policy": policy,
        "tasks": tasks.items,
        "total": tasks.total,
        "paging": paging,
    }
    return await page(request, "admin/replication_execution.html", context)


async def stop(request: Request) -> Response:
    who, _ = await administration(request, "replication")
    check_csrf(request, who, await read_form(request))
    execution_id = _number(request, "execution_id", "execution")
    await _replication(request).stop(who.principal, execution_id)
    return redirect(f"{REPLICATION}/executions/{execution_id}", notice="Stop requested.")


async def task_log(request: Request) -> Response:
    who, nav = await administration(request, "replication")
    service = _replication(request)
    execution_id = _number(request, "execution_id", "execution")
    task_id = _number(request, "task_id", "task")
    text = await service.task_log(who.principal, execution_id, task_id)
    context = {**nav, "execution_id": execution_id, "task_id": task_id, "log": text}
    return await page(request, "admin/replication_log.html", context)


routes: list[BaseRoute] = [
    Route(REPLICATION, policies, methods=["GET", "HEAD"]),
    Route(REPLICATION, add, methods=["POST"]),
    Route(f"{REPLICATION}/executions/{{execution_id}}", execution, methods=["GET", "HEAD"]),
    Route(f"{REPLICATION}/executions/{{execution_id}}/stop", stop, methods=["POST"]),
    Route(f"{REPLICATION}/executions/{{execution_id}}/tasks/{{task_id}}/log", task_log, methods=["GET", "HEAD"]),
    Route(f"{REPLICATION}/{{policy_id}}", show, methods=["GET", "HEAD"]),
    Route(f"{REPLICATION}/{{policy_id}}", update, methods=["POST"]),
    Route(f"{REPLICATION}/{{policy_id}}/run", run, methods=["POST"]),
    Route(f"{REPLICATION}/{{policy_id}}/delete", delete, methods=["POST"]),
    Route(f"{REPLICATION}/{{policy_id}}/dry-run", dry_run, methods=["GET", "HEAD"]),
]
