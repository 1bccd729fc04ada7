"""A registry without the referrers API, in memory, for the clients' fallback: the
Distribution API's blobs and manifests by tag or digest, no auth, no `OCI-Subject`, and
404 for `/v2/<name>/referrers/<digest>`, as registries from before OCI 1.1 answer."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from tests.scan.stub_adapters import running

__all__ = ["PlainRegistry", "plain_registry"]

_ROUTE = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs|referrers)/(?P<reference>[^/]+)$")
_UPLOAD = re.compile(r"^/v2/(?P<name>.+?)/blobs/uploads/(?P<id>[^/]*)$")


@dataclass
class PlainRegistry:
    url: str
    blobs: dict[str, bytes] = field(default_factory=dict)
    # (repository, tag or digest) -> (media type, body)
    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    referrer_requests: int = 0

    @property
    def host(self) -> str:
        return self.url.removeprefix("http://")

    def put_manifest(self, repository: str, reference: str, media_type: str, body: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        self.manifests[(repository, digest)] = (media_type, body)
        self.manifests[(repository, reference)] = (media_type, body)
        return digest

    def manifest_json(self, repository: str, reference: str) -> dict[str, object]:
        document: dict[str, object] = json.loads(self.manifests[(repository, reference)][1])
        return document


def _handler(registry: PlainRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _read(self) -> bytes:
            return self.rfile.read(int(self.headers.get("content-length") or 0))

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = urlsplit(self.path).path
            if path == "/v2/":
                return self._answer(200, b"{}")
            route = _ROUTE.match(path)
            if route is None:
                return self._answer(404)
            name, kind, reference = route["name"], route["kind"], route["reference"]
            if kind == "referrers":
                registry.referrer_requests += 1
                return self._answer(404, b'{"errors":[{"code":"NOT_FOUND"}]}')
            if kind == "blobs":
                data = registry.blobs.get(reference)
                if data is None:
                    return self._answer(404)
                return self._answer(200, data, {"Docker-Content-Digest": reference})
            found = registry.manifests.get((name, reference))
            if found is None:
                return self._answer(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            media_type, body = found
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            return self._answer(200, body, {"Content-Type": media_type, "Docker-Content-Digest": digest})

        do_HEAD = do_GET  # noqa: N815

        def do_POST(self) -> None:  # noqa: N802
            upload = _UPLOAD.match(urlsplit(self.path).path)
            if upload is None or upload["id"]:
                return self._answer(404)
            self._read()
            location = f"/v2/{upload['name']}/blobs/uploads/{uuid.uuid4().hex}"
            return self._answer(202, headers={"Location": location})

        def do_PUT(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            body = self._read()
            upload = _UPLOAD.match(parts.path)
            if upload is not None:
                digest = parse_qs(parts.query).get("digest", [""])[0]
                if digest != "sha256:" + hashlib.sha256(body).hexdigest():
                    return self._answer(400, b'{"errors":[{"code":"DIGEST_INVALID"}]}')
                registry.blobs[digest] = body
                return self._answer(201, headers={"Docker-Content-Digest": digest})
            route = _ROUTE.match(parts.path)
            if route is None or route["kind"] != "manifests":
                return self._answer(404)
            media_type = self.headers.get("content-type", "")
            digest = registry.put_manifest(route["name"], route["reference"], media_type, body)
            return self._answer(201, headers={"Docker-Content-Digest": digest})

    return Handler


@contextmanager
def plain_registry() -> Iterator[PlainRegistry]:
    """A PlainRegistry serving on a free port of 127.0.0.1."""
    registry = PlainRegistry(url="")
    with running(_handler(registry)) as url:
        registry.url = url
        yield registry
