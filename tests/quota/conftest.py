"""Fixtures of the quota suite: the app in-process (as tests/mgmt runs it) and a small
/v2 client that pushes exactly the blobs and manifests a test names."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from portside import wiring
from portside.config import Settings, load_settings
from tests.mgmt.conftest import ADMIN, Harbor, basic, lifespan

MiB = 1024 * 1024
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "default_storage_limit(n): the setting for new projects in this test")


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def settings(tmp_path: Path, request: pytest.FixtureRequest) -> Settings:
    marker = request.node.get_closest_marker("default_storage_limit")
    return load_settings(
        data_dir=tmp_path,
        log_requests=False,
        admin_password=ADMIN[1],
        login_failure_limit=50,
        default_project_storage_limit=marker.args[0] if marker else -1,
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    await wiring.upgrade_database(settings)
    await wiring.bootstrap(settings)
    app = wiring.build(settings)
    async with lifespan(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portside") as c:
            yield c


@pytest.fixture
def harbor(client: httpx.AsyncClient) -> Harbor:
    return Harbor(client)


@dataclass(frozen=True)
class Pushed:
    digest: str
    size: int


class V2:
    """The admin (or `who`) on /v2: each call is one registry request; answers are returned, not asserted."""

    def __init__(self, client: httpx.AsyncClient, who: tuple[str, str] = ADMIN):
        self.client = client
        self.headers = basic(*who)

    async def blob(self, repo: str, data: bytes) -> httpx.Response:
        """A monolithic upload (POST with the digest)."""
        return await self.client.post(
            f"/v2/{repo}/blobs/uploads/", params={"digest": digest(data)}, content=data, headers=self.headers
        )

    async def chunked_blob(self, repo: str, data: bytes) -> httpx.Response:
        """POST, PATCH, then PUT with the digest: the answer of the PUT."""
        r = await self.client.post(f"/v2/{repo}/blobs/uploads/", headers=self.headers)
        assert r.status_code == 202, r.text
        r = await self.client.patch(r.headers["location"], content=data, headers=self.headers)
        assert r.status_code == 202, r.text
        return await self.client.put(r.headers["location"], params={"digest": digest(data)}, headers=self.headers)

    async def mount(self, repo: str, blob_digest: str, source: str) -> httpx.Response:
        return await self.client.post(
            f"/v2/{repo}/blobs/uploads/", params={"mount": blob_digest, "from": source}, headers=self.headers
        )

    async def manifest(self, repo: str, reference: str, payload: bytes) -> httpx.Response:
        return await self.client.put(
            f"/v2/{repo}/manifests/{reference}",
            content=payload,
            headers={**self.headers, "Content-Type": OCI_MANIFEST},
        )

    async def delete(self, repo: str, what: str, reference: str) -> httpx.Response:
        return await self.client.delete(f"/v2/{repo}/{what}/{reference}", headers=self.headers)

    async def image(self, repo: str, tag: str, layers: list[bytes], config: bytes | None = None) -> Pushed:
        """Push the config and layers (asserting success), then the manifest; returns the manifest."""
        config = config or json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
        for blob in (config, *layers):
            r = await self.blob(repo, blob)
            assert r.status_code == 201, r.text
        payload = image_manifest(config, layers)
        r = await self.manifest(repo, tag, payload)
        assert r.status_code == 201, r.text
        return Pushed(digest(payload), len(payload))


def image_manifest(config: bytes, layers: list[bytes]) -> bytes:
    def descriptor(media_type: str, data: bytes) -> dict[str, Any]:
        return {"mediaType": media_type, "digest": digest(data), "size": len(data)}

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": descriptor("application/vnd.oci.image.config.v1+json", config),
            "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", layer) for layer in layers],
        }
    ).encode()


@pytest.fixture
def v2(client: httpx.AsyncClient) -> V2:
    return V2(client)


async def quota_of(harbor: Harbor, project: str) -> dict[str, Any]:
    """The project's quota as /quotas answers it (found by reference_id)."""
    r = await harbor.call("GET", f"/projects/{project}")
    assert r.status_code == 200, r.text
    project_id = r.json()["project_id"]
    r = await harbor.call("GET", f"/quotas/{project_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def used(harbor: Harbor, project: str) -> int:
    return int((await quota_of(harbor, project))["used"]["storage"])


async def set_limit(harbor: Harbor, project: str, limit: int) -> None:
    quota = await quota_of(harbor, project)
    r = await harbor.call("PUT", f"/quotas/{quota['id']}", json={"hard": {"storage": limit}})
    assert r.status_code == 200, r.text
