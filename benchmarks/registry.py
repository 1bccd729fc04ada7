"""What the benchmarks do to a registry through its HTTP API: push blobs (monolithic or in
chunks), mount them, put manifests, and sign in (Basic credentials, or a Bearer token from
Docker token authentication's realm; or a web session, for the pages of Portside's UI).

The same calls go to Portside and to Distribution, and nothing here knows which is which;
only the web session is Portside's alone (Harbor's sign-in, which Distribution has not).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from benchmarks.connection import Connection, FileBody, Response, path_of

__all__ = [
    "Blob",
    "RegistryClient",
    "MANIFEST_TYPE",
    "basic_auth",
    "bearer_token",
    "image_manifest",
    "session_cookie",
    "sha256_digest",
    "token_url",
]

MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Blob:
    """Content to push: bytes in memory, or a file region (sent with sendfile)."""

    digest: str
    size: int
    body: bytes | FileBody

    @classmethod
    def of(cls, data: bytes) -> Blob:
        return cls(sha256_digest(data), len(data), data)

    def part(self, start: int, end: int) -> bytes | FileBody:
        if isinstance(self.body, FileBody):
            return FileBody(self.body.path, self.body.offset + start, end - start)
        return self.body[start:end]


def image_manifest(config: Blob, layers: Sequence[Blob]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": CONFIG_TYPE, "digest": config.digest, "size": config.size},
            "layers": [{"mediaType": LAYER_TYPE, "digest": b.digest, "size": b.size} for b in layers],
        }
    ).encode()


def basic_auth(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


def token_url(url: str, scopes: Sequence[str]) -> str:
    """Where Docker token authentication sends a client for a token with `scopes`: `/v2/`
    answers 401 with a Bearer challenge naming the realm and the service."""
    challenge = httpx.get(f"{url}/v2/", timeout=60.0).headers["www-authenticate"]
    params = dict(_CHALLENGE_PARAM.findall(challenge))
    query = [("service", params.get("service", ""))] + [("scope", s) for s in scopes]
    return str(httpx.URL(params["realm"], params=query))


def bearer_token(url: str, username: str, password: str, scopes: Sequence[str]) -> dict[str, str]:
    """A token from the realm for `scopes`, got with Basic credentials, as docker gets one."""
    answer = httpx.get(token_url(url, scopes), auth=(username, password), timeout=60.0)
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def session_cookie(url: str, username: str, password: str) -> dict[str, str]:
    """The Cookie header of a web session, opened as a browser's sign-in opens one: Harbor's
    `POST /c/login` with a form (`principal`, `password`), which answers with the `sid` cookie."""
    answer = httpx.post(f"{url}/c/login", data={"principal": username, "password": password}, timeout=60.0)
    answer.raise_for_status()
    return {"Cookie": f"sid={answer.cookies['sid']}"}


class RegistryClient:
    """One client on one keep-alive connection, sending `auth` headers on every request."""

    def __init__(self, url: str, auth: dict[str, str] | None = None):
        self.url = url
        self.auth = dict(auth or {})
        self.connection = Connection.to(url)

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(
        self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes | FileBody | None = None
    ) -> Response:
        return self.connection.request(method, target, {**self.auth, **(headers or {})}, body)

    def push_blob(self, repo: str, blob: Blob, chunk_size: int | None = None) -> None:
        """POST a session, then either PUT the whole blob (monolithic) or PATCH it in
        `chunk_size` pieces and PUT to complete, as the Distribution spec describes."""
        started = self._request("POST", f"/v2/{repo}/blobs/uploads/").expect(202, what=f"start upload to {repo}")
        location = path_of(started.headers["location"])
        octets = {"Content-Type": "application/octet-stream"}
        if chunk_size is not None:
            for start in range(0, blob.size, chunk_size):
                end = min(start + chunk_size, blob.size)
                patched = self._request(
                    "PATCH", location, {**octets, "Content-Range": f"{start}-{end - 1}"}, blob.part(start, end)
                ).expect(202, what=f"PATCH {start}-{end - 1} to {repo}")
                location = path_of(patched.headers["location"])
        body = None if chunk_size is not None else blob.body
        separator = "&" if "?" in location else "?"
        self._request("PUT", f"{location}{separator}digest={blob.digest}", octets, body).expect(
            201, what=f"complete upload of {blob.digest} to {repo}"
        )

    def mount(self, repo: str, digest: str, source: str) -> None:
        self._request("POST", f"/v2/{repo}/blobs/uploads/?mount={digest}&from={source}").expect(
            201, what=f"mount {digest} from {source} into {repo}"
        )

    def put_manifest(self, repo: str, reference: str, manifest: bytes, media_type: str = MANIFEST_TYPE) -> None:
        self._request("PUT", f"/v2/{repo}/manifests/{reference}", {"Content-Type": media_type}, manifest).expect(
            201, what=f"put manifest {repo}:{reference}"
        )

    def push_image(self, repo: str, tag: str, config: Blob, layers: Sequence[Blob]) -> str:
        """Push the blobs and the manifest; returns the manifest's digest."""
        for blob in (config, *layers):
            self.push_blob(repo, blob)
        manifest = image_manifest(config, layers)
        self.put_manifest(repo, tag, manifest)
        return sha256_digest(manifest)

    def get(self, target: str, headers: dict[str, str] | None = None) -> bytes:
        return self._request("GET", target, headers).expect(200, what=f"GET {target}").body
