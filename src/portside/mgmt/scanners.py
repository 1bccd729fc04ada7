"""Harbor's scanner registry: the built-in scanner and the external scanner adapters
registered under /scanners. System administrators register, change and remove adapters
and choose the default; anyone signed in reads them. Credentials never leave: a
registration is shown with its credential masked, as Harbor does.

Each adapter's health is a ping (its metadata) with a short timeout, remembered a little
while so listing the registry does not call every adapter each time."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

from portside.auth.principal import Principal
from portside.errors import BadRequest, NotFound
from portside.meta.scanners import AUTH_SCHEMES, NewRegistration, ScannerRegistration, ScannerRegistrations
from portside.mgmt.guard import Guard
from portside.scan.adapter import AdapterClient, AdapterError, ScannerMetadata

__all__ = ["MASKED_CREDENTIAL", "ScannerRegistry", "ScannerView", "authorization_header", "builtin_view"]

# What Harbor shows in place of a stored credential; sent back unchanged, it keeps it.
MASKED_CREDENTIAL = "*****"
PING_TIMEOUT = 3.0
HEALTH_TTL = 30.0


@dataclass(frozen=True, slots=True)
class ScannerView:
    """A registration as the API shows it (`registration` None: the built-in scanner)."""

    uuid: str
    name: str
    description: str
    url: str
    auth: str
    credential_masked: str
    skip_cert_verify: bool
    use_internal_addr: bool
    disabled: bool
    is_default: bool
    health: str
    adapter: str
    vendor: str
    version: str
    registration: ScannerRegistration | None


def authorization_header(auth: str, credential: str) -> str | None:
    """The Authorization header Harbor sends an adapter for `auth` ("Basic …", "Bearer …");
    None for no auth and for the API key scheme, which has a header of its own."""
    if not auth or not credential or auth == "X-ScannerAdapter-API-Key":
        return None
    return f"{auth} {credential}"


class ScannerRegistry:
    def __init__(
        self,
        guard: Guard,
        store: ScannerRegistrations,
        builtin: ScannerView,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._guard = guard
        self._store = store
        self._builtin = builtin
        self._clock = clock
        self._health: dict[str, tuple[float, str, ScannerMetadata | None]] = {}

    @property
    def builtin_uuid(self) -> str:
        return self._builtin.uuid

    # --- reading ---------------------------------------------------------------------

    async def list(self, who: Principal, *, ping: bool = True) -> list[ScannerView]:
        """Every scanner; `ping`: with each adapter's health (asked at most every HEALTH_TTL)."""
        self._guard.signed_in(who, "list scanners")
        registrations = await self._store.list()
        any_default = any(r.is_default for r in registrations)
        views = [replace(self._builtin, is_default=not any_default)]
        for registration in registrations:
            views.append(await self._view(registration, ping=ping))
        return views

    async def get(self, who: Principal, uuid: str) -> ScannerView:
        self._guard.signed_in(who, "read scanners")
        return await self._find(uuid)

    async def default(self) -> ScannerView:
        for registration in await self._store.list():
            if registration.is_default:
                return await self._view(registration, ping=False)
        return self._builtin

    async def find(self, uuid: str) -> ScannerView | None:
        """Without a permission check: for the scan job and the project scanner."""
        if uuid == self._builtin.uuid:
            return await self._with_default(self._builtin)
        registration = await self._store.get(uuid)
        return None if registration is None else await self._view(registration, ping=False)

    async def metadata(self, who: Principal, uuid: str) -> ScannerMetadata | None:
        """The adapter's metadata (None: the built-in scanner, described by the caller)."""
        self._guard.signed_in(who, "read scanners")
        view = await self._find(uuid)
        if view.registration is None:
            return None
        try:
            async with await self.client(view.registration) as client:
                return await client.metadata()
        except AdapterError as error:
            raise BadRequest(f"scanner {view.name}: {error}") from None

    async def client(self, registration: ScannerRegistration, timeout: float = 30.0) -> AdapterClient:
        credential = await self._store.credential(registration.uuid)
        return _client(registration.url, registration.auth, credential, timeout)

    async def _find(self, uuid: str) -> ScannerView:
        found = await self.find(uuid)
        if found is None:
            raise NotFound(f"scanner {uuid[:64]} not found")
        if found.registration is not None:
            return await self._view(found.registration)
        return found

    async def _with_default(self, view: ScannerView) -> ScannerView:
        any_default = any(r.is_default for r in await self._store.list())
        return replace(view, is_default=not any_default)

    async def _view(self, registration: ScannerRegistration, ping: bool = True) -> ScannerView:
        health, metadata = await self._ping_cached(registration) if ping else ("", None)
        scanner = metadata.scanner if metadata is not None else None
        return ScannerView(
            uuid=registration.uuid,
            name=registration.name,
            description=registration.description,
            url=registration.url,
            auth=registration.auth,
            credential_masked=MASKED_CREDENTIAL if registration.has_credential else "",
            skip_cert_verify=registration.skip_cert_verify,
            use_internal_addr=registration.use_internal_addr,
            disabled=registration.disabled,
            is_default=registration.is_default,
            health=health,
            adapter=scanner.name if scanner else "",
            vendor=scanner.vendor if scanner else "",
            version=scanner.version if scanner else "",
            registration=registration,
        )

    async def _ping_cached(self, registration: ScannerRegistration) -> tuple[str, ScannerMetadata | None]:
        cached = self._health.get(registration.uuid)
        if cached is not None and self._clock() - cached[0] < HEALTH_TTL:
            return cached[1], cached[2]
        try:
            async with await self.client(registration, PING_TIMEOUT) as client:
                metadata: ScannerMetadata | None = await client.metadata()
            health = "healthy"
        except AdapterError:
            metadata, health = None, "unhealthy"
        self._health[registration.uuid] = (self._clock(), health, metadata)
        return health, metadata

    # --- writing: system administrators ----------------------------------------------

    async def create(self, who: Principal, new: NewRegistration) -> ScannerView:
        self._guard.system(who, "scanner", "create")
        registration = await self._store.create(_checked(new))
        return await self._view(registration, ping=False)

    async def update(self, who: Principal, uuid: str, new: NewRegistration) -> None:
        self._guard.system(who, "scanner", "update")
        self._not_builtin(uuid, "changed")
        keep = new.access_credential == MASKED_CREDENTIAL
        if await self._store.update(uuid, _checked(new), keep) is None:
            raise NotFound(f"scanner {uuid[:64]} not found")
        self._health.pop(uuid, None)

    async def delete(self, who: Principal, uuid: str) -> ScannerView:
        self._guard.system(who, "scanner", "delete")
        self._not_builtin(uuid, "deleted")
        registration = await self._store.delete(uuid)
        if registration is None:
            raise NotFound(f"scanner {uuid[:64]} not found")
        self._health.pop(uuid, None)
        return await self._view(registration, ping=False)

    async def set_default(self, who: Principal, uuid: str) -> None:
        self._guard.system(who, "scanner", "update")
        if not await self._store.set_default(None if uuid == self._builtin.uuid else uuid):
            raise NotFound(f"scanner {uuid[:64]} not found")

    async def ping(self, who: Principal, new: NewRegistration) -> ScannerMetadata:
        """Harbor's ping: whether an adapter not yet registered answers; BadRequest with
        the adapter's problem when it does not."""
        self._guard.system(who, "scanner", "create")
        checked = _checked(new)
        try:
            async with _client(checked.url, checked.auth, checked.access_credential, PING_TIMEOUT) as client:
                return await client.metadata()
        except AdapterError as error:
            raise BadRequest(f"ping {checked.url}: {error}") from None

    def _not_builtin(self, uuid: str, what: str) -> None:
        if uuid == self._builtin.uuid:
            raise BadRequest(f"the built-in scanner cannot be {what}")


def _checked(new: NewRegistration) -> NewRegistration:
    if not new.name.strip():
        raise BadRequest("a scanner needs a name")
    parts = urlsplit(new.url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest(f"scanner url must be an http(s) URL, not {new.url[:200]!r}")
    if new.auth not in AUTH_SCHEMES:
        raise BadRequest(f"auth must be one of {', '.join(repr(a) for a in AUTH_SCHEMES)}, not {new.auth!r}")
    return new


def _client(url: str, auth: str, credential: str, timeout: float) -> AdapterClient:
    if auth == "X-ScannerAdapter-API-Key" and credential:
        return AdapterClient(url, headers={auth: credential}, timeout=timeout)
    return AdapterClient(url, authorization=authorization_header(auth, credential), timeout=timeout)


def builtin_view(uuid: str, name: str, vendor: str, version: str, description: str) -> ScannerView:
    """The built-in scanner as a registration: always there, healthy, never removed."""
    return ScannerView(
        uuid=uuid,
        name=name,
        description=description,
        url="http://localhost/builtin",
        auth="",
        credential_masked="",
        skip_cert_verify=False,
        use_internal_addr=True,
        disabled=False,
        is_default=True,
        health="healthy",
        adapter=name,
        vendor=vendor,
        version=version,
        registration=None,
    )
