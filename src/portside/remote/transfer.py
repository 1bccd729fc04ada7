"""The push side of the Distribution API, beside the pull side in `client.py`: what a copy
needs of a registry besides reading manifests and blobs.

* blobs: HEAD to skip what is there, cross-repository mounts, and upload sessions that send
  a blob in chunks (PATCH with Content-Range) or whole, and that say how much the registry
  holds (GET on the session's URL answers `Range`), so an interrupted chunk resumes at the
  registry's offset instead of from the start;
* listings: a repository's tags and the catalog, following `Link` pages (a manifest's
  referrers are `RemoteRegistry.referrers` and `portside.remote.referrers`).

Everything goes through `RemoteRegistry.request`, so the registry's auth (Bearer token,
Basic, anonymous) applies as it does to pulls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from portside.remote.client import RemoteRegistry
from portside.remote.errors import (
    RemoteNotFound,
    RemoteProtocolError,
    RemoteUnauthorized,
)

__all__ = [
    "Mounted",
    "RangeRefused",
    "UploadSession",
    "blob_exists",
    "catalog",
    "list_tags",
    "manifest_digest",
    "start_upload",
]

_PUSH = "pull,push"
_LINK_NEXT = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
_PAGE = 1000


class RangeRefused(RemoteProtocolError):
    """416: the registry holds a different amount of the upload than the chunk assumed; its
    `status` says how much."""


class Mounted:
    """What `start_upload` answers when the registry linked the blob from another repository."""


def _raise_for(response: httpx.Response, what: str) -> None:
    status = response.status_code
    if status < 300:
        return
    if status == 404:
        raise RemoteNotFound(f"{what}: not found")
    if status in (401, 403):
        raise RemoteUnauthorized(f"{what}: access denied ({status})")
    raise RemoteProtocolError(f"{what}: unexpected status {status}: {response.text[:200]}")


def _target(registry: RemoteRegistry, location: str) -> str:
    """An upload's Location as `request` takes it: a path on the registry, or a whole URL
    when the registry sends uploads elsewhere."""
    base = httpx.URL(registry.base_url)
    url = base.join(location)
    if url.host == base.host and url.port == base.port:
        return url.raw_path.decode()
    return str(url)


async def blob_exists(registry: RemoteRegistry, repository: str, digest: str) -> bool:
    response = await registry.request("HEAD", f"/v2/{repository}/blobs/{digest}", repository, {})
    if response.status_code == 404:
        return False
    _raise_for(response, f"HEAD blob {digest} in {repository}")
    return True


async def manifest_digest(registry: RemoteRegistry, repository: str, reference: str) -> str | None:
    """The digest a tag (or digest) names there, or None when it names nothing."""
    try:
        return await registry.resolve(repository, reference)
    except RemoteNotFound:
        return None


@dataclass
class UploadSession:
    """One blob upload in progress at `location`; `offset` is what the registry has."""

    registry: RemoteRegistry
    repository: str
    location: str
    offset: int = 0

    @property
    def handle(self) -> str:
        return self.location

    async def status(self) -> int:
        """Ask the registry how much of the upload it holds (its `Range`, inclusive)."""
        response = await self.registry.request("GET", self.location, self.repository, {}, actions=_PUSH)
        _raise_for(response, f"upload status in {self.repository}")
        self._follow(response)
        return self.offset

    async def patch(self, data: bytes) -> int:
        """Send `data` at the current offset; the registry's new offset."""
        end = self.offset + len(data) - 1
        response = await self.registry.request(
            "PATCH",
            self.location,
            self.repository,
            {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"{self.offset}-{end}",
                "Content-Length": str(len(data)),
            },
            actions=_PUSH,
            content=data,
        )
        if response.status_code == 416:
            raise RangeRefused(f"PATCH upload in {self.repository}: the registry holds another range")
        _raise_for(response, f"PATCH upload in {self.repository}")
        self._follow(response)
        return self.offset

    async def finish(self, digest: str, data: bytes = b"") -> None:
        """PUT the last bytes (or none) with the digest, which the registry checks."""
        url = httpx.URL(self.registry.base_url).join(self.location).copy_merge_params({"digest": digest})
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
        if data:
            headers["Content-Range"] = f"{self.offset}-{self.offset + len(data) - 1}"
        response = await self.registry.request(
            "PUT", _target(self.registry, str(url)), self.repository, headers, actions=_PUSH, content=data
        )
        if response.status_code != 201:
            _raise_for(response, f"PUT blob {digest} in {self.repository}")
            raise RemoteProtocolError(f"PUT blob {digest} in {self.repository}: status {response.status_code}")

    async def cancel(self) -> None:
        response = await self.registry.request("DELETE", self.location, self.repository, {}, actions=_PUSH)
        await response.aclose()

    def _follow(self, response: httpx.Response) -> None:
        # Each answer may move the session (Distribution's Location carries its state).
        location = response.headers.get("location")
        if location:
            self.location = _target(self.registry, location)
        held = response.headers.get("range", "")
        first, sep, last = held.partition("-")
        if sep and first.strip().isdigit() and last.strip().isdigit():
            # "0-0" is both one byte and none at all; a session whose offset we know is
            # never behind by one byte, and a new one has none.
            end = int(last)
            self.offset = 0 if end == 0 and self.offset <= 0 else end + 1


async def start_upload(
    registry: RemoteRegistry, repository: str, *, mount: str | None = None, source: str | None = None
) -> UploadSession | Mounted:
    """POST an upload; with `mount` and `source`, ask for the blob `mount` to be linked from
    repository `source` of the same registry (Mounted), which the registry may decline by
    opening an ordinary session instead."""
    path = f"/v2/{repository}/blobs/uploads/"
    scope = None
    if mount and source:
        path += "?" + str(httpx.QueryParams({"mount": mount, "from": source}))
        scope = f"repository:{repository}:{_PUSH} repository:{source}:pull"
    response = await registry.request("POST", path, repository, {}, actions=_PUSH, scope=scope)
    if response.status_code == 201 and mount:
        return Mounted()
    if response.status_code != 202:
        _raise_for(response, f"POST upload in {repository}")
        raise RemoteProtocolError(f"POST upload in {repository}: status {response.status_code}")
    location = response.headers.get("location")
    if not location:
        raise RemoteProtocolError(f"POST upload in {repository}: no Location")
    return UploadSession(registry, repository, _target(registry, location))


async def _pages(registry: RemoteRegistry, path: str, repository: str, key: str, actions: str) -> list[str]:
    found: list[str] = []
    next_path: str | None = path
    while next_path:
        response = await registry.request("GET", next_path, repository, {}, actions=actions)
        _raise_for(response, f"GET {path}")
        try:
            body: Any = response.json()
        except ValueError as error:
            raise RemoteProtocolError(f"GET {path}: no JSON") from error
        values = body.get(key) if isinstance(body, dict) else None
        found.extend(value for value in values or [] if isinstance(value, str))
        link = _LINK_NEXT.search(response.headers.get("link", ""))
        next_path = _target(registry, link.group(1)) if link else None
    return found


async def list_tags(registry: RemoteRegistry, repository: str) -> list[str]:
    return await _pages(registry, f"/v2/{repository}/tags/list?n={_PAGE}", repository, "tags", "pull")


async def catalog(registry: RemoteRegistry) -> list[str]:
    return await _pages(registry, f"/v2/_catalog?n={_PAGE}", "", "repositories", "")
