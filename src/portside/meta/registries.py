"""Registries (Harbor's `/registries`): the other registries Portside talks to, for the
pull-through cache and replication that use them. One row per endpoint: its type, URL,
TLS choices, credential and the health the background check last found.

The store keeps the credential's secret encrypted at rest and gives it back decrypted
only through `secret`: an `Endpoint` never carries it, so nothing that lists or shows
endpoints can leak it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from portside.meta.accounts import Page
from portside.meta.criteria import Criteria

__all__ = ["CREDENTIAL_TYPES", "Endpoint", "EndpointStore", "Health", "NewEndpoint"]

# Harbor's credential types: a user and password (or token) sent as Basic, or OAuth's
# key and secret exchanged at the registry's token service (also sent as Basic there).
CREDENTIAL_TYPES = ("basic", "oauth")


@dataclass(frozen=True, slots=True)
class NewEndpoint:
    name: str
    type: str
    url: str
    description: str = ""
    insecure: bool = False
    ca_certificate: str | None = None
    credential_type: str = ""  # "" with no credential
    access_key: str = ""
    access_secret: str = ""


@dataclass(frozen=True, slots=True)
class Health:
    """What one health check found: `status` "healthy" or "unhealthy", and why not."""

    status: str
    error: str
    checked_at: datetime


@dataclass(frozen=True, slots=True)
class Endpoint:
    id: int
    name: str
    type: str
    url: str
    description: str
    insecure: bool
    ca_certificate: str | None
    credential_type: str
    access_key: str
    has_secret: bool
    health: Health | None  # None until the first check
    creation_time: datetime
    update_time: datetime


class EndpointStore(Protocol):
    async def create(self, new: NewEndpoint) -> Endpoint:
        """Conflict when the name is taken."""

    async def get(self, endpoint_id: int) -> Endpoint | None: ...

    async def list(self, criteria: Criteria, offset: int, limit: int) -> Page[Endpoint]:
        """Fields: id, name, type, url, description, status, creation_time, update_time."""

    async def update(self, endpoint_id: int, new: NewEndpoint, keep_secret: bool) -> Endpoint | None:
        """Replace an endpoint's fields; `keep_secret` leaves the stored secret as it is
        (Harbor's masked secret sent back unchanged); the health found before is dropped.
        Conflict on a taken name; None: no such endpoint."""

    async def delete(self, endpoint_id: int) -> Endpoint | None: ...

    async def secret(self, endpoint_id: int) -> str:
        """The decrypted secret ("" when none)."""

    async def record_health(self, endpoint_id: int, health: Health) -> None:
        """Keep what a check found (nothing happens when the endpoint is gone)."""
