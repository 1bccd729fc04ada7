"""Failover URLs of a registry (Portside's own addition to Harbor's registries): the other
URLs of the same registry, tried in order after its own by the pull-through cache when it
does not answer. System administrators read and set them, as they manage registries."""

from __future__ import annotations

from collections.abc import Sequence

from portside.auth.principal import Principal
from portside.errors import BadRequest
from portside.meta.accounts import AuditStore
from portside.meta.failover import FailoverStore
from portside.mgmt.guard import Guard
from portside.mgmt.registries import RegistryService
from portside.remote.adapters.base import standard_url

__all__ = ["MAX_FAILOVER_URLS", "FailoverService"]

MAX_FAILOVER_URLS = 8


class FailoverService:
    def __init__(self, guard: Guard, store: FailoverStore, registries: RegistryService, audit: AuditStore):
        self._guard = guard
        self._store = store
        self._registries = registries
        self._audit = audit

    async def get(self, who: Principal, registry_id: int) -> list[str]:
        await self._registries.get(who, registry_id)  # read permission, and NotFound
        return await self._store.failover_urls(registry_id)

    async def set(self, who: Principal, registry_id: int, urls: Sequence[str]) -> list[str]:
        self._guard.system(who, "registry", "update")
        endpoint = await self._registries.get(who, registry_id)
        if len(urls) > MAX_FAILOVER_URLS:
            raise BadRequest(f"urls: at most {MAX_FAILOVER_URLS}")
        clean: list[str] = []
        for n, url in enumerate(urls):
            try:
                # Each is a Distribution API itself (for docker-hub too: a mirror of it).
                normal = standard_url(url)
            except ValueError as error:
                raise BadRequest(f"urls[{n}]: {error}") from None
            if normal not in clean and normal != self._registries.adapter(endpoint).registry_url(endpoint.url):
                clean.append(normal)
        await self._store.set_failover_urls(registry_id, clean)
        await self._audit.record(
            project_id=None, username=who.name, operation="update", resource_type="registry", resource=endpoint.name
        )
        return clean
