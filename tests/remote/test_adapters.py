"""The registry types' rules, offline. Docker Hub cannot be reached here (no network), so its
adapter is checked against Docker Hub's published API semantics only: the URL people give
is stored as https://hub.docker.com, its Distribution API is registry-1.docker.io, a
one-component name is `library/<name>`, and its token flow (a 401 naming the realm
auth.docker.io/token and the service registry.docker.io; Basic credentials exchanged for a
token there, refused with 401 when wrong) is played by a loopback server that answers as
Docker Hub documents, so the adapter's ping follows it as it would the real one."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest

from portside.remote import RemoteUnauthorized
from portside.remote.adapters import Target, basic_authorization, default_adapters, tls_verify
from portside.remote.adapters.base import standard_url
from portside.remote.adapters.docker_hub import HUB_URL, REGISTRY_URL, TOKEN_SERVICE, DockerHubAdapter
from tests.scan.stub_adapters import running

HUB = DockerHubAdapter()
GOOD = "Basic " + base64.b64encode(b"hubuser:hub-token").decode()


def test_docker_hub_urls_and_names() -> None:
    for given in ("", "docker.io", "https://hub.docker.com", "https://index.docker.io/", "registry-1.docker.io"):
        assert HUB.normalise(given) == HUB_URL
    with pytest.raises(ValueError, match="hub.docker.com"):
        HUB.normalise("https://quay.io")
    assert HUB.registry_url(HUB_URL) == REGISTRY_URL == "https://registry-1.docker.io"
    assert HUB.repository("busybox") == "library/busybox"
    assert HUB.repository("library/busybox") == "library/busybox"
    assert HUB.repository("bitnami/redis") == "bitnami/redis"
    assert HUB.provider().endpoints == (("hub.docker.com", HUB_URL),)
    assert not HUB.info().copy_by_chunk


def test_the_types_offered() -> None:
    adapters = default_adapters()
    assert list(adapters) == ["harbor", "docker-hub", "docker-registry"]
    for adapter in adapters.values():
        assert adapter.info().type == adapter.type
        assert {"manual", "scheduled"} <= set(adapter.info().triggers)
    # Other types keep the name as it is and their own URL.
    plain = adapters["docker-registry"]
    assert plain.repository("busybox") == "busybox"
    assert plain.normalise("http://127.0.0.1:5000/") == "http://127.0.0.1:5000"


def test_urls_and_credentials() -> None:
    assert standard_url("https://registry.example/v2-mirror/") == "https://registry.example/v2-mirror"
    for bad in ("ftp://x", "registry.example", "https://user:pw@registry.example", "https://r.example/?a=1"):
        with pytest.raises(ValueError):
            standard_url(bad)
    assert basic_authorization("", "secret") is None
    assert basic_authorization("u", "p") == "Basic " + base64.b64encode(b"u:p").decode()
    header = basic_authorization("u", "not-in-logs")
    assert header is not None and header.split()[1] not in repr(Target("https://r.example", header))


def test_tls_is_skipped_only_when_insecure() -> None:
    assert tls_verify(True, None) is False
    assert tls_verify(False, None) is True
    assert tls_verify(False, "  ") is True
    with pytest.raises(ValueError, match="ca_certificate"):
        tls_verify(False, "-----BEGIN CERTIFICATE-----\nnonsense\n-----END CERTIFICATE-----\n")
    # A real CA certificate gives a context trusting it: tests/mgmt/test_registries_live.py.


class _DockerHub(BaseHTTPRequestHandler):
    """Docker Hub's registry and token service, as their documents describe them."""

    def log_message(self, *_: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        parts = urlsplit(self.path)
        if parts.path == "/v2/":
            if self.headers.get("Authorization") == "Bearer hub-token-for-you":
                self._answer(200, {})
                return
            realm = f"http://{self.headers['Host']}/token"
            self.send_response(401)
            self.send_header("WWW-Authenticate", f'Bearer realm="{realm}",service="{TOKEN_SERVICE}"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts.path == "/token":
            query = parse_qs(parts.query)
            sent = self.headers.get("Authorization")
            if query.get("service") != [TOKEN_SERVICE] or (sent is not None and sent != GOOD):
                self._answer(401, {"details": "incorrect username or password"})
                return
            self._answer(200, {"token": "hub-token-for-you", "expires_in": 300})
            return
        self._answer(404, {})

    def _answer(self, status: int, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture(scope="module")
def hub() -> Iterator[str]:
    with running(_DockerHub) as url:
        yield url


def test_docker_hub_ping_follows_its_token_flow(hub: str) -> None:
    anyio.run(HUB.ping, Target(hub))  # anonymous: a token for no scope, then /v2/
    anyio.run(HUB.ping, Target(hub, GOOD))
    wrong = "Basic " + base64.b64encode(b"hubuser:wrong").decode()
    with pytest.raises(RemoteUnauthorized, match="refused"):
        anyio.run(HUB.ping, Target(hub, wrong))
