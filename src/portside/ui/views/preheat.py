"""Pages: a project's P2P preheat tab, `/projects/{name}/preheat`. Its preheat policies
(which images a P2P instance is asked to fetch ahead of the pulls, and when), a form to
add one, a button that runs one now; each policy's executions, and an execution's tasks
with their logs (an image the project's pull policy would refuse says so there).

The form writes Harbor's JSON texts (filters, trigger, extra_attrs) from plain fields; the
service checks them, and who may change them (the project's administrators), as
/api/v2.0 does."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.errors import BadRequest, Conflict, Forbidden, NotFound, RegistryError, Unauthorized
from portside.meta.accounts import Project
from portside.mgmt.paging import Paging
from portside.mgmt.preheat import PolicyChange, PreheatService
from portside.mgmt.preheat_rules import SCOPES, TRIGGERS, parse_filters, parse_trigger
from portside.ui.render import page, read_form, redirect
from portside.ui.views import common
from portside.ui.visitor import Visitor, check_csrf, management, signed_in_user, visitor

__all__ = ["routes"]

_FIELDS = ("name", "description", "provider_id", "repository", "tag", "trigger", "cron", "scope", "cluster_ids")
_FIELD_OF = {"filters": "repository", "trigger": "trigger", "extra_attrs": "scope", "provider_id": "provider_id"}


def _preheat(request: Request) -> PreheatService:
    found = management(request).preheat
    if found is None:
        raise NotFound("P2P preheat is not available on this server")
    return found


async def _project(request: Request, who: Visitor) -> Project:
    # The project first: one the visitor may not see is missing, in the words of every tab.
    return (await management(request).projects.get(who.principal, request.path_params["name"])).project


def _base(project: Project) -> dict[str, Any]:
    return {
        "project": project,
        "tabs": common.project_tabs(project.name),
        "tab": "preheat",
        "project_url": common.project_url(project.name),
        "preheat_url": common.project_url(project.name, "preheat"),
    }


def _number(request: Request, key: str) -> int:
    text = request.path_params[key]
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise NotFound(f"{key.replace('_', ' ')} {text[:40]} not found")
    return int(text)


def _change(form: Any) -> PolicyChange:
    """Harbor's JSON texts from the form's plain fields."""
    filters = [
        {"type": kind, "value": form.get(kind, "").strip()}
        for kind in ("repository", "tag")
        if form.get(kind, "").strip()
    ]
    trigger: dict[str, Any] = {"type": form.get("trigger", "manual"), "trigger_setting": {}}
    if trigger["type"] == "scheduled":
        trigger["trigger_setting"] = {"cron": form.get("cron", "").strip()}
    try:
        clusters = [int(c) for c in form.get("cluster_ids", "").replace(",", " ").split()]
    except ValueError:
        raise BadRequest("extra_attrs: cluster ids are numbers, separated by commas") from None
    provider = form.get("provider_id", "")
    return PolicyChange(
        name=form.get("name", "").strip(),
        provider_id=int(provider) if provider.isascii() and provider.isdigit() and len(provider) < 10 else 0,
        filters=json.dumps(filters),
        trigger=json.dumps(trigger),
        extra_attrs=json.dumps({"scope": form.get("scope", "single_seed_peer"), "cluster_ids": clusters}),
        description=form.get("description", "").strip(),
        enabled=True,
    )


def _describe(filters: str, trigger: str) -> dict[str, str]:
    parsed, when = parse_filters(filters), parse_trigger(trigger)
    what = ", ".join(
        part
        for part in (
            f"repositories {parsed.repository}" if parsed.repository else "",
            f"tags {parsed.tag}" if parsed.tag else "",
        )
        if part
    )
    schedule = {"manual": "by hand", "event_based": "on push", "scheduled": f"on schedule {when.cron}"}[when.type]
    return {"what": what or "every image", "when": schedule}


async def _list_context(request: Request, who: Visitor, project: Project) -> dict[str, Any]:
    service = _preheat(request)
    paging = common.paging(request, 25)
    found = await service.list_policies(who.principal, project.name, None, "name", paging)
    providers = {i.id: i for i in await service.providers(who.principal, project.name)}
    default = next((i.id for i in providers.values() if i.default), "")
    return {
        **_base(project),
        "rows": [
            {"policy": p, "provider": providers.get(p.provider_id), **_describe(p.filters, p.trigger)}
            for p in found.items
        ],
        "total": found.total,
        "paging": paging,
        "providers": [i for i in providers.values() if i.enabled],
        "triggers": TRIGGERS,
        "scopes": SCOPES,
        "errors": {},
        "form": {"provider_id": str(default), "trigger": "manual", "scope": "single_seed_peer"},
    }


async def policies(request: Request) -> Response:
    who = await visitor(request)
    project = await _project(request, who)
    try:
        context = await _list_context(request, who, project)
    except (Forbidden, Unauthorized):
        # The tab is on every project's page; who may not read its policies is told so there.
        context = {**_base(project), "refused": True}
    return await page(request, "projects/preheat.html", context)


async def add(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    project = await _project(request, who)
    try:
        made = await _preheat(request).create_policy(who.principal, project.name, _change(form))
    except (BadRequest, Conflict) as error:
        context = await _list_context(request, who, project)
        context.update(
            {"errors": {_field(error): error.text}, "form": {k: form.get(k, "") for k in _FIELDS}, "open_form": True}
        )
        return await page(request, "projects/preheat.html", context, status=error.status)
    return redirect(common.project_url(project.name, "preheat"), notice=f"Preheat policy {made.name} added.")


def _field(error: RegistryError) -> str:
    head = error.text.split(":", 1)[0].split(" ", 1)[0]
    return _FIELD_OF.get(head, head if head in _FIELDS else "name")


async def run(request: Request) -> Response:
    who = await signed_in_user(request)
    check_csrf(request, who, await read_form(request))
    project = await _project(request, who)
    name = request.path_params["policy"]
    try:
        execution = await _preheat(request).run(who.principal, project.name, name)
    except BadRequest as error:
        return redirect(common.project_url(project.name, "preheat"), notice=error.text)
    url = f"{common.project_url(project.name, 'preheat')}/{name}"
    return redirect(url, notice=f"Execution {execution.id} of {name} started.")


async def delete(request: Request) -> Response:
    who = await signed_in_user(request)
    check_csrf(request, who, await read_form(request))
    project = await _project(request, who)
    removed = await _preheat(request).delete_policy(who.principal, project.name, request.path_params["policy"])
    return redirect(common.project_url(project.name, "preheat"), notice=f"Preheat policy {removed.name} removed.")


async def executions(request: Request) -> Response:
    who = await visitor(request)
    project = await _project(request, who)
    service = _preheat(request)
    policy = await service.get_policy(who.principal, project.name, request.path_params["policy"])
    paging = common.paging(request, 25)
    found = await service.list_executions(who.principal, project.name, policy.name, paging)
    context = {
        **_base(project),
        "policy": policy,
        **_describe(policy.filters, policy.trigger),
        "rows": found.items,
        "total": found.total,
        "paging": paging,
    }
    return await page(request, "projects/preheat_policy.html", context)


async def execution(request: Request) -> Response:
    who = await visitor(request)
    project = await _project(request, who)
    service = _preheat(request)
    policy = await service.get_policy(who.principal, project.name, request.path_params["policy"])
    number = _number(request, "execution_id")
    found = await service.get_execution(who.principal, project.name, policy.name, number)
    tasks = await service.list_tasks(who.principal, project.name, policy.name, number, Paging(1, 100))
    rows = []
    for task in tasks.items:
        log = await service.task_log(who.principal, project.name, policy.name, number, task.id)
        rows.append({"task": task, "attrs": json.loads(task.extra_attrs or "{}"), "log": log})
    context = {**_base(project), "policy": policy, "execution": found, "rows": rows, "total": tasks.total}
    return await page(request, "projects/preheat_execution.html", context)


routes: list[BaseRoute] = [
    Route("/projects/{name}/preheat", policies, methods=["GET", "HEAD"]),
    Route("/projects/{name}/preheat", add, methods=["POST"]),
    Route("/projects/{name}/preheat/{policy}", executions, methods=["GET", "HEAD"]),
    Route("/projects/{name}/preheat/{policy}/run", run, methods=["POST"]),
    Route("/projects/{name}/preheat/{policy}/delete", delete, methods=["POST"]),
    Route("/projects/{name}/preheat/{policy}/executions/{execution_id}", execution, methods=["GET", "HEAD"]),
]
