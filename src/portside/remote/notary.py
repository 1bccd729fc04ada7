"""An async client for notary-server: the TUF metadata of one GUN, as bytes.

`GET {notary}/v2/{gun}/_trust/tuf/{role}.json` with a Bearer token the caller mints
(Portside's own, for Notary's service, with pull on the GUN), over TLS checked against a
configured CA. What comes back is only read, never trusted here: `portside.trust.tuf`
verifies it.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

from portside.remote.errors import RemoteNotFound, RemoteProtocolError, RemoteUnauthorized, RemoteUnreachable

__all__ = ["NotaryClient"]

_MAX_METADATA = 4 << 20
_TOP = ("root", "timestamp", "snapshot", "targets")


class NotaryClient:
    """notary-server at `base_url` (https://HOST:PORT). `token(gun)` gives the Bearer token
    to send for `gun` (None: send none)."""

    def __init__(
        self,
        base_url: str,
        token: Callable[[str], str | None],
        *,
        ca_file: Path | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
        self._client = httpx.AsyncClient(timeout=timeout, verify=verify, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def role(self, gun: str, role: str) -> bytes:
        """One role's metadata; RemoteNotFound when Notary has none (an unsigned repository)."""
        url = f"{self.base_url}/v2/{gun}/_trust/tuf/{role}.json"
        token = self._token(gun)
        headers = {"authorization": f"Bearer {token}"} if token else {}
        try:
            response = await self._client.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise RemoteUnreachable(f"notary-server at {self.base_url}: {exc!r}") from None
        if response.status_code == 404:
            raise RemoteNotFound(f"notary-server has no {role} for {gun}")
        if response.status_code in (401, 403):
            raise RemoteUnauthorized(f"notary-server refused Portside's token for {gun} ({response.status_code})")
        if response.status_code != 200:
            raise RemoteProtocolError(f"notary-server answered {response.status_code} for {gun}'s {role}")
        if len(response.content) > _MAX_METADATA:
            raise RemoteProtocolError(f"notary-server's {role} for {gun} is larger than {_MAX_METADATA} bytes")
        return response.content

    async def repository(self, gun: str, delegations: tuple[str, ...] = ("targets/releases",)) -> Mapping[str, bytes]:
        """The four top roles and those of `delegations` that exist."""
        metadata = {role: await self.role(gun, role) for role in _TOP}
        for name in delegations:
            try:
                metadata[name] = await self.role(gun, name)
            except RemoteNotFound:
                continue
        return metadata
