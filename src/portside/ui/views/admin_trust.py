"""Pages: administration's trust policy, `/admin/trust`. The system's defaults that every
project taking them also trusts (cosign keys, keyless identities under a sigstore trusted
root, Notation certificates with their identities and level), in the editor a project's
settings have (views/trust.py).

The page opens to those who may read the system's policy and offers its forms to those who
may change it; TrustPolicyService.set_system decides each change, as for PUT
/api/v2.0/system/trust, and what it refuses is shown next to the form that was sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.errors import BadRequest, NotFound
from portside.mgmt.trust_policy import TrustPolicyService
from portside.ui.render import page, read_form, redirect
from portside.ui.views import common
from portside.ui.views import trust as trust_editor
from portside.ui.views.admin import administration
from portside.ui.visitor import Visitor, check_csrf, management

__all__ = ["routes", "TRUST"]

TRUST = "/admin/trust"


def _trust(request: Request) -> TrustPolicyService:
    found = management(request).trust
    if found is None:
        raise NotFound("trust policies are not available on this server")
    return found


async def _context(
    request: Request, who: Visitor, nav: dict[str, Any], typed: Mapping[str, str] | None = None
) -> dict[str, Any]:
    stored = await _trust(request).system(who.principal)
    may_update = ("system-trust", "update") in await common.permissions(request, who, "/system")
    return {
        **nav,
        "trust": trust_editor.editor(stored.document, system=True, may_update=may_update, typed=typed),
        "trust_action": TRUST,
        "updated": stored.update_time,
        "errors": {},
    }


async def system_trust(request: Request) -> Response:
    who, nav = await administration(request, "trust")
    return await page(request, "admin/trust.html", await _context(request, who, nav))


async def change_system_trust(request: Request) -> Response:
    who, nav = await administration(request, "trust")
    form = await read_form(request)
    check_csrf(request, who, form)
    trust = _trust(request)
    part = form.get("part", "")
    try:
        stored = await trust.system(who.principal)
        change = trust_editor.edited(stored.document, form, system=True)
        await trust.set_system(who.principal, change.document)
    except (BadRequest, NotFound) as error:
        context = await _context(request, who, nav, trust_editor.typed_in(form))
        context["errors"] = {trust_editor.FIELDS.get(part, "trust"): error.text}
        return await page(request, "admin/trust.html", context, status=error.status)
    return redirect(TRUST, notice=change.notice)


routes: list[BaseRoute] = [
    Route(TRUST, system_trust, methods=["GET", "HEAD"]),
    Route(TRUST, change_system_trust, methods=["POST"]),
]
