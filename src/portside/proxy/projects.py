"""Which projects proxy a registry, and how: asked on every pull, so it must cost nothing for
the projects that proxy nothing.

A project is a proxy when its metadata holds `registry_id`; mgmt/proxy_metadata.py says
which other keys tune it.

What a project is, is kept while the accounts' generation stands (project metadata writes
move it), as the pull policy keeps its rules: a pull from any project costs a generation
read and a dictionary lookup (with no generation to watch, a project is read again after
`UNWATCHED_SECONDS`, never on every pull).

The registry a proxy names (and its failover URLs) is read again at most every
`ENDPOINT_SECONDS`, so a changed URL or credential reaches the cache without a restart; its
`Upstream` (clients, tokens, limits) is kept while the registry and limits are the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from portside.auth.controller import project_of
from portside.meta.accounts import Project, ProjectStore
from portside.meta.registries import Endpoint, EndpointStore
from portside.meta.stores import ChangeCounter
from portside.mgmt.lru import Lru
from portside.mgmt.proxy_metadata import REGISTRY_ID
from portside.mgmt.registries import RegistryService
from portside.proxy.upstream import Limits, Upstream
from portside.remote.adapters import Target

__all__ = ["ENDPOINT_SECONDS", "UNWATCHED_SECONDS", "ProxyConfig", "Proxied", "ProxyProjects"]

log = logging.getLogger("portside.proxy")

ENDPOINT_SECONDS = 10.0
# Without a generation to watch (PostgreSQL without Redis), what a project is is read again
# this often: a project's registry_id never changes, only its tuning, which may lag this much.
UNWATCHED_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    project_id: int
    project: str
    registry_id: int
    check_interval: float
    local_on_not_found: bool
    limits: Limits

    @classmethod
    def of(cls, project: Project) -> ProxyConfig | None:
        metadata = project.metadata
        registry = metadata.get(REGISTRY_ID, "")
        if not registry.isdigit():
            return None

        def number(key: str) -> float:
            try:
                return max(0.0, float(metadata.get(key, "0")))
            except ValueError:
                return 0.0

        return cls(
            project.project_id,
            project.name,
            int(registry),
            number("manifest_check_interval"),
            metadata.get("proxy_cache_local_on_not_found", "true") != "false",
            Limits(int(number("max_upstream_conn")), number("max_upstream_rps")),
        )


@dataclass(frozen=True, slots=True)
class Proxied:
    """A repository of a proxy project: where its content is kept here (`local`) and what
    the upstream calls it (`remote`), and the upstream itself."""

    config: ProxyConfig
    endpoint: Endpoint
    upstream: Upstream
    local: str
    remote: str


@dataclass(slots=True)
class _Known:
    config: ProxyConfig | None
    generation: int | None
    read_at: float


@dataclass(slots=True)
class _Reach:
    endpoint: Endpoint
    limits: Limits
    failover: tuple[str, ...]
    upstream: Upstream
    read_at: float


class ProxyProjects:
    def __init__(
        self,
        projects: ProjectStore,
        endpoints: EndpointStore,
        registries: RegistryService,
        changes: ChangeCounter | None,
        *,
        timeout: float = 30.0,
        mirrors: Callable[[Endpoint], Awaitable[Sequence[str]]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._projects = projects
        self._endpoints = endpoints
        self._registries = registries
        self._changes = changes
        self._timeout = timeout
        self._mirrors = mirrors
        self._clock = clock
        self._known: Lru[str, _Known] = Lru(4096)
        self._reach: dict[int, _Reach] = {}
        # Replaced upstreams may still be streaming a blob: closed at shutdown, not at once.
        self._retired: list[Upstream] = []

    async def config(self, repository: str) -> ProxyConfig | None:
        """The proxy settings of `repository`'s project; None when it proxies nothing."""
        name = project_of(repository)
        generation = await self._changes.current() if self._changes is not None else None
        known = self._known.get(name)
        now = self._clock()
        if known is not None:
            if generation is not None and known.generation == generation:
                return known.config
            if generation is None and now - known.read_at < UNWATCHED_SECONDS:
                return known.config
        project = await self._projects.get_project(name)
        config = ProxyConfig.of(project) if project is not None else None
        self._known.put(name, _Known(config, generation, now))
        return config

    async def proxied(self, repository: str) -> Proxied | None:
        """`repository` as the cache reaches it, when its project is a proxy (and the
        registry it names still exists)."""
        config = await self.config(repository)
        if config is None:
            return None
        _, _, rest = repository.partition("/")
        reach = await self._upstream(config)
        if reach is None or not rest:
            return None
        remote = self._registries.adapter(reach.endpoint).repository(rest)
        return Proxied(config, reach.endpoint, reach.upstream, f"{config.project}/{remote}", remote)

    async def _upstream(self, config: ProxyConfig) -> _Reach | None:
        now = self._clock()
        reach = self._reach.get(config.registry_id)
        if reach is not None and reach.limits == config.limits and now - reach.read_at < ENDPOINT_SECONDS:
            return reach
        endpoint = await self._endpoints.get(config.registry_id)
        if endpoint is None:
            return None
        failover = tuple(await self._mirrors(endpoint)) if self._mirrors is not None else ()
        if (
            reach is not None
            and reach.endpoint.update_time == endpoint.update_time
            and reach.limits == config.limits
            and reach.failover == failover
        ):
            reach.read_at = now
            return reach
        first = await self._registries.target(endpoint, self._timeout)
        targets = [first, *(Target(url, first.authorization, first.verify, first.timeout) for url in failover)]
        fresh = _Reach(endpoint, config.limits, failover, Upstream(targets, config.limits), now)
        self._reach[config.registry_id] = fresh
        if reach is not None:
            self._retired.append(reach.upstream)
        return fresh

    async def close(self) -> None:
        for upstream in [*(r.upstream for r in self._reach.values()), *self._retired]:
            await upstream.aclose()
        self._reach.clear()
        self._retired.clear()
