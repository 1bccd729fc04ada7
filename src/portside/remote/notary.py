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
        self._ca_file = ca_file
        self._timeout = timeout
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    @property
    def _client(self) -> httpx.AsyncClient:
        """Made on first use: Notary's CA may be written after Portside starts (each needs the
        other's certificate), and a CA that cannot be read then is a failed read, not a
        registry that does not start."""
        if self._http is None:
            verify: ssl.SSLContext | bool = True
            if self._ca_file:
                try:
                    verify = ssl.create_default_context(cafile=str(self._ca_file))
                except (OSError, ssl.SSLError) as exc:
                    raise RemoteUnreachable(f"Notary's CA {self._ca_file} cannot be read: {exc}") from None
            self._http = httpx.AsyncClient(timeout=self._timeout, verify=verify, transport=self._transport)
        return self._http

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()

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
