"""One upstream registry as the cache reaches it: its URLs tried in order, its limits, and
clients kept between pulls so their tokens are too.

Each URL gets one long-lived `RemoteRegistry`: a Bearer token it fetched is sent with every
later request of the same scope, so a pull costs no login. A token the upstream stops
accepting (it expired) gets one fresh client and one retry; only a refusal after that is
`RemoteUnauthorized`.

The limits are Portside's promise to the upstream, not the upstream's to us: at most
`max_connections` requests (a blob's whole transfer counts as one) and `requests_per_second`
at once; a request beyond them is refused at once with `UpstreamBusy` (the cache answers 429
with Retry-After when it has nothing cached to serve instead) rather than queued, so a burst
of clients never piles up behind a slow upstream.

Failover: a URL that does not answer, or answers 5xx, passes the request to the next; the
one that answered is tried first next time.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from portside.errors import DigestInvalid
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.remote.adapters import Target
from portside.remote.client import MANIFEST_ACCEPT, RemoteRegistry
from portside.remote.errors import (
    RemoteError,
    RemoteNotFound,
    RemoteProtocolError,
    RemoteUnauthorized,
    RemoteUnreachable,
)

__all__ = ["Limits", "ManifestHead", "FetchedManifest", "Upstream", "UpstreamBusy", "UpstreamLimited"]

_MAX_MANIFEST = 4 << 20
_CHUNK = 1 << 20


class UpstreamBusy(RemoteError):
    """This upstream's limits (connections, requests per second) are reached."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after


class UpstreamLimited(RemoteError):
    """The upstream answered 429."""


@dataclass(frozen=True, slots=True)
class Limits:
    max_connections: int = 0  # 0: none
    requests_per_second: float = 0.0  # 0: none


@dataclass(frozen=True, slots=True)
class ManifestHead:
    digest: Digest
    media_type: str


@dataclass(frozen=True, slots=True)
class FetchedManifest:
    digest: Digest
    media_type: str
    payload: bytes


class _Bucket:
    """Requests per second as a token bucket holding at most one second's worth."""

    def __init__(self, rate: float, clock: Callable[[], float]):
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._clock = clock
        self._at = clock()

    def take(self) -> float:
        """0 when a request may go now (and counts it); else seconds until one may."""
        now = self._clock()
        self._tokens = min(self._capacity, self._tokens + (now - self._at) * self._rate)
        self._at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self._rate


class Upstream:
    def __init__(self, targets: Sequence[Target], limits: Limits, clock: Callable[[], float] = time.monotonic):
        if not targets:
            raise ValueError("an upstream needs at least one URL")
        self._targets = list(targets)
        self._clients: list[RemoteRegistry] = [t.client() for t in targets]
        self._first = 0
        self.limits = limits
        self._in_use = 0
        self._bucket = _Bucket(limits.requests_per_second, clock) if limits.requests_per_second > 0 else None
        self.requests = 0  # sent upstream, for the project page's figures

    async def aclose(self) -> None:
        for client in self._clients:
            await client.aclose()

    # --- what the cache asks ------------------------------------------------------------

    async def head_manifest(self, repository: str, reference: str) -> ManifestHead:
        path = f"/v2/{repository}/manifests/{reference}"
        async with self._slot():
            response = await self._send("HEAD", path, repository, {"Accept": MANIFEST_ACCEPT})
        declared = response.headers.get("docker-content-digest")
        media_type = _media_type(response.headers.get("content-type", ""), b"")
        try:
            return ManifestHead(Digest.parse(declared or ""), media_type)
        except DigestInvalid:
            # A registry that names no digest on HEAD: the GET's bytes say it.
            fetched = await self.manifest(repository, reference)
            return ManifestHead(fetched.digest, fetched.media_type)

    async def manifest(self, repository: str, reference: str | Digest) -> FetchedManifest:
        """The manifest a tag or digest names, its bytes checked against the digest asked
        for (by digest), or its digest computed from them (by tag)."""
        path = f"/v2/{repository}/manifests/{reference}"
        async with self._slot():
            response = await self._send("GET", path, repository, {"Accept": MANIFEST_ACCEPT})
        body = response.content
        if len(body) > _MAX_MANIFEST:
            raise RemoteProtocolError(f"{path}: the manifest is larger than {_MAX_MANIFEST} bytes")
        if isinstance(reference, Digest):
            if Digest.of(body, reference.algorithm) != reference:
                raise RemoteProtocolError(f"{path}: the manifest does not match its digest")
            digest = reference
        else:
            digest = Digest.of(body)
        return FetchedManifest(digest, _media_type(response.headers.get("content-type", ""), body), body)

    @asynccontextmanager
    async def blob(self, repository: str, digest: Digest) -> AsyncIterator[tuple[int | None, AsyncIterator[bytes]]]:
        """(size, chunks) of a blob, as the upstream sends them: `RemoteProtocolError` when
        they are not as many bytes as it said. Their digest is the caller's to check (the
        cache's store does, as it keeps them: proxy/downloads.py)."""
        path = f"/v2/{repository}/blobs/{digest}"
        async with self._slot():
            response = await self._send("GET", path, repository, {}, stream=True)
            try:
                length = response.headers.get("content-length")
                size = int(length) if length and length.isdigit() else None
                yield size, _counted(response, size, path)
            finally:
                await response.aclose()

    async def blob_size(self, repository: str, digest: Digest) -> int | None:
        path = f"/v2/{repository}/blobs/{digest}"
        async with self._slot():
            response = await self._send("HEAD", path, repository, {})
        length = response.headers.get("content-length", "")
        return int(length) if length.isdigit() else None

    async def referrers(self, repository: str, subject: Digest) -> bytes | None:
        """The upstream's referrers index of `subject` (None: it has no referrers API)."""
        path = f"/v2/{repository}/referrers/{subject}"
        async with self._slot():
            try:
                response = await self._send("GET", path, repository, {"Accept": mt.OCI_INDEX})
            except RemoteNotFound:
                return None
        if len(response.content) > _MAX_MANIFEST:
            raise RemoteProtocolError(f"{path}: the referrers index is too large")
        return response.content

    # --- limits, failover, tokens -------------------------------------------------------

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        limit = self.limits.max_connections
        if limit and self._in_use >= limit:
            raise UpstreamBusy(f"all {limit} connections to the upstream are in use", 1)
        if self._bucket is not None and (wait := self._bucket.take()) > 0:
            raise UpstreamBusy(
                f"at most {self.limits.requests_per_second:g} requests per second to the upstream",
                max(1, math.ceil(wait)),
            )
        self._in_use += 1
        try:
            yield
        finally:
            self._in_use -= 1

    async def _send(
        self, method: str, path: str, repository: str, headers: dict[str, str], *, stream: bool = False
    ) -> httpx.Response:
        """The first answer that is no failure of the URL it came from (unreachable, 5xx),
        trying the URLs in order from the one that answered last."""
        failure: RemoteError | None = None
        count = len(self._clients)
        for step in range(count):
            index = (self._first + step) % count
            try:
                response = await self._request(index, method, path, repository, headers, stream)
            except RemoteUnreachable as error:
                failure = error
                continue
            if response.status_code >= 500:
                failure = RemoteUnreachable(f"{self._targets[index].url}{path} answered {response.status_code}")
                await response.aclose()
                continue
            self._first = index
            if response.status_code >= 300:
                await response.aclose()
                _raise_for(response, path)
            return response
        assert failure is not None
        raise failure

    async def _request(
        self, index: int, method: str, path: str, repository: str, headers: dict[str, str], stream: bool
    ) -> httpx.Response:
        self.requests += 1
        try:
            return await self._clients[index].request(method, path, repository, headers, stream=stream)
        except RemoteUnauthorized:
            # Its token was kept for this scope and is refused now (expired): one fresh
            # client, which logs in again; a refusal after that is the credential's.
            old, self._clients[index] = self._clients[index], self._targets[index].client()
            await old.aclose()
            self.requests += 1
            return await self._clients[index].request(method, path, repository, headers, stream=stream)


def _raise_for(response: httpx.Response, path: str) -> None:
    status = response.status_code
    if status == 404:
        raise RemoteNotFound(f"{path}: not found upstream")
    if status in (401, 403):
        raise RemoteUnauthorized(f"{path}: the upstream refused access ({status})")
    if status == 429:
        raise UpstreamLimited(f"{path}: the upstream is rate-limiting (429)")
    raise RemoteProtocolError(f"{path}: the upstream answered {status}")


def _media_type(content_type: str, body: bytes) -> str:
    media_type = content_type.split(";")[0].strip()
    if media_type in mt.MANIFESTS or not body:
        return media_type
    try:
        declared = json.loads(body).get("mediaType")
    except (ValueError, AttributeError):
        declared = None
    return declared if isinstance(declared, str) and declared else media_type or mt.OCI_MANIFEST


async def _counted(response: httpx.Response, size: int | None, path: str) -> AsyncIterator[bytes]:
    total = 0
    try:
        async for chunk in response.aiter_bytes(_CHUNK):
            total += len(chunk)
            yield chunk
    except httpx.HTTPError as error:
        raise RemoteUnreachable(f"{path}: the transfer broke off: {error}") from error
    if size is not None and total != size:
        raise RemoteProtocolError(f"{path}: {total} bytes, not the {size} the upstream said")
