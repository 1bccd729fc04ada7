"""Pages: administration's P2P preheat instances, `/admin/preheat`. The Dragonfly or Kraken
deployments this server asks to fetch images ahead of the pulls (Harbor's
`/p2p/preheat/instances`): each one's health as the background check last found it, with
its error; adding one (with a connection test first, if wanted), testing, making default,
enabling or disabling, and removing one.

Only system administrators (and system robots given `preheat-instance` permissions) reach
it: the service checks, as /api/v2.0 does. A secret is never shown back."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.errors import BadRequest, Conflict, NotFound, PreconditionFailed, RegistryError
from portside.meta.preheat import AUTH_MODES, NewInstance
from portside.mgmt.p2p_instances import InstanceChange, InstanceService
from portside.ui.render import page, read_form, redirect
from portside.ui.views.admin import administration
from portside.ui.visitor import Visitor, check_csrf, management

__all__ = ["routes"]

PREHEAT = "/admin/preheat"
_FIELDS = ("name", "vendor", "endpoint", "description", "auth_mode", "auth_key")
# The service's messages start with the field they are about ("endpoint: …").
_FIELD_OF = {"auth_info": "auth_key", "ping": "endpoint"}


def _instances(request: Request) -> InstanceService:
    found = management(request).preheat
    if found is None:
        raise NotFound("P2P preheat is not available on this server")
    return found.instances


def _field(error: RegistryError) -> str:
    head = error.text.split(":", 1)[0].split(".", 1)[0].split(" ", 1)[0]
    return _FIELD_OF.get(head, head if head in _FIELDS else "name")


def _new(form: Any) -> NewInstance:
    return NewInstance(
        name=form.get("name", "").strip(),
        vendor=form.get("vendor", ""),
        endpoint=form.get("endpoint", "").strip(),
        description=form.get("description", "").strip(),
        auth_mode=form.get("auth_mode", "NONE"),
        auth_key=form.get("auth_key", "").strip(),
        auth_secret=form.get("auth_secret", ""),
        enabled=True,
        default=form.get("default") == "on",
        insecure=form.get("insecure") == "on",
    )


async def _context(request: Request, who: Visitor, nav: dict[str, Any]) -> dict[str, Any]:
    service = _instances(request)
    return {
        **nav,
        "rows": await service.all(),
        "vendors": [p.id for p in service.providers(who.principal)],
        "auth_modes": AUTH_MODES,
        "errors": {},
        "form": {"vendor": "dragonfly", "auth_mode": "NONE"},
    }


async def instances(request: Request) -> Response:
    who, nav = await administration(request, "preheat")
    return await page(request, "admin/preheat.html", await _context(request, who, nav))


async def add(request: Request) -> Response:
    who, nav = await administration(request, "preheat")
    form = await read_form(request)
    check_csrf(request, who, form)
    service = _instances(request)
    new = _new(form)
    try:
        if form.get("test") == "1":  # "Test connection": a ping only, the form kept
            change = InstanceChange(
                vendor=new.vendor,
                endpoint=new.endpoint,
                auth_mode=new.auth_mode,
                auth_key=new.auth_key,
                auth_secret=new.auth_secret,
                insecure=new.insecure,
            )
            await service.ping(who.principal, None, change)
            context = await _context(request, who, nav)
            form_values = {key: form.get(key, "") for key in _FIELDS}
            context.update({"form": form_values, "open_form": True, "tested": f"{new.endpoint} is healthy."})
            return await page(request, "admin/preheat.html", context)
        made = await service.create(who.principal, new)
    except (BadRequest, Conflict) as error:
        context = await _context(request, who, nav)
        form_values = {key: form.get(key, "") for key in _FIELDS}
        context.update({"errors": {_field(error): error.text}, "form": form_values, "open_form": True})
        return await page(request, "admin/preheat.html", context, status=error.status)
    return redirect(PREHEAT, notice=f"Instance {made.name} added; its health is checked in the background.")


async def ping(request: Request) -> Response:
    who, _ = await administration(request, "preheat")
    check_csrf(request, who, await read_form(request))
    service = _instances(request)
    instance = await service.get(who.principal, request.path_params["name"])
    try:
        await service.ping(who.principal, instance.id, InstanceChange())
    except BadRequest as error:
        return redirect(PREHEAT, notice=f"{instance.name} is unhealthy: {error.text}")
    return redirect(PREHEAT, notice=f"{instance.name} is healthy.")


async def change(request: Request) -> Response:
    """The list's buttons: make default, enable, disable."""
    who, _ = await administration(request, "preheat")
    form = await read_form(request)
    check_csrf(request, who, form)
    service = _instances(request)
    name = request.path_params["name"]
    wanted = {
        "default": InstanceChange(default=True, enabled=True),
        "enable": InstanceChange(enabled=True),
        "disable": InstanceChange(enabled=False, default=False),
    }.get(form.get("change", ""))
    if wanted is None:
        raise BadRequest("change: one of default, enable, disable")
    updated = await service.update(who.principal, name, wanted)
    state = "the default" if updated.default else ("enabled" if updated.enabled else "disabled")
    return redirect(PREHEAT, notice=f"Instance {updated.name} is {state}.")


async def delete(request: Request) -> Response:
    who, _ = await administration(request, "preheat")
    check_csrf(request, who, await read_form(request))
    try:
        removed = await _instances(request).delete(who.principal, request.path_params["name"])
    except PreconditionFailed as error:
        return redirect(PREHEAT, notice=error.text)
    return redirect(PREHEAT, notice=f"Instance {removed.name} removed.")


routes: list[BaseRoute] = [
    Route(PREHEAT, instances, methods=["GET", "HEAD"]),
    Route(PREHEAT, add, methods=["POST"]),
    Route(f"{PREHEAT}/{{name}}/ping", ping, methods=["POST"]),
    Route(f"{PREHEAT}/{{name}}/change", change, methods=["POST"]),
    Route(f"{PREHEAT}/{{name}}/delete", delete, methods=["POST"]),
]
