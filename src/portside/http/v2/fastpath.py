"""The hottest `/v2` reads answered straight from ASGI: manifest GET and HEAD, blob HEAD.

Pull-heavy clients (a fleet starting containers, a CI cache) send mostly these. They go
through the same services, access check, audit and error rendering as the routed
endpoints, but without the router's pattern matching and request objects, which cost
as much as the cached lookup itself. Every other request, and any path these do not
match exactly, goes to the full application.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import UTC, datetime

from starlette.types import ASGIApp, Receive, Scope, Send

from portside.auth.access import Access, Credentials
from portside.errors import RegistryError
from portside.http.services import Services
from portside.http.v2.blobs import blob_headers, stat_local
from portside.http.v2.common import accepted_media_types, credentials, render_error
from portside.oci.digest import Digest
from portside.oci.reference import check_name
from portside.registry.manifests import no_such_reference, parse_reference
from portside.registry.trail import RegistryEvent

__all__ = ["FastReads"]

log = logging.getLogger("portside.http")

_MANIFESTS = "/manifests/"
_BLOBS = "/blobs/"
_OCTET_STREAM = b"application/octet-stream"

# status, headers, body
_Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


def _split(path: str, marker: str) -> tuple[str, str] | None:
    """(name, last segment) of /v2/<name><marker><segment>, as the router would split it."""
    name, found, segment = path[4:].rpartition(marker)
    if not found or not name or not segment or "/" in segment:
        return None
    return name, segment


def _accept(scope: Scope) -> list[str]:
    return accepted_media_types(value.decode("latin-1") for key, value in scope["headers"] if key == b"accept")


def _credentials(scope: Scope) -> Credentials:
    client = scope["client"][0] if scope.get("client") else ""
    authorization = next((value for key, value in scope["headers"] if key == b"authorization"), None)
    return credentials(None if authorization is None else authorization.decode("latin-1"), client)


class FastReads:
    def __init__(self, app: ASGIApp, services: Services):
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and scope["path"].startswith("/v2/"):
            path: str = scope["path"]
            head = scope["method"] == "HEAD"
            if (parts := _split(path, _MANIFESTS)) is not None:
                await self._answer(scope, receive, send, head, self._manifest(scope, *parts, head))
                return
            if (
                head
                and (parts := _split(path, _BLOBS)) is not None
                and Digest.is_digest(parts[1])
                # A ranged HEAD answers 206 with the range's length: the routed endpoint's work.
                and not any(key == b"range" for key, _ in scope["headers"])
            ):
                await self._answer(scope, receive, send, head, self._blob_head(scope, *parts))
                return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send, head: bool, work: Awaitable[_Answer]) -> None:
        try:
            status, headers, body = await work
        except RegistryError as error:
            await render_error(error, head)(scope, receive, send)
            return
        except Exception:
            log.exception("unhandled error in %s %s", scope["method"], scope["path"])
            await render_error(RegistryError("internal server error"), head)(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _manifest(self, scope: Scope, name: str, reference_text: str, head: bool) -> _Answer:
        # In the order of the routed endpoint: name, access, then the reference itself.
        check_name(name)
        credentials = _credentials(scope)
        grant = await self.services.authorizer.authorize(credentials, [Access.pull(name)])
        try:  # costs nothing when nothing is raised: a valid reference does no more work
            reference = parse_reference(reference_text)
        except RegistryError:
            raise no_such_reference(reference_text) from None
        manifests, proxy = self.services.manifests, self.services.proxy
        proxied = await proxy.proxied(name) if proxy is not None else None
        if proxied is not None:
            assert proxy is not None
            record = await proxy.manifest(proxied, reference, _accept(scope))
        else:
            record = await manifests.get(name, reference, _accept(scope))
        if not head and manifests.pull_gate is not None:
            await manifests.pull_gate.check(grant, name if proxied is None else proxied.local, record)
        digest = str(record.digest).encode()
        headers = [
            (b"content-type", record.media_type.encode()),
            (b"docker-content-digest", digest),
            (b"etag", b'"' + digest + b'"'),
            (b"content-length", str(len(record.payload)).encode()),
        ]
        if not head and self.services.trail is not None:
            self.services.trail.emit(
                RegistryEvent(
                    "pull",
                    "artifact",
                    name,
                    reference_text,
                    record.digest,
                    grant.subject or "anonymous",
                    credentials.client,
                    datetime.now(UTC),
                )
            )
        return 200, headers, b"" if head else record.payload

    async def _blob_head(self, scope: Scope, name: str, digest_text: str) -> _Answer:
        check_name(name)
        await self.services.authorizer.authorize(_credentials(scope), [Access.pull(name)])
        digest = Digest.parse(digest_text)
        proxy = self.services.proxy
        proxied = await proxy.proxied(name) if proxy is not None else None
        found = await (
            proxy.blob_size(proxied, digest) if proxy and proxied else self.services.blobs.open(name, digest)
        )
        if isinstance(found, int):  # not cached: the size the upstream gives
            size = found
        else:
            blob = found
            size = blob.size if blob.local_path is None else stat_local(blob.local_path, digest).st_size
        headers = [(b"content-type", _OCTET_STREAM), (b"content-length", str(size).encode())]
        headers += [(key.encode(), value.encode()) for key, value in blob_headers(digest).items()]
        return 200, headers, b""
