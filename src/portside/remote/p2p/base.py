"""The provider interface every P2P driver implements, and what drivers share: how an
instance is reached (`Connection`, with the Authorization its auth mode asks for), what is
preheated (`Image`), and what a provider said of a job (`JobStatus`)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Protocol

import httpx

__all__ = [
    "FAILURE",
    "RUNNING",
    "SUCCESS",
    "Connection",
    "Driver",
    "DriverInfo",
    "Image",
    "JobStatus",
    "P2PError",
    "body_text",
    "send",
]

# A job's state, as Portside reads every provider's.
RUNNING, SUCCESS, FAILURE = "RUNNING", "SUCCESS", "FAILURE"


class P2PError(Exception):
    """The provider could not be reached, refused the request, or answered otherwise than
    its API says; the message says which, in words a person can act on."""


@dataclass(frozen=True, slots=True)
class DriverInfo:
    """Harbor's Metadata of a provider."""

    id: str
    name: str
    icon: str
    maintainers: tuple[str, ...]
    version: str
    source: str


@dataclass(frozen=True, slots=True)
class Connection:
    """Where an instance is and how to sign in: Harbor's auth modes NONE, BASIC (a user
    and password), OAUTH (a bearer token) and CUSTOM (a header of the instance's choice)."""

    endpoint: str
    auth_mode: str = "NONE"
    auth_key: str = ""  # BASIC's username, CUSTOM's header name
    auth_secret: str = field(default="", repr=False)  # never in a log line
    insecure: bool = False
    timeout: float = 10.0

    def headers(self) -> dict[str, str]:
        if self.auth_mode == "BASIC":
            pair = f"{self.auth_key}:{self.auth_secret}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        if self.auth_mode == "OAUTH":
            return {"Authorization": f"Bearer {self.auth_secret}"}
        if self.auth_mode == "CUSTOM" and self.auth_key:
            return {self.auth_key: self.auth_secret}
        return {}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.endpoint.rstrip("/"),
            headers=self.headers(),
            verify=not self.insecure,
            timeout=self.timeout,
            follow_redirects=False,
        )


@dataclass(frozen=True, slots=True)
class Image:
    """One image to preheat: its manifest's URL on Portside, and the headers (a pull
    token) that fetch it from there. `scope` and `cluster_ids` are the policy's extra_attrs."""

    repository: str
    tag: str
    digest: str
    media_type: str
    url: str
    headers: dict[str, str] = field(repr=False)
    scope: str = "single_seed_peer"
    cluster_ids: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class JobStatus:
    job_id: str
    state: str  # RUNNING, SUCCESS or FAILURE
    message: str = ""

    @property
    def done(self) -> bool:
        return self.state in (SUCCESS, FAILURE)


class Driver(Protocol):
    """One P2P provider."""

    @property
    def vendor(self) -> str: ...

    def info(self) -> DriverInfo: ...

    async def health(self, connection: Connection) -> None:
        """Return when the instance answers as healthy; raise P2PError saying why not."""

    async def preheat(self, connection: Connection, image: Image) -> JobStatus:
        """Ask the instance to fetch `image`; the job it made."""

    async def status(self, connection: Connection, job_id: str) -> JobStatus:
        """What the instance says of a job now."""


async def send(connection: Connection, method: str, path: str, json: object | None = None) -> httpx.Response:
    """One request to the instance, its failures turned into P2PError (a refused
    credential named as such)."""
    try:
        async with connection.client() as client:
            response = await client.request(method, path, json=json)
    except httpx.HTTPError as error:
        raise P2PError(f"{connection.endpoint} could not be reached: {error or type(error).__name__}") from None
    if response.status_code in (401, 403):
        raise P2PError(f"{connection.endpoint} refused the credentials ({response.status_code})")
    return response


def body_text(response: httpx.Response) -> str:
    """What an error answer said, shortened for a log line."""
    return " ".join(response.text.split())[:300]
