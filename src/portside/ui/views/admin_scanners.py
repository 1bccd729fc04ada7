"""Pages: administration's scanners, `/admin/scanners`. The built-in scanner and the
external adapters registered under Harbor's `/scanners`: their health and what they are,
registering one (with a connection test first, if wanted), making one the default,
disabling and enabling, and removing one. Projects choose theirs on their settings tab.

Only system administrators change registrations (the service checks `scanner` permissions,
as /api/v2.0 does); credentials are never shown back, only masked.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.errors import BadRequest, Conflict, NotFound, RegistryError
from portside.meta.scanners import NewRegistration
from portside.mgmt.scanners import MASKED_CREDENTIAL, ScannerRegistry, ScannerView
from portside.ui.render import page, read_form, redirect
from portside.ui.views.admin import administration
from portside.ui.visitor import Visitor, check_csrf, management

__all__ = ["routes"]

SCANNERS = "/admin/scanners"
AUTH_SCHEMES = (("", "None"), ("Basic", "Basic"), ("Bearer", "Bearer"), ("X-ScannerAdapter-API-Key", "API key header"))
_FIELDS = ("name", "url", "auth", "access_credential", "description")


def _registry(request: Request) -> ScannerRegistry:
    scans = management(request).scans
    if scans is None or scans.registry is None:
        raise NotFound("this server does not scan")
    return scans.registry


def _registration(form: Any) -> NewRegistration:
    auth = form.get("auth", "")
    if auth not in {key for key, _ in AUTH_SCHEMES}:
        raise BadRequest(f"unknown authentication scheme {auth[:40]!r}")
    return NewRegistration(
        name=form.get("name", "").strip(),
        url=form.get("url", "").strip(),
        description=form.get("description", "").strip(),
        auth=auth,
        access_credential=form.get("access_credential", "") if auth else "",
    )


async def _context(request: Request, who: Visitor, nav: dict[str, Any]) -> dict[str, Any]:
    scanners = await _registry(request).list(who.principal)
    return {**nav, "scanners": scanners, "auth_schemes": AUTH_SCHEMES, "errors": {}, "form": {}}


async def scanners(request: Request) -> Response:
    who, nav = await administration(request, "scanners")
    return await page(request, "admin/scanners.html", await _context(request, who, nav))


async def _form_refused(
    request: Request, who: Visitor, nav: dict[str, Any], form: Any, error: RegistryError
) -> Response:
    context = await _context(request, who, nav)
    field = "url" if "url" in error.text.lower() or "ping" in error.text.lower() else "name"
    context.update(
        {
            "errors": {field: error.text},
            "form": {key: form.get(key, "") for key in _FIELDS if key != "access_credential"},
            "open_form": True,
        }
    )
    return await page(request, "admin/scanners.html", context, status=error.status)


async def register(request: Request) -> Response:
    who, nav = await administration(request, "scanners")
    form = await read_form(request)
    check_csrf(request, who, form)
    registry = _registry(request)
    try:
        new = _registration(form)
        if form.get("test") == "1":  # "Test connection": ping only, keep the form
            metadata = await registry.ping(who.principal, new)
            context = await _context(request, who, nav)
            scanner = metadata.scanner
            context.update(
                {
                    "form": {key: form.get(key, "") for key in _FIELDS if key != "access_credential"},
                    "open_form": True,
                    "tested": f"{new.url} answers: {scanner.name} {scanner.version} by {scanner.vendor}.",
                }
            )
            return await page(request, "admin/scanners.html", context)
        made = await registry.create(who.principal, new)
    except (BadRequest, Conflict) as error:
        return await _form_refused(request, who, nav, form, error)
    return redirect(SCANNERS, notice=f"Scanner {made.name} registered.")


async def _chosen(request: Request, who: Visitor) -> ScannerView:
    return await _registry(request).get(who.principal, request.path_params["scanner_id"])


async def make_default(request: Request) -> Response:
    who, _ = await administration(request, "scanners")
    check_csrf(request, who, await read_form(request))
    chosen = await _chosen(request, who)
    await _registry(request).set_default(who.principal, chosen.uuid)
    return redirect(SCANNERS, notice=f"{chosen.name} is now the default scanner.")


async def _set_disabled(request: Request, disabled: bool) -> Response:
    who, _ = await administration(request, "scanners")
    check_csrf(request, who, await read_form(request))
    chosen = await _chosen(request, who)
    kept = NewRegistration(
        name=chosen.name,
        url=chosen.url,
        description=chosen.description,
        auth=chosen.auth,
        access_credential=MASKED_CREDENTIAL,  # the stored credential stays
        skip_cert_verify=chosen.skip_cert_verify,
        use_internal_addr=chosen.use_internal_addr,
        disabled=disabled,
    )
    await _registry(request).update(who.principal, chosen.uuid, kept)
    return redirect(SCANNERS, notice=f"{chosen.name} {'disabled' if disabled else 'enabled'}.")


async def disable(request: Request) -> Response:
    return await _set_disabled(request, True)


async def enable(request: Request) -> Response:
    return await _set_disabled(request, False)


async def delete(request: Request) -> Response:
    who, _ = await administration(request, "scanners")
    check_csrf(request, who, await read_form(request))
    removed = await _registry(request).delete(who.principal, request.path_params["scanner_id"])
    return redirect(SCANNERS, notice=f"Scanner {removed.name} removed; its projects use the default now.")


routes: list[BaseRoute] = [
    Route(SCANNERS, scanners, methods=["GET", "HEAD"]),
    Route(SCANNERS, register, methods=["POST"]),
    Route(f"{SCANNERS}/{{scanner_id}}/default", make_default, methods=["POST"]),
    Route(f"{SCANNERS}/{{scanner_id}}/disable", disable, methods=["POST"]),
    Route(f"{SCANNERS}/{{scanner_id}}/enable", enable, methods=["POST"]),
    Route(f"{SCANNERS}/{{scanner_id}}/delete", delete, methods=["POST"]),
]
