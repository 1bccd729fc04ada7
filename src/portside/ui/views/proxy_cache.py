"""What the project pages show and take of the pull-through cache: the registry a system
administrator may choose for a new project to proxy, and which registry a proxy project
caches (with what it served from the cache and fetched) on its summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from portside.errors import BadRequest, NotFound
from portside.meta.accounts import Project
from portside.mgmt.paging import Paging
from portside.mgmt.proxy_metadata import REGISTRY_ID
from portside.ui.visitor import Visitor, management

__all__ = ["chosen_registry", "proxy_facts", "registry_choices"]


async def registry_choices(request: Request, who: Visitor) -> list[tuple[int, str]]:
    """(id, name) of the registries a new project may proxy: for system administrators only."""
    registries = management(request).registries
    if registries is None or who.principal is None or not who.principal.sysadmin:
        return []
    found = await registries.list(who.principal, None, "name", Paging(1, 100))
    return [(endpoint.id, f"{endpoint.name} ({endpoint.url})") for endpoint in found.items]


def chosen_registry(form: Mapping[str, str]) -> int | None:
    text = form.get("registry_id", "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise BadRequest("registry_id: choose one of the registries")
    return int(text)


async def proxy_facts(request: Request, who: Visitor, project: Project) -> dict[str, Any] | None:
    """The registry a proxy project caches, and the cache's counts; None for other projects."""
    registry_id = project.metadata.get(REGISTRY_ID, "")
    if not registry_id.isdigit():
        return None
    facts: dict[str, Any] = {"name": f"registry {registry_id}", "url": "", "status": ""}
    registries = management(request).registries
    if registries is not None and who.principal is not None and who.principal.sysadmin:
        try:
            endpoint = await registries.get(who.principal, int(registry_id))
            facts.update(name=endpoint.name, url=endpoint.url, status=endpoint.health.status if endpoint.health else "")
        except NotFound:
            facts["name"] += " (deleted)"
    proxy = request.app.state.registry.proxy
    if proxy is not None:
        facts["stats"] = proxy.stats(project.project_id)
    return facts
