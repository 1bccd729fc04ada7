"""Harbor's registries (endpoints): the other registries Portside talks to, which the
pull-through cache and replication name by id. System administrators (and system robots
given `registry` permissions) create, change, test and remove them, as in Harbor.

A registry's secret never leaves: it is stored encrypted (the store's business), shown as
Harbor's `*****`, and an update that sends `*****` back keeps it. Health is checked in the
background (`check_due`, on the server's periodic tasks), never on the request path: a list
shows what the last check found, with its error.

A registry something uses cannot be deleted: whatever comes to use registries (proxy
projects, replication policies) registers an `in_use` hook saying by what.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from portside.auth.principal import Principal
from portside.coord.locks import Locks, ProcessLocks
from portside.errors import BadRequest, NotFound, PreconditionFailed
from portside.meta.accounts import AuditStore, Page
from portside.meta.criteria import Match
from portside.meta.registries import CREDENTIAL_TYPES, Endpoint, EndpointStore, Health, NewEndpoint
from portside.mgmt.guard import Guard
from portside.mgmt.limits import is_id
from portside.mgmt.paging import Listing, Paging
from portside.remote.adapters import Adapter, ProviderInfo, RegistryInfo, Target, basic_authorization, tls_verify
from portside.remote.errors import RemoteError

__all__ = ["MASKED_SECRET", "EndpointChange", "PingRequest", "RegistryService", "status_of"]

log = logging.getLogger("portside.registries")

# What Harbor shows in place of a stored secret; sent back unchanged, it keeps it.
MASKED_SECRET = "*****"
PING_TIMEOUT = 10.0  # a person waits on a ping
HEALTH_TIMEOUT = 5.0  # the background check waits for no one, but must not pile up
HEALTH_CONCURRENCY = 4
_NAME, _KEY, _TEXT = 255, 1024, 65_535
_FIELDS = ("id", "name", "type", "url", "description", "status", "creation_time", "update_time")
_LISTING = Listing.of(_FIELDS, ("id", "name", "type", "url", "status", "creation_time", "update_time"))
_PAGE = 100

InUse = Callable[[Endpoint], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class EndpointChange:
    """Harbor's RegistryUpdate: None leaves a field as it is."""

    name: str | None = None
    description: str | None = None
    url: str | None = None
    credential_type: str | None = None
    access_key: str | None = None
    access_secret: str | None = None
    insecure: bool | None = None
    ca_certificate: str | None = None


@dataclass(frozen=True, slots=True)
class PingRequest:
    """Harbor's RegistryPing: a stored registry (`id`), what is given overriding its fields,
    or a registry not stored yet (`type` and `url`)."""

    id: int | None = None
    type: str | None = None
    url: str | None = None
    credential_type: str | None = None
    access_key: str | None = None
    access_secret: str | None = None
    insecure: bool | None = None
    ca_certificate: str | None = None


def status_of(endpoint: Endpoint) -> str:
    """Harbor's `status`: healthy, unhealthy, or unknown before the first check."""
    return endpoint.health.status if endpoint.health is not None else "unknown"


class RegistryService:
    def __init__(
        self,
        guard: Guard,
        store: EndpointStore,
        audit: AuditStore,
        adapters: Mapping[str, Adapter],
        *,
        health_interval: float = 300.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        locks: Locks | None = None,
    ) -> None:
        self._guard = guard
        self._store = store
        self._audit = audit
        self._adapters = dict(adapters)
        self._interval = timedelta(seconds=health_interval)
        self._clock = clock
        # Every server process runs the round; the lock (shared by the instances) lets one
        # at a time look, so the others find the registries checked and skip them.
        self._locks = locks or ProcessLocks()
        self.in_use: builtins.list[InUse] = []

    # --- reading ---------------------------------------------------------------------

    async def list(
        self, who: Principal, q: str | None, sort: str | None, paging: Paging, name: str | None = None
    ) -> Page[Endpoint]:
        self._guard.system(who, "registry", "list")
        criteria = _LISTING.criteria(q, sort)
        if name:  # Harbor's `name` parameter: the names holding it
            criteria = criteria.where("name", Match("fuzzy", (name,)))
        return await self._store.list(criteria, paging.offset, paging.limit)

    async def get(self, who: Principal, endpoint_id: int) -> Endpoint:
        self._guard.system(who, "registry", "read")
        return await self._found(endpoint_id)

    async def info(self, who: Principal, endpoint_id: int) -> RegistryInfo:
        self._guard.system(who, "registry", "read")
        return self._adapter((await self._found(endpoint_id)).type).info()

    def adapter_types(self, who: Principal) -> builtins.list[str]:
        self._guard.system(who, "registry", "list")
        return list(self._adapters)

    def adapter_infos(self, who: Principal) -> dict[str, ProviderInfo]:
        self._guard.system(who, "registry", "list")
        return {name: adapter.provider() for name, adapter in self._adapters.items()}

    def adapter(self, endpoint: Endpoint) -> Adapter:
        """The adapter of a stored registry (for the cache and replication)."""
        return self._adapter(endpoint.type)

    async def target(self, endpoint: Endpoint, timeout: float = 30.0) -> Target:
        """Where and how to reach a stored registry, with its decrypted credential (for the
        cache and replication; never shown to anyone)."""
        secret = await self._store.secret(endpoint.id) if endpoint.has_secret else ""
        return _target(self._adapter(endpoint.type), _new(endpoint, secret), timeout)

    # --- writing ---------------------------------------------------------------------

    async def create(self, who: Principal, new: NewEndpoint) -> Endpoint:
        self._guard.system(who, "registry", "create")
        made = await self._store.create(self._checked(new))
        await self._record(who, made, "create")
        return made

    async def update(self, who: Principal, endpoint_id: int, change: EndpointChange) -> Endpoint:
        self._guard.system(who, "registry", "update")
        current = await self._found(endpoint_id)
        keep = change.access_secret is None or change.access_secret == MASKED_SECRET
        new = self._checked(_changed(_new(current, ""), change))
        if new.credential_type == "" or not new.access_key:
            keep = False  # the credential was removed: so is its secret
        updated = await self._store.update(endpoint_id, new, keep_secret=keep)
        if updated is None:
            raise _missing(endpoint_id)
        await self._record(who, updated, "update")
        return updated

    async def delete(self, who: Principal, endpoint_id: int) -> Endpoint:
        self._guard.system(who, "registry", "delete")
        current = await self._found(endpoint_id)
        for hook in self.in_use:
            user = await hook(current)
            if user is not None:
                raise PreconditionFailed(f"registry {current.name} is used by {user}; it cannot be deleted")
        removed = await self._store.delete(endpoint_id)
        if removed is None:
            raise _missing(endpoint_id)
        await self._record(who, removed, "delete")
        return removed

    # --- health ----------------------------------------------------------------------

    async def ping(self, who: Principal, request: PingRequest) -> None:
        """Harbor's ping: BadRequest with what is wrong unless the registry answers as its
        type should. A stored registry pinged as it is stored keeps what was found."""
        self._guard.system(who, "registry", "read")
        stored: Endpoint | None = None
        if request.id is not None:
            stored = await self._found(request.id)
            secret = await self._store.secret(stored.id) if stored.has_secret else ""
            base = _new(stored, secret)
            if request.type is not None and request.type != stored.type:
                raise BadRequest("type: a stored registry's type cannot be changed")
        else:
            if not request.type:
                raise BadRequest("type: give the registry's type, or the id of a stored registry")
            if not request.url:
                raise BadRequest("url: give the registry's URL, or the id of a stored registry")
            base = NewEndpoint(name="ping", type=request.type, url=request.url)
        change = EndpointChange(
            url=request.url,
            credential_type=request.credential_type,
            access_key=request.access_key,
            access_secret=None if request.access_secret == MASKED_SECRET else request.access_secret,
            insecure=request.insecure,
            ca_certificate=request.ca_certificate,
        )
        new = self._checked(_changed(base, change))
        health = await self._check(new, PING_TIMEOUT)
        if stored is not None and change == EndpointChange():
            await self._store.record_health(stored.id, health)
        if health.status != "healthy":
            raise BadRequest(f"ping {new.url}: {health.error}")

    async def check(self, endpoint: Endpoint) -> Health:
        """Check one stored registry now and keep what was found."""
        secret = await self._store.secret(endpoint.id) if endpoint.has_secret else ""
        health = await self._check(_new(endpoint, secret), HEALTH_TIMEOUT)
        await self._store.record_health(endpoint.id, health)
        if endpoint.health is None or endpoint.health.status != health.status:
            log.info("registry %s (%s) is %s%s", endpoint.name, endpoint.url, health.status, _reason(health))
        return health

    async def check_due(self) -> int:
        """The background round: check every registry not checked within the interval (a
        few at a time, each bounded by its timeout); how many were checked."""
        async with self._locks.hold("registries:health"):
            return await self._check_due()

    async def _check_due(self) -> int:
        due_before = self._clock() - self._interval
        due: builtins.list[Endpoint] = []
        offset = 0
        while True:
            page = await self._store.list(_LISTING.criteria(None, None), offset, _PAGE)
            due.extend(e for e in page.items if e.health is None or e.health.checked_at <= due_before)
            offset += _PAGE
            if offset >= page.total or not page.items:
                break
        slots = asyncio.Semaphore(HEALTH_CONCURRENCY)

        async def one(endpoint: Endpoint) -> None:
            async with slots:
                await self.check(endpoint)

        await asyncio.gather(*(one(e) for e in due))
        return len(due)

    async def _check(self, new: NewEndpoint, timeout: float) -> Health:
        target = _target(self._adapter(new.type), new, timeout)
        try:
            await self._adapter(new.type).ping(target)
        except RemoteError as error:
            return Health("unhealthy", str(error) or type(error).__name__, self._clock())
        return Health("healthy", "", self._clock())

    # --- shared ----------------------------------------------------------------------

    async def _found(self, endpoint_id: int) -> Endpoint:
        found = await self._store.get(endpoint_id) if is_id(endpoint_id) else None
        if found is None:
            raise _missing(endpoint_id)
        return found

    def _adapter(self, kind: str) -> Adapter:
        adapter = self._adapters.get(kind)
        if adapter is None:
            known = ", ".join(self._adapters)
            raise BadRequest(f"type: unsupported registry type {kind[:64]!r}; supported: {known}")
        return adapter

    def _checked(self, new: NewEndpoint) -> NewEndpoint:
        # No stored text holds NUL (PostgreSQL refuses it): refused here, naming the field.
        for field, value in (
            ("name", new.name),
            ("type", new.type),
            ("url", new.url),
            ("description", new.description),
            ("credential.type", new.credential_type),
            ("credential.access_key", new.access_key),
            ("credential.access_secret", new.access_secret),
            ("ca_certificate", new.ca_certificate or ""),
        ):
            if "\0" in value:
                raise BadRequest(f"{field}: NUL characters are not allowed")
        name = new.name.strip()
        if not name:
            raise BadRequest("name: a registry needs a name")
        if len(name) > _NAME:
            raise BadRequest(f"name: at most {_NAME} characters")
        adapter = self._adapter(new.type)
        try:
            url = adapter.normalise(new.url)
        except ValueError as error:
            raise BadRequest(f"url: {error}") from None
        if len(url) > _KEY:
            raise BadRequest(f"url: at most {_KEY} characters")
        if len(new.description) > _TEXT:
            raise BadRequest(f"description: at most {_TEXT} characters")
        credential_type = new.credential_type or ("basic" if new.access_key else "")
        if credential_type and credential_type not in CREDENTIAL_TYPES:
            raise BadRequest(f"credential.type: one of {', '.join(CREDENTIAL_TYPES)}, not {credential_type[:32]!r}")
        if len(new.access_key) > _KEY or len(new.access_secret) > _TEXT:
            raise BadRequest("credential: the access key or secret is too long")
        if new.access_secret and not new.access_key:
            raise BadRequest("credential.access_key: a secret needs its access key")
        if not new.access_key:
            credential_type = ""
        ca = new.ca_certificate.strip() if new.ca_certificate else None
        try:
            tls_verify(False, ca)
        except ValueError as error:
            raise BadRequest(str(error)) from None
        return replace(new, name=name, url=url, credential_type=credential_type, ca_certificate=ca or None)

    async def _record(self, who: Principal, endpoint: Endpoint, operation: str) -> None:
        await self._audit.record(
            project_id=None, username=who.name, operation=operation, resource_type="registry", resource=endpoint.name
        )


def _missing(endpoint_id: int) -> NotFound:
    return NotFound(f"registry {endpoint_id} not found")


def _reason(health: Health) -> str:
    return f": {health.error}" if health.error else ""


def _new(endpoint: Endpoint, secret: str) -> NewEndpoint:
    return NewEndpoint(
        name=endpoint.name,
        type=endpoint.type,
        url=endpoint.url,
        description=endpoint.description,
        insecure=endpoint.insecure,
        ca_certificate=endpoint.ca_certificate,
        credential_type=endpoint.credential_type,
        access_key=endpoint.access_key,
        access_secret=secret,
    )


def _changed(base: NewEndpoint, change: EndpointChange) -> NewEndpoint:
    given = {
        key: value
        for key, value in (
            ("name", change.name),
            ("description", change.description),
            ("url", change.url),
            ("credential_type", change.credential_type),
            ("access_key", change.access_key),
            ("access_secret", change.access_secret),
            ("insecure", change.insecure),
            ("ca_certificate", change.ca_certificate),
        )
        if value is not None
    }
    return replace(base, **given)  # type: ignore[arg-type]


def _target(adapter: Adapter, new: NewEndpoint, timeout: float) -> Target:
    return Target(
        url=adapter.registry_url(new.url),
        authorization=basic_authorization(new.access_key, new.access_secret),
        verify=tls_verify(new.insecure, new.ca_certificate),
        timeout=timeout,
    )
