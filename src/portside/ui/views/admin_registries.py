"""Pages: administration's registries, `/admin/registries`. The other registries this server
talks to (Harbor's `/registries`, which the pull-through cache and replication name): each
one's health as the background check last found it, with its error; adding one (with a
connection test first, if wanted), changing, testing and removing one.

Only system administrators (and system robots given `registry` permissions) reach it: the
service checks, as /api/v2.0 does. A secret is never shown back; left empty on the edit
form, the stored one stays.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.errors import BadRequest, Conflict, NotFound, PreconditionFailed, RegistryError
from portside.meta.registries import Endpoint, NewEndpoint
from portside.mgmt.registries import MASKED_SECRET, EndpointChange, PingRequest, RegistryService, status_of
from portside.ui.render import page, read_form, redirect
from portside.ui.views import common
from portside.ui.views.admin import administration
from portside.ui.visitor import Visitor, check_csrf, management

__all__ = ["routes"]

REGISTRIES = "/admin/registries"
_FIELDS = ("name", "type", "url", "description", "access_key", "credential_type", "ca_certificate")
# The service's messages start with the field they are about ("url: …").
_FIELD_OF = {
    "name": "name",
    "type": "type",
    "url": "url",
    "ping": "url",
    "credential": "access_key",
    "ca_certificate": "ca_certificate",
    "description": "description",
}


def _registries(request: Request) -> RegistryService:
    found = management(request).registries
    if found is None:
        raise NotFound("registries are not available on this server")
    return found


def _endpoint_id(request: Request) -> int:
    text = request.path_params["registry_id"]
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise NotFound(f"registry {text[:40]} not found")
    return int(text)


def _field(error: RegistryError) -> str:
    head = error.text.split(":", 1)[0].split(".", 1)[0].split(" ", 1)[0]
    return _FIELD_OF.get(head, "name")


def _form_values(form: Any) -> dict[str, str]:
    return {key: form.get(key, "") for key in _FIELDS}


def _new(form: Any) -> NewEndpoint:
    return NewEndpoint(
        name=form.get("name", "").strip(),
        type=form.get("type", ""),
        url=form.get("url", "").strip(),
        description=form.get("description", "").strip(),
        insecure=form.get("insecure") == "on",
        ca_certificate=form.get("ca_certificate", "").strip() or None,
        credential_type=form.get("credential_type", "basic") if form.get("access_key", "").strip() else "",
        access_key=form.get("access_key", "").strip(),
        access_secret=form.get("access_secret", ""),
    )


def _change(form: Any) -> EndpointChange:
    new = _new(form)
    return EndpointChange(
        name=new.name,
        description=new.description,
        url=new.url,
        credential_type=new.credential_type,
        access_key=new.access_key,
        access_secret=new.access_secret or MASKED_SECRET,  # left empty: keep the stored one
        insecure=new.insecure,
        ca_certificate=new.ca_certificate or "",
    )


def _row(endpoint: Endpoint) -> dict[str, Any]:
    return {"endpoint": endpoint, "status": status_of(endpoint), "health": endpoint.health}


async def _list_context(request: Request, who: Visitor, nav: dict[str, Any]) -> dict[str, Any]:
    service = _registries(request)
    paging = common.paging(request, 25)
    found = await service.list(who.principal, None, "name", paging)
    return {
        **nav,
        "rows": [_row(e) for e in found.items],
        "total": found.total,
        "paging": paging,
        "types": service.adapter_types(who.principal),
        "errors": {},
        "form": {"type": "docker-registry", "credential_type": "basic"},
    }


async def registries(request: Request) -> Response:
    who, nav = await administration(request, "registries")
    return await page(request, "admin/registries.html", await _list_context(request, who, nav))


async def _refused(
    request: Request, template: str, context: dict[str, Any], form: Any, error: RegistryError
) -> Response:
    context.update({"errors": {_field(error): error.text}, "form": _form_values(form), "open_form": True})
    return await page(request, template, context, status=error.status)


async def add(request: Request) -> Response:
    who, nav = await administration(request, "registries")
    form = await read_form(request)
    check_csrf(request, who, form)
    service = _registries(request)
    new = _new(form)
    try:
        if form.get("test") == "1":  # "Test connection": a ping only, the form kept
            ping = PingRequest(
                type=new.type,
                url=new.url,
                credential_type=new.credential_type,
                access_key=new.access_key,
                access_secret=new.access_secret,
                insecure=new.insecure,
                ca_certificate=new.ca_certificate,
            )
            await service.ping(who.principal, ping)
            context = await _list_context(request, who, nav)
            context.update({"form": _form_values(form), "open_form": True, "tested": f"{new.url} answers."})
            return await page(request, "admin/registries.html", context)
        made = await service.create(who.principal, new)
    except (BadRequest, Conflict) as error:
        return await _refused(request, "admin/registries.html", await _list_context(request, who, nav), form, error)
    return redirect(REGISTRIES, notice=f"Registry {made.name} added; its health is checked in the background.")


async def _edit_context(request: Request, who: Visitor, nav: dict[str, Any], endpoint: Endpoint) -> dict[str, Any]:
    return {
        **nav,
        "row": _row(endpoint),
        "types": _registries(request).adapter_types(who.principal),
        "errors": {},
        "form": {
            "name": endpoint.name,
            "type": endpoint.type,
            "url": endpoint.url,
            "description": endpoint.description,
            "access_key": endpoint.access_key,
            "credential_type": endpoint.credential_type or "basic",
            "ca_certificate": endpoint.ca_certificate or "",
        },
        "insecure": endpoint.insecure,
    }


async def edit(request: Request) -> Response:
    who, nav = await administration(request, "registries")
    endpoint = await _registries(request).get(who.principal, _endpoint_id(request))
    return await page(request, "admin/registry.html", await _edit_context(request, who, nav, endpoint))


async def update(request: Request) -> Response:
    who, nav = await administration(request, "registries")
    form = await read_form(request)
    check_csrf(request, who, form)
    service = _registries(request)
    endpoint = await service.get(who.principal, _endpoint_id(request))
    change = _change(form)
    try:
        if form.get("test") == "1":
            ping = PingRequest(
                id=endpoint.id,
                url=change.url,
                credential_type=change.credential_type,
                access_key=change.access_key,
                access_secret=change.access_secret,
                insecure=change.insecure,
                ca_certificate=change.ca_certificate,
            )
            await service.ping(who.principal, ping)
            context = await _edit_context(request, who, nav, endpoint)
            context.update(
                {"form": _form_values(form), "insecure": change.insecure, "tested": f"{change.url} answers."}
            )
            return await page(request, "admin/registry.html", context)
        updated = await service.update(who.principal, endpoint.id, change)
    except (BadRequest, Conflict) as error:
        context = await _edit_context(request, who, nav, endpoint)
        context["insecure"] = change.insecure
        return await _refused(request, "admin/registry.html", context, form, error)
    return redirect(REGISTRIES, notice=f"Registry {updated.name} changed; its health is checked again.")


async def ping(request: Request) -> Response:
    who, _ = await administration(request, "registries")
    check_csrf(request, who, await read_form(request))
    service = _registries(request)
    endpoint = await service.get(who.principal, _endpoint_id(request))
    try:
        await service.ping(who.principal, PingRequest(id=endpoint.id))
    except BadRequest as error:
        return redirect(REGISTRIES, notice=f"{endpoint.name} is unhealthy: {error.text}")
    return redirect(REGISTRIES, notice=f"{endpoint.name} is healthy.")


async def delete(request: Request) -> Response:
    who, _ = await administration(request, "registries")
    check_csrf(request, who, await read_form(request))
    try:
        removed = await _registries(request).delete(who.principal, _endpoint_id(request))
    except PreconditionFailed as error:
        return redirect(REGISTRIES, notice=error.text)
    return redirect(REGISTRIES, notice=f"Registry {removed.name} removed.")


routes: list[BaseRoute] = [
    Route(REGISTRIES, registries, methods=["GET", "HEAD"]),
    Route(REGISTRIES, add, methods=["POST"]),
    Route(f"{REGISTRIES}/{{registry_id}}", edit, methods=["GET", "HEAD"]),
    Route(f"{REGISTRIES}/{{registry_id}}", update, methods=["POST"]),
    Route(f"{REGISTRIES}/{{registry_id}}/ping", ping, methods=["POST"]),
    Route(f"{REGISTRIES}/{{registry_id}}/delete", delete, methods=["POST"]),
]
