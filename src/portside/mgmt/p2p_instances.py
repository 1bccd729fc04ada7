"""Harbor's P2P preheat instances: the Dragonfly or Kraken deployments Portside asks to fetch
images ahead of the pulls. System administrators (and system robots given
`preheat-instance` permissions) add, change, ping and remove them, as in Harbor.

An instance's secret never leaves: it is stored encrypted (the store's business), shown as
Harbor's `*****`, and an update without `auth_info` (or with the masked value) keeps it.
One instance at most is the `default`; a disabled one is offered to no new run. Health is
checked in the background (`check_due`), never on a list's path. An instance a policy uses
cannot be deleted."""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from portside.auth.principal import Principal
from portside.errors import BadRequest, NotFound, PreconditionFailed
from portside.meta.accounts import AuditStore, Page
from portside.meta.preheat import AUTH_MODES, Instance, NewInstance, PreheatStore
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Listing, Paging
from portside.remote.adapters.base import standard_url
from portside.remote.p2p import Connection, Driver, DriverInfo, P2PError

__all__ = ["MASKED_SECRET", "InstanceChange", "InstanceService"]

log = logging.getLogger("portside.preheat")

MASKED_SECRET = "*****"
PING_TIMEOUT = 10.0  # a person waits on a ping
HEALTH_TIMEOUT = 5.0
HEALTH_CONCURRENCY = 4
_NAME, _KEY, _TEXT = 255, 1024, 65_535
_FIELDS = ("id", "name", "vendor", "endpoint", "description", "status", "enabled", "default")
_LISTING = Listing.of(_FIELDS, ("id", "name", "vendor", "endpoint", "status"))
_PAGE = 100


@dataclass(frozen=True, slots=True)
class InstanceChange:
    """An instance as a PUT or a ping gives it: None leaves a field as stored (no
    `auth_secret`, or the masked one, keeps the stored secret)."""

    name: str | None = None
    description: str | None = None
    vendor: str | None = None
    endpoint: str | None = None
    auth_mode: str | None = None
    auth_key: str | None = None
    auth_secret: str | None = None
    enabled: bool | None = None
    default: bool | None = None
    insecure: bool | None = None


class InstanceService:
    def __init__(self, guard: Guard, store: PreheatStore, audit: AuditStore, drivers: Mapping[str, Driver]) -> None:
        self._guard = guard
        self._store = store
        self._audit = audit
        self._drivers = dict(drivers)

    # --- reading ---------------------------------------------------------------------

    def providers(self, who: Principal) -> builtins.list[DriverInfo]:
        """Harbor's /p2p/preheat/providers: any signed-in caller may see which exist."""
        self._guard.signed_in(who, "list P2P providers")
        return [driver.info() for driver in self._drivers.values()]

    async def list(self, who: Principal, q: str | None, sort: str | None, paging: Paging) -> Page[Instance]:
        self._guard.system(who, "preheat-instance", "list")
        return await self._store.list_instances(_LISTING.criteria(q, sort), paging.offset, paging.limit)

    async def get(self, who: Principal, name: str) -> Instance:
        self._guard.system(who, "preheat-instance", "read")
        return await self._found(name)

    async def all(self) -> builtins.list[Instance]:
        """Every instance (for the projects' provider lists and the health round)."""
        found: builtins.list[Instance] = []
        while True:
            page = await self._store.list_instances(_LISTING.criteria(None, None), len(found), _PAGE)
            found.extend(page.items)
            if len(found) >= page.total or not page.items:
                return found

    async def by_id(self, instance_id: int) -> Instance | None:
        return await self._store.get_instance(instance_id)

    def driver(self, instance: Instance) -> Driver:
        return self._driver(instance.vendor)

    async def connection(self, instance: Instance, timeout: float = 30.0) -> Connection:
        """How to reach a stored instance, its secret decrypted (never shown to anyone)."""
        secret = await self._store.instance_secret(instance.id) if instance.has_secret else ""
        return _connection(_new(instance, secret), timeout)

    # --- writing ---------------------------------------------------------------------

    async def create(self, who: Principal, new: NewInstance) -> Instance:
        self._guard.system(who, "preheat-instance", "create")
        made = await self._store.create_instance(self._checked(new))
        await self._record(who, made, "create")
        return made

    async def update(self, who: Principal, name: str, change: InstanceChange) -> Instance:
        self._guard.system(who, "preheat-instance", "update")
        current = await self._found(name)
        keep = change.auth_secret is None or change.auth_secret == MASKED_SECRET
        new = self._checked(_changed(_new(current, ""), change, keep))
        if new.auth_mode == "NONE":
            keep = False  # the credential was removed: so is its secret
        updated = await self._store.update_instance(current.id, new, keep_secret=keep)
        if updated is None:
            raise _missing(name)
        await self._record(who, updated, "update")
        return updated

    async def delete(self, who: Principal, name: str) -> Instance:
        self._guard.system(who, "preheat-instance", "delete")
        current = await self._found(name)
        users = await self._store.policies_of_instance(current.id)
        if users:
            names = ", ".join(sorted({p.name for p in users})[:5])
            raise PreconditionFailed(
                f"preheat instance {current.name} is used by the policies {names}; it cannot be deleted"
            )
        removed = await self._store.delete_instance(current.id)
        if removed is None:
            raise _missing(name)
        await self._record(who, removed, "delete")
        return removed

    # --- health ----------------------------------------------------------------------

    async def ping(self, who: Principal, instance_id: int | None, change: InstanceChange) -> None:
        """Harbor's ping: BadRequest with what is wrong unless the instance answers healthy.
        A stored instance (`instance_id`, or a name that is stored) is pinged with its stored
        secret unless another is given; pinged as stored, it keeps what was found."""
        self._guard.system(who, "preheat-instance", "read")
        stored: Instance | None = None
        if instance_id is not None:
            stored = await self._store.get_instance(instance_id)
            if stored is None:
                raise NotFound(f"preheat instance {instance_id} not found")
        elif change.name:
            stored = await self._store.get_instance(change.name)
        if stored is not None:
            secret = await self._store.instance_secret(stored.id) if stored.has_secret else ""
            base = _new(stored, secret)
        else:
            if not change.vendor:
                raise BadRequest("vendor: give the provider (dragonfly or kraken), or a stored instance")
            if not change.endpoint:
                raise BadRequest("endpoint: give the instance's URL, or a stored instance")
            base = NewInstance(name="ping", vendor=change.vendor, endpoint=change.endpoint)
        keep = change.auth_secret is None or change.auth_secret == MASKED_SECRET
        new = self._checked(replace(_changed(base, change, keep), name=base.name))
        error = await self._check(new, PING_TIMEOUT)
        if stored is not None and new == self._checked(base):
            await self._store.record_instance_health(stored.id, "unhealthy" if error else "healthy", error)
        if error:
            raise BadRequest(f"ping {new.endpoint}: {error}")

    async def check_due(self) -> int:
        """The background round: check every enabled instance; how many were checked."""
        slots = asyncio.Semaphore(HEALTH_CONCURRENCY)
        due = [i for i in await self.all() if i.enabled]

        async def one(instance: Instance) -> None:
            async with slots:
                secret = await self._store.instance_secret(instance.id) if instance.has_secret else ""
                error = await self._check(_new(instance, secret), HEALTH_TIMEOUT)
                status = "unhealthy" if error else "healthy"
                await self._store.record_instance_health(instance.id, status, error)
                if status != instance.status:
                    log.info("preheat instance %s (%s) is %s %s", instance.name, instance.endpoint, status, error)

        await asyncio.gather(*(one(i) for i in due))
        return len(due)

    async def _check(self, new: NewInstance, timeout: float) -> str:
        """ "" when the instance is healthy, else why not."""
        try:
            await self._driver(new.vendor).health(_connection(new, timeout))
        except P2PError as error:
            return str(error) or type(error).__name__
        return ""

    # --- shared ----------------------------------------------------------------------

    async def _found(self, name: str) -> Instance:
        found = await self._store.get_instance(name)
        if found is None:
            raise _missing(name)
        return found

    def _driver(self, vendor: str) -> Driver:
        driver = self._drivers.get(vendor)
        if driver is None:
            raise BadRequest(f"vendor: unsupported provider {vendor[:64]!r}; supported: {', '.join(self._drivers)}")
        return driver

    def _checked(self, new: NewInstance) -> NewInstance:
        for field, value in (
            ("name", new.name),
            ("vendor", new.vendor),
            ("endpoint", new.endpoint),
            ("description", new.description),
            ("auth_mode", new.auth_mode),
            ("auth_info", new.auth_key),
            ("auth_info", new.auth_secret),
        ):
            if "\0" in value:
                raise BadRequest(f"{field}: NUL characters are not allowed")
        name = new.name.strip()
        if not name:
            raise BadRequest("name: an instance needs a name")
        if len(name) > _NAME or "/" in name:
            raise BadRequest(f"name: at most {_NAME} characters, and no '/'")
        self._driver(new.vendor)
        try:
            endpoint = standard_url(new.endpoint)
        except ValueError as error:
            raise BadRequest(f"endpoint: {error}") from None
        if len(endpoint) > _KEY:
            raise BadRequest(f"endpoint: at most {_KEY} characters")
        if len(new.description) > _TEXT:
            raise BadRequest(f"description: at most {_TEXT} characters")
        mode = (new.auth_mode or "NONE").upper()
        if mode not in AUTH_MODES:
            raise BadRequest(f"auth_mode: one of {', '.join(AUTH_MODES)}, not {new.auth_mode[:32]!r}")
        if len(new.auth_key) > _KEY or len(new.auth_secret) > _TEXT:
            raise BadRequest("auth_info: a value is too long")
        key, secret = new.auth_key, new.auth_secret
        if mode == "NONE":
            key, secret = "", ""
        elif mode == "OAUTH":
            key = ""
        elif mode == "BASIC" and not key:
            raise BadRequest("auth_info.username: BASIC needs a username")
        elif mode == "CUSTOM" and not key:
            raise BadRequest("auth_info.header_key: CUSTOM needs the header's name")
        return replace(new, name=name, endpoint=endpoint, auth_mode=mode, auth_key=key, auth_secret=secret)

    async def _record(self, who: Principal, instance: Instance, operation: str) -> None:
        await self._audit.record(
            project_id=None,
            username=who.name,
            operation=operation,
            resource_type="p2p_instance",
            resource=instance.name,
        )


def _missing(name: str) -> NotFound:
    return NotFound(f"preheat instance {name} not found")


def _new(instance: Instance, secret: str) -> NewInstance:
    return NewInstance(
        name=instance.name,
        vendor=instance.vendor,
        endpoint=instance.endpoint,
        description=instance.description,
        auth_mode=instance.auth_mode,
        auth_key=instance.auth_key,
        auth_secret=secret,
        enabled=instance.enabled,
        default=instance.default,
        insecure=instance.insecure,
    )


def _changed(base: NewInstance, change: InstanceChange, keep_secret: bool) -> NewInstance:
    given = {
        key: value
        for key, value in (
            ("name", change.name),
            ("description", change.description),
            ("vendor", change.vendor),
            ("endpoint", change.endpoint),
            ("auth_mode", change.auth_mode),
            ("auth_key", change.auth_key),
            ("auth_secret", None if keep_secret else change.auth_secret),
            ("enabled", change.enabled),
            ("default", change.default),
            ("insecure", change.insecure),
        )
        if value is not None
    }
    return replace(base, **given)  # type: ignore[arg-type]


def _connection(new: NewInstance, timeout: float) -> Connection:
    return Connection(
        endpoint=new.endpoint,
        auth_mode=new.auth_mode,
        auth_key=new.auth_key,
        auth_secret=new.auth_secret,
        insecure=new.insecure,
        timeout=timeout,
    )
