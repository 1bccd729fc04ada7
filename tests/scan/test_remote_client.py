"""The Distribution-API client (`portside.remote`) against real registries: CNCF Distribution
(no auth), and Portside with access control (its Bearer challenge and token service)."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest

from portside.remote import RemoteNotFound, RemoteRegistry, RemoteUnauthorized, RemoteUnreachable
from tests.api import oci
from tests.scan.scanning import vulnerable_image
from tests.servers import ADMIN_PASSWORD, Distribution, Portside, free_port

REPOSITORY = "team/vulnerable"
BASIC = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
IMAGE = vulnerable_image()


@pytest.fixture(scope="module")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = Distribution(data_dir=tmp_path_factory.mktemp("distribution")).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            oci.push_manifest(client, REPOSITORY, IMAGE)
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def portside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = Portside(data_dir=tmp_path_factory.mktemp("portside"), open_registry=False).start()
    try:
        with httpx.Client(base_url=server.url, auth=("admin", ADMIN_PASSWORD)) as client:
            created = client.post("/api/v2.0/projects", json={"project_name": "team"})  # private
            assert created.status_code == 201, created.text
            oci.push_manifest(client, REPOSITORY, IMAGE)
        yield server.url
    finally:
        server.stop()


async def _pull(url: str, authorization: str | None) -> tuple[bytes, list[bytes]]:
    async with RemoteRegistry(url, authorization) as registry:
        manifest = await registry.manifest(REPOSITORY, IMAGE.digest)
        blobs = []
        for blob in IMAGE.blobs:
            blobs.append(b"".join([chunk async for chunk in registry.blob(REPOSITORY, blob.digest)]))
        return manifest.body, blobs


def _check_pulled(url: str, authorization: str | None) -> None:
    body, blobs = anyio.run(_pull, url, authorization)
    assert hashlib.sha256(body).hexdigest() == IMAGE.digest.removeprefix("sha256:")
    assert blobs == [blob.data for blob in IMAGE.blobs]


def test_pulls_from_distribution_without_credentials(distribution: str) -> None:
    _check_pulled(distribution, None)


def test_pulls_from_portside_with_basic_credentials(portside: str) -> None:
    _check_pulled(portside, BASIC)


def test_anonymous_pull_follows_the_challenge_and_is_refused(portside: str) -> None:
    # Anonymous: Portside challenges with `Bearer realm=…`, the client fetches an anonymous
    # token from the realm, and the retry with it is refused (the repository is private).
    challenged = httpx.get(f"{portside}/v2/{REPOSITORY}/manifests/{IMAGE.digest}")
    assert challenged.status_code == 401
    assert challenged.headers["www-authenticate"].startswith("Bearer realm=")
    with pytest.raises(RemoteUnauthorized):
        anyio.run(_pull, portside, None)


def test_wrong_credentials_are_unauthorized(portside: str) -> None:
    wrong = "Basic " + base64.b64encode(b"admin:wrong").decode()
    with pytest.raises(RemoteUnauthorized):
        anyio.run(_pull, portside, wrong)


def test_unknown_manifest_is_not_found(distribution: str) -> None:
    async def fetch() -> None:
        async with RemoteRegistry(distribution) as registry:
            await registry.manifest(REPOSITORY, "sha256:" + "0" * 64)

    with pytest.raises(RemoteNotFound):
        anyio.run(fetch)


def test_nothing_listening_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(RemoteUnreachable):
        anyio.run(_pull, f"http://127.0.0.1:{free_port()}", None)
