"""An async client for one registry's Distribution API.

Credentials are an Authorization header given as is (Harbor hands the adapter `Basic …` or
`Bearer …`). When the registry answers 401 with a `Bearer realm=…` challenge, the client
fetches a token from the realm for the challenge's service and scope, sending the given
Basic credentials, and retries once with that token; the token is kept per scope.

Everything read is checked against its digest: a manifest before it is returned, a blob while
it streams (the last chunk is withheld until the digest is known to match, so a caller never
holds all of a blob whose digest is wrong).
"""

from __future__ import annotations

import hashlib
import json
import re
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from portside.oci import mediatypes as mt
from portside.oci.digest import Digest, new_hasher
from portside.remote.errors import (
    RemoteError,
    RemoteNotFound,
    RemoteProtocolError,
    RemoteUnauthorized,
    RemoteUnreachable,
)

__all__ = ["Descriptor", "Manifest", "Pushed", "RemoteRegistry", "parse_challenge"]

MANIFEST_ACCEPT = ", ".join((mt.OCI_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST, mt.DOCKER_MANIFEST_LIST))
_MAX_MANIFEST = 4 << 20  # the Distribution spec's suggested limit
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True, slots=True)
class Manifest:
    digest: str
    media_type: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What a manifest's HEAD says of it: enough to name it as another manifest's `subject`."""

    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "size": self.size, "digest": self.digest}


@dataclass(frozen=True, slots=True)
class Pushed:
    """A manifest PUT: its digest, and the `OCI-Subject` the registry answered (None: it
    did not say it processed the manifest's subject, so it may have no referrers API)."""

    digest: str
    subject: str | None


def parse_challenge(header: str) -> dict[str, str] | None:
    """The parameters of a `Bearer` WWW-Authenticate challenge, or None for another scheme."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return dict(_CHALLENGE_PARAM.findall(rest))


class RemoteRegistry:
    """One registry at `base_url` (scheme and host, with no `/v2`)."""

    def __init__(
        self,
        base_url: str,
        authorization: str | None = None,
        *,
        timeout: float = 30.0,
        verify: bool | ssl.SSLContext = True,
    ) -> None:
        """`verify`: False skips TLS verification (a registry configured `insecure`); an
        SSLContext trusts the CAs it holds instead of the system's."""
        self.base_url = base_url.rstrip("/")
        self._authorization = authorization
        self._tokens: dict[str, str] = {}
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=True, verify=verify)

    async def __aenter__(self) -> RemoteRegistry:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def manifest(self, repository: str, digest: str) -> Manifest:
        """The manifest `digest` of `repository`, its bytes checked against the digest."""
        expected = _parse_digest(digest)
        response = await self._send("GET", f"/v2/{repository}/manifests/{digest}", repository, accept=MANIFEST_ACCEPT)
        body = response.content
        if len(body) > _MAX_MANIFEST:
            raise RemoteProtocolError(f"manifest {digest} is larger than {_MAX_MANIFEST} bytes")
        if not _matches(expected, body):
            raise RemoteProtocolError(f"manifest {digest} from {self.base_url} does not match its digest")
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in mt.MANIFESTS:
            media_type = _declared_media_type(body) or media_type
        return Manifest(digest=digest, media_type=media_type, body=body)

    async def blob(self, repository: str, digest: str) -> AsyncIterator[bytes]:
        """Stream blob `digest`, checking its digest as it goes; raises RemoteProtocolError
        instead of yielding the last chunk when the bytes do not match."""
        expected = _parse_digest(digest)
        hasher = new_hasher(expected.algorithm)
        path = f"/v2/{repository}/blobs/{digest}"
        async with self._stream(path, repository) as response:
            held: bytes | None = None
            try:
                async for chunk in response.aiter_bytes(1 << 20):
                    hasher.update(chunk)
                    if held is not None:
                        yield held
                    held = chunk
            except httpx.HTTPError as error:
                raise RemoteUnreachable(f"reading blob {digest} from {self.base_url}: {error}") from error
            if hasher.hexdigest() != expected.hex:
                raise RemoteProtocolError(f"blob {digest} from {self.base_url} does not match its digest")
            if held is not None:
                yield held

    async def manifest_by_tag(self, repository: str, reference: str) -> Manifest:
        """The manifest a tag (or digest) names; its digest is the registry's
        `Docker-Content-Digest` when that matches the bytes, else their SHA-256."""
        response = await self._send(
            "GET", f"/v2/{repository}/manifests/{reference}", repository, accept=MANIFEST_ACCEPT
        )
        body = response.content
        if len(body) > _MAX_MANIFEST:
            raise RemoteProtocolError(f"manifest {reference} is larger than {_MAX_MANIFEST} bytes")
        if reference.count(":") and not _matches(_parse_digest(reference), body):
            raise RemoteProtocolError(f"manifest {reference} from {self.base_url} does not match its digest")
        declared = response.headers.get("docker-content-digest", "")
        digest = reference if ":" in reference else None
        if digest is None and declared:
            try:
                if _matches(Digest.parse(declared), body):
                    digest = declared
            except Exception:  # DigestInvalid: fall back to hashing
                digest = None
        if digest is None:
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
        media_type = response.headers.get("content-type", "").split(";")[0].strip()
        if media_type not in mt.MANIFESTS:
            media_type = _declared_media_type(body) or media_type
        return Manifest(digest=digest, media_type=media_type, body=body)

    async def describe(self, repository: str, reference: str) -> Descriptor:
        """The descriptor of the manifest a tag (or digest) names, from a HEAD, else a GET."""
        declared, media_type, length = await self._head(repository, reference)
        if declared and media_type in mt.MANIFESTS and length.isdigit():
            return Descriptor(media_type, declared, int(length))
        found = await self.manifest_by_tag(repository, declared or reference)
        return Descriptor(found.media_type, found.digest, len(found.body))

    async def resolve(self, repository: str, reference: str) -> str:
        """The digest a tag (or digest) names, from a HEAD's `Docker-Content-Digest`, else
        from a GET."""
        declared, _, _ = await self._head(repository, reference)
        return declared or (await self.manifest_by_tag(repository, reference)).digest

    async def _head(self, repository: str, reference: str) -> tuple[str, str, str]:
        """A manifest's HEAD: its declared digest (checked against a digest reference), media
        type and length, each "" when not said. A HEAD passes where a pull policy refuses a
        GET, as it does for cosign."""
        path = f"/v2/{repository}/manifests/{reference}"
        response = await self.request("HEAD", path, repository, {"Accept": MANIFEST_ACCEPT})
        _raise_for(response, path)
        declared = str(response.headers.get("docker-content-digest", ""))
        if declared:
            _parse_digest(declared)
            if ":" in reference and declared.lower() != reference.lower():
                raise RemoteProtocolError(f"{path}: the registry names the digest {declared}")
        media_type = str(response.headers.get("content-type", "")).split(";")[0].strip()
        return declared, media_type, str(response.headers.get("content-length", ""))

    async def referrers(self, repository: str, digest: str, artifact_type: str | None = None) -> bytes:
        """The referrers API's index for `digest` (one page, filtered by `artifact_type`
        when the registry filters); RemoteNotFound when the registry has no referrers API."""
        _parse_digest(digest)
        path = f"/v2/{repository}/referrers/{digest}"
        if artifact_type:
            path += "?" + str(httpx.QueryParams({"artifactType": artifact_type}))
        response = await self._send("GET", path, repository, accept=mt.OCI_INDEX)
        if len(response.content) > _MAX_MANIFEST:
            raise RemoteProtocolError(f"{path}: the referrers index is larger than {_MAX_MANIFEST} bytes")
        return response.content

    async def push_blob(self, repository: str, data: bytes) -> str:
        """Upload a blob (POST then PUT) unless the registry has it already; its digest."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        head = await self.request("HEAD", f"/v2/{repository}/blobs/{digest}", repository, {}, actions="pull,push")
        if head.status_code == 200:
            return digest
        path = f"/v2/{repository}/blobs/uploads/"
        started = await self.request("POST", path, repository, {}, actions="pull,push")
        if started.status_code != 202:
            _raise_for(started, path)
            raise RemoteProtocolError(f"{path}: unexpected status {started.status_code}")
        location = started.headers.get("location", "")
        if not location:
            raise RemoteProtocolError(f"{path}: the upload has no Location")
        url = httpx.URL(self.base_url).join(location)
        url = url.copy_merge_params({"digest": digest})
        target = url.raw_path.decode() if url.host == httpx.URL(self.base_url).host else str(url)
        done = await self.request(
            "PUT",
            target,
            repository,
            {"Content-Type": "application/octet-stream"},
            actions="pull,push",
            content=data,
        )
        if done.status_code != 201:
            _raise_for(done, path)
            raise RemoteProtocolError(f"{path}: the upload ended with {done.status_code}")
        return digest

    async def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or digest; its digest."""
        return (await self.push_manifest(repository, reference, body, media_type)).digest

    async def push_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> Pushed:
        """PUT a manifest under a tag or digest; its digest and the registry's `OCI-Subject`."""
        path = f"/v2/{repository}/manifests/{reference}"
        response = await self.request(
            "PUT", path, repository, {"Content-Type": media_type}, actions="pull,push", content=body
        )
        if response.status_code != 201:
            _raise_for(response, path)
            raise RemoteProtocolError(f"{path}: unexpected status {response.status_code}")
        digest = response.headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        return Pushed(digest, response.headers.get("oci-subject") or None)

    async def check(self) -> None:
        """GET /v2/ with the credentials (answering a challenge); raises when refused."""
        _raise_for(await self.request("GET", "/v2/", "", {}, actions=""), "/v2/")

    # -- requests, with the token dance ------------------------------------------------

    async def _send(self, method: str, path: str, repository: str, *, accept: str | None = None) -> httpx.Response:
        headers = {"Accept": accept} if accept else {}
        response = await self.request(method, path, repository, headers)
        _raise_for(response, path)
        return response

    def _stream(self, path: str, repository: str) -> _Streamed:
        return _Streamed(self, path, repository)

    async def request(
        self,
        method: str,
        path: str,
        repository: str,
        headers: dict[str, str],
        *,
        stream: bool = False,
        actions: str = "pull",
        content: bytes | None = None,
        scope: str | None = None,
    ) -> httpx.Response:
        """One request with the credentials, answering a Bearer challenge once; `path` may be
        a whole URL (an upload's Location elsewhere). `actions` empty: no repository scope.
        `scope` replaces the one derived from `repository` and `actions`, for a request that
        needs two repositories (a cross-repository mount pulls from one, pushes to another)."""
        if scope is None:
            scope = f"repository:{repository}:{actions}" if actions else ""
        response = await self._once(
            method, path, {**headers, **self._auth_header(scope)}, stream=stream, content=content
        )
        if response.status_code != 401:
            return response
        challenge = parse_challenge(response.headers.get("www-authenticate", ""))
        await response.aclose()
        if challenge is None or "realm" not in challenge or scope in self._tokens:
            raise RemoteUnauthorized(f"{self.base_url} refused the credentials for {path}")
        self._tokens[scope] = await self._token(challenge, scope)
        response = await self._once(
            method, path, {**headers, **self._auth_header(scope)}, stream=stream, content=content
        )
        if response.status_code == 401:
            await response.aclose()
            raise RemoteUnauthorized(f"{self.base_url} refused the token for {path}")
        return response

    def _auth_header(self, scope: str) -> dict[str, str]:
        token = self._tokens.get(scope)
        if token is not None:
            return {"Authorization": f"Bearer {token}"}
        return {"Authorization": self._authorization} if self._authorization else {}

    async def _once(
        self, method: str, path: str, headers: dict[str, str], *, stream: bool, content: bytes | None = None
    ) -> httpx.Response:
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        try:
            request = self._http.build_request(method, url, headers=headers, content=content)
            return await self._http.send(request, stream=stream)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise RemoteUnreachable(f"{self.base_url} is unreachable: {error}") from error

    async def _token(self, challenge: dict[str, str], scope: str) -> str:
        params = {}
        if challenge.get("scope") or scope:
            params["scope"] = challenge.get("scope") or scope
        if challenge.get("service"):
            params["service"] = challenge["service"]
        # Only Basic credentials can be exchanged for a token; a Bearer given as is was the
        # token already, and the registry refused it.
        headers = {}
        if self._authorization and self._authorization.lower().startswith("basic "):
            headers["Authorization"] = self._authorization
        try:
            response = await self._http.get(challenge["realm"], params=params, headers=headers)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise RemoteUnreachable(f"token service {challenge['realm']} is unreachable: {error}") from error
        if response.status_code in (401, 403):
            raise RemoteUnauthorized(f"token service {challenge['realm']} refused the credentials")
        if response.status_code != 200:
            raise RemoteProtocolError(f"token service {challenge['realm']} answered {response.status_code}")
        try:
            body: Any = response.json()
            token = body.get("token") or body.get("access_token")
        except (ValueError, AttributeError) as error:
            raise RemoteProtocolError(f"token service {challenge['realm']} answered no JSON") from error
        if not isinstance(token, str) or not token:
            raise RemoteProtocolError(f"token service {challenge['realm']} answered no token")
        return token


class _Streamed:
    """`async with` around a streamed GET, closing the response however the caller leaves."""

    def __init__(self, registry: RemoteRegistry, path: str, repository: str) -> None:
        self._registry, self._path, self._repository = registry, path, repository
        self._response: httpx.Response | None = None

    async def __aenter__(self) -> httpx.Response:
        response = await self._registry.request("GET", self._path, self._repository, {}, stream=True)
        self._response = response
        if response.status_code >= 300:
            await response.aread()
            await response.aclose()
            _raise_for(response, self._path)
        return response

    async def __aexit__(self, *_: object) -> None:
        if self._response is not None:
            await self._response.aclose()


def _raise_for(response: httpx.Response, path: str) -> None:
    status = response.status_code
    if status < 300:
        return
    if status == 404:
        raise RemoteNotFound(f"{path} not found")
    if status in (401, 403):
        raise RemoteUnauthorized(f"{path}: access denied ({status})")
    raise RemoteProtocolError(f"{path}: unexpected status {status}")


def _parse_digest(text: str) -> Digest:
    try:
        return Digest.parse(text)
    except Exception as error:  # DigestInvalid: the caller asked for nonsense
        raise RemoteError(f"not a digest: {text!r}") from error


def _matches(expected: Digest, body: bytes) -> bool:
    hasher = new_hasher(expected.algorithm)
    hasher.update(body)
    return hasher.hexdigest() == expected.hex


def _declared_media_type(body: bytes) -> str | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    media_type = value.get("mediaType") if isinstance(value, dict) else None
    return media_type if isinstance(media_type, str) else None
