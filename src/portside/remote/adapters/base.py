"""The adapter interface, what it answers (Harbor's RegistryInfo and RegistryProviderInfo),
and what every adapter shares: the target it talks to and the Distribution API ping."""

from __future__ import annotations

import base64
import ssl
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import httpx

from portside.remote.client import RemoteRegistry
from portside.remote.errors import RemoteNotFound, RemoteProtocolError, RemoteUnauthorized

__all__ = [
    "Adapter",
    "FilterStyle",
    "ProviderInfo",
    "RegistryInfo",
    "Target",
    "basic_authorization",
    "ping_distribution",
    "standard_url",
    "tls_verify",
]


@dataclass(frozen=True, slots=True)
class FilterStyle:
    """One filter a registry supports (`type` name, tag, label or resource), how it is
    entered (`style` input, list or radio) and its choices."""

    type: str
    style: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RegistryInfo:
    type: str
    description: str
    filters: tuple[FilterStyle, ...]
    triggers: tuple[str, ...]
    copy_by_chunk: bool


@dataclass(frozen=True, slots=True)
class ProviderInfo:
    """Harbor's endpoint and credential patterns: how the UI offers the URL (`Standard`:
    any; `Fix`: one of `endpoints`) and what the access key and secret are."""

    endpoint_type: str
    endpoints: tuple[tuple[str, str], ...] = ()  # (key, value)
    access_key_type: str = "CredentialPatternTypeFree"
    access_key_data: str = ""
    access_secret_type: str = "CredentialPatternTypeFree"
    access_secret_data: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """What one request to a registry needs: its API's URL, the Authorization header of its
    credential (None: anonymous), and how its TLS is checked."""

    url: str
    authorization: str | None = field(default=None, repr=False)  # never in a log line
    verify: bool | ssl.SSLContext = True
    timeout: float = 10.0

    def client(self) -> RemoteRegistry:
        return RemoteRegistry(self.url, self.authorization, timeout=self.timeout, verify=self.verify)


def standard_url(url: str) -> str:
    """An http(s) URL of a host (and maybe a path), without a trailing slash; ValueError
    for anything else."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"must be an http:// or https:// URL of a host, not {url[:200]!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError("must hold no query, fragment or user (the credential is given apart)")
    normalised = f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/")
    try:
        parts.port  # noqa: B018 (raises for a port out of range)
        httpx.URL(normalised)  # what the client will be asked to reach
    except (ValueError, httpx.InvalidURL) as error:
        raise ValueError(f"is no URL the client can reach ({error})") from None
    return normalised


def basic_authorization(access_key: str, access_secret: str) -> str | None:
    """The Basic header of a credential (both Harbor types are sent as Basic: `oauth`'s key
    and secret go to the registry's token service); None without an access key."""
    if not access_key:
        return None
    return "Basic " + base64.b64encode(f"{access_key}:{access_secret}".encode()).decode()


def tls_verify(insecure: bool, ca_certificate: str | None) -> bool | ssl.SSLContext:
    """False only when the registry is configured insecure; a context trusting
    `ca_certificate` (PEM) instead of the system CAs when one is given. ValueError when it
    holds no certificate."""
    if insecure:
        return False
    if not ca_certificate or not ca_certificate.strip():
        return True
    try:
        return ssl.create_default_context(cadata=ca_certificate)
    except (ssl.SSLError, ValueError, TypeError) as error:  # TypeError: not ASCII
        raise ValueError(f"ca_certificate holds no PEM certificate ({error})") from None


async def ping_distribution(target: Target) -> None:
    """Whether the Distribution API at `target` answers, with its credential when it has
    one. Anonymous, a challenge is an answer: access is then decided per repository, as a
    pull does. With a credential, a refusal (by the registry or its token service) is not."""
    async with target.client() as client:
        try:
            await client.check()
        except RemoteUnauthorized:
            if target.authorization is None:
                return
            raise RemoteUnauthorized(f"{target.url} refused the credentials") from None
        except RemoteNotFound:
            raise RemoteProtocolError(f"{target.url} has no Distribution API (/v2/ not found)") from None


class Adapter(Protocol):
    """One type of registry."""

    @property
    def type(self) -> str: ...

    def normalise(self, url: str) -> str:
        """The URL as stored; ValueError naming what is wrong with it."""

    def registry_url(self, url: str) -> str:
        """Where the Distribution API of the registry configured at `url` is."""

    def repository(self, name: str) -> str:
        """A repository name as that registry spells it."""

    def info(self) -> RegistryInfo: ...

    def provider(self) -> ProviderInfo: ...

    async def ping(self, target: Target) -> None:
        """Return when the registry answers as its type should; raise RemoteError (its
        message says what is wrong) when it does not."""
