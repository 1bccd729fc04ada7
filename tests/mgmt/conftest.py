"""The full app in-process, an admin, and helpers to act as users, robots and sessions."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp

from portside import wiring
from portside.config import Settings, load_settings

ADMIN = ("admin", "Admin12345")
API = "/api/v2.0"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "login_failure_limit(n): failed logins allowed per window in this test")


def basic(username: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    # Tests sign in wrongly on purpose; only the throttling test wants a low limit.
    marker = request.node.get_closest_marker("login_failure_limit")
    limit = marker.args[0] if marker else 50
    return load_settings(data_dir=tmp_path, log_requests=False, admin_password=ADMIN[1], login_failure_limit=limit)


@asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Run the app's startup and shutdown (ASGITransport does not), so engines are disposed."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def receive() -> dict[str, Any]:
        return await inbox.get()

    async def send(message: Any) -> None:
        await outbox.put(message)

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send))  # type: ignore[arg-type]
    await inbox.put({"type": "lifespan.startup"})
    await outbox.get()
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await task


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    await wiring.upgrade_database(settings)
    await wiring.bootstrap(settings)
    app = wiring.build(settings)
    async with lifespan(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portside") as c:
            yield c


class Harbor:
    """Acting as someone against the API: `await h.call("GET", "/projects", who=ADMIN)`."""

    def __init__(self, client: httpx.AsyncClient):
        self.client = client

    async def call(self, method: str, path: str, who: tuple[str, str] | None = ADMIN, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if who is not None:
            headers.update(basic(*who))
        return await self.client.request(method, API + path, headers=headers, **kwargs)

    async def status(self, method: str, path: str, who: tuple[str, str] | None = ADMIN, **kwargs: Any) -> int:
        return (await self.call(method, path, who=who, **kwargs)).status_code

    async def user(self, name: str, password: str = "Passw0rd1") -> tuple[tuple[str, str], int]:
        r = await self.call("POST", "/users", json={"username": name, "password": password, "email": f"{name}@x.io"})
        assert r.status_code == 201, r.text
        return (name, password), int(r.headers["Location"].rsplit("/", 1)[1])

    async def project(self, name: str, public: bool = False, who: tuple[str, str] = ADMIN) -> int:
        r = await self.call(
            "POST", "/projects", who=who, json={"project_name": name, "metadata": {"public": str(public).lower()}}
        )
        assert r.status_code == 201, r.text
        return int(r.headers["Location"].rsplit("/", 1)[1])

    async def member(self, project: str, username: str, role: int) -> None:
        r = await self.call(
            "POST", f"/projects/{project}/members", json={"role_id": role, "member_user": {"username": username}}
        )
        assert r.status_code == 201, r.text

    async def push(self, repo: str, tag: str, who: tuple[str, str] = ADMIN, layer: bytes = b"layer") -> str:
        """Push a tiny image through /v2; returns the manifest digest."""
        import hashlib

        def digest(data: bytes) -> str:
            return "sha256:" + hashlib.sha256(data).hexdigest()

        config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        for blob in (config, layer):
            r = await self.client.post(
                f"/v2/{repo}/blobs/uploads/", params={"digest": digest(blob)}, content=blob, headers=basic(*who)
            )
            assert r.status_code == 201, r.text
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": digest(config),
                    "size": len(config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": digest(layer),
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        r = await self.client.put(
            f"/v2/{repo}/manifests/{tag}",
            content=manifest,
            headers={**basic(*who), "Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 201, r.text
        return digest(manifest)


@pytest.fixture
def harbor(client: httpx.AsyncClient) -> Harbor:
    return Harbor(client)
