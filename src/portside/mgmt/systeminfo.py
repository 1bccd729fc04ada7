"""Harbor's `/systeminfo` and `/systeminfo/volumes`: what this registry is, told honestly.

Anyone may read how sign-in works; signed-in callers also get the addresses, the version
and the storage provider. Volumes (the blob store's disk, total and free bytes) are for
system administrators (Harbor's `volumes:read`); an object store has no disk to report,
so its list is empty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from portside.auth.principal import Principal
from portside.mgmt.guard import Guard

__all__ = ["SystemInfoService", "SystemFacts", "GeneralInfo", "Volume"]


@dataclass(frozen=True, slots=True)
class SystemFacts:
    """What the settings say, handed over by `wiring`."""

    version: str
    external_url: str
    storage_provider: str  # "filesystem" or "s3"


@dataclass(frozen=True, slots=True)
class Volume:
    total: int
    free: int


@dataclass(frozen=True, slots=True)
class GeneralInfo:
    # Anyone:
    auth_mode: str
    primary_auth_mode: bool
    self_registration: bool
    banner_message: str
    # Signed in only (None otherwise):
    current_time: datetime | None = None
    registry_url: str | None = None
    external_url: str | None = None
    harbor_version: str | None = None
    project_creation_restriction: str | None = None
    has_ca_root: bool | None = None
    registry_storage_provider_name: str | None = None
    read_only: bool | None = None
    notification_enable: bool | None = None


class SystemInfoService:
    def __init__(self, guard: Guard, facts: SystemFacts, disk: Callable[[], Awaitable[Volume]] | None = None):
        self._guard = guard
        self._facts = facts
        self._disk = disk

    def info(self, who: Principal) -> GeneralInfo:
        # Accounts live in Portside's own database; nobody registers themselves.
        anyone = GeneralInfo(auth_mode="db_auth", primary_auth_mode=False, self_registration=False, banner_message="")
        if not who.authenticated:
            return anyone
        facts = self._facts
        return GeneralInfo(
            auth_mode=anyone.auth_mode,
            primary_auth_mode=anyone.primary_auth_mode,
            self_registration=anyone.self_registration,
            banner_message=anyone.banner_message,
            current_time=datetime.now(UTC),
            # Harbor's registry_url is the host clients put in image names.
            registry_url=urlsplit(facts.external_url).netloc,
            external_url=facts.external_url,
            harbor_version=f"v{facts.version}-portside",
            # Every signed-in user may create projects (robots may not).
            project_creation_restriction="everyone",
            has_ca_root=False,
            registry_storage_provider_name=facts.storage_provider,
            read_only=False,
            notification_enable=False,
        )

    async def volumes(self, who: Principal) -> list[Volume]:
        self._guard.system(who, "volumes", "read")
        return [await self._disk()] if self._disk is not None else []
