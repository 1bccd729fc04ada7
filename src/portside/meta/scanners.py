"""Scanner registrations: the external scanner adapters (Harbor's /scanners) Portside may
hand artifacts to. The built-in scanner is no registration row; it is the default while
no registration is.

The store keeps the adapter's credential encrypted at rest and gives it back decrypted
only through `credential`: a `ScannerRegistration` never carries it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = ["AUTH_SCHEMES", "NewRegistration", "ScannerRegistration", "ScannerRegistrations"]

# Harbor's `auth` values: none, or how `access_credential` is sent to the adapter.
AUTH_SCHEMES = ("", "Basic", "Bearer", "X-ScannerAdapter-API-Key")


@dataclass(frozen=True, slots=True)
class NewRegistration:
    name: str
    url: str
    description: str = ""
    auth: str = ""
    access_credential: str = ""
    skip_cert_verify: bool = False
    use_internal_addr: bool = False
    disabled: bool = False


@dataclass(frozen=True, slots=True)
class ScannerRegistration:
    uuid: str
    name: str
    description: str
    url: str
    auth: str
    has_credential: bool
    skip_cert_verify: bool
    use_internal_addr: bool
    disabled: bool
    is_default: bool
    creation_time: datetime
    update_time: datetime


class ScannerRegistrations(Protocol):
    async def create(self, new: NewRegistration) -> ScannerRegistration:
        """Conflict when the name or the URL is taken."""

    async def get(self, uuid: str) -> ScannerRegistration | None: ...

    async def list(self) -> list[ScannerRegistration]: ...

    async def update(self, uuid: str, new: NewRegistration, keep_credential: bool) -> ScannerRegistration | None:
        """Replace a registration's fields; `keep_credential` leaves the stored one as it
        is (Harbor's masked credential sent back unchanged). None: no such registration."""

    async def delete(self, uuid: str) -> ScannerRegistration | None: ...

    async def set_default(self, uuid: str | None) -> bool:
        """Make `uuid` the only default (None: no registration is, so the built-in scanner
        is). False: no such registration."""

    async def credential(self, uuid: str) -> str:
        """The decrypted credential ("" when none)."""
