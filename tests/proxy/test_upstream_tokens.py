"""Upstream tokens are kept between pulls: a proxy of another Portside fetches one token per
scope from its token service, not one per pull, and a fresh one only once the kept one
expired. Portside takes Basic credentials on /v2 as well; the loopback proxy in front of it
challenges every request without a Bearer token, as Docker Hub does."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api import oci
from tests.mgmt.conftest import Harbor
from tests.proxy.test_pull_through import AUTH, pull_all
from tests.proxy.upstream import FaultyUpstream
from tests.servers import ADMIN_PASSWORD, Portside

pytestmark = pytest.mark.slow


@pytest.fixture
def central(tmp_path: Path) -> Iterator[Portside]:
    # Tokens that expire soon, so the test sees one expire.
    server = Portside(data_dir=tmp_path / "central", open_registry=False, env={"PORTSIDE_TOKEN_TTL_SECONDS": "3"})
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bearer_only(central: Portside) -> Iterator[FaultyUpstream]:
    proxy = FaultyUpstream(central.url).start()
    proxy.challenge = httpx.get(f"{central.url}/v2/lib/app/tags/list").headers["www-authenticate"]
    proxy.mode = "bearer"
    yield proxy
    proxy.stop()


def token_requests(server: Portside) -> int:
    return server.log().count('"path":"/service/token"')


async def test_one_token_per_scope_until_it_expires(
    harbor: Harbor, client: httpx.AsyncClient, central: Portside, bearer_only: FaultyUpstream
) -> None:
    with httpx.Client(base_url=central.url, auth=("admin", ADMIN_PASSWORD)) as c:
        r = c.post("/api/v2.0/projects", json={"project_name": "lib", "metadata": {"public": "true"}})
        assert r.status_code == 201, r.text
        images = [oci.push_image(c, "lib/app", f"v{n}") for n in range(3)]
    before = token_requests(central)
    r = await harbor.call(
        "POST",
        "/registries",
        json={
            "name": "central",
            "type": "docker-registry",
            "url": bearer_only.url,
            "credential": {"type": "basic", "access_key": "admin", "access_secret": ADMIN_PASSWORD},
        },
    )
    assert r.status_code == 201, r.text
    registry_id = int(r.headers["Location"].rsplit("/", 1)[1])
    r = await harbor.call("POST", "/projects", json={"project_name": "edge", "registry_id": registry_id})
    assert r.status_code == 201, r.text
    for n, image in enumerate(images):
        await pull_all(client, "edge/lib/app", f"v{n}", image)
    assert token_requests(central) - before == 1

    time.sleep(3.5)  # the kept token has expired: the next request is refused once, then a new one
    await pull_all(client, "edge/lib/app", "v0", images[0])
    assert token_requests(central) - before == 2


async def test_referrers_are_proxied_and_cached(harbor: Harbor, client: httpx.AsyncClient, central: Portside) -> None:
    """Another Portside answers the referrers API (Distribution 2.8 has none)."""
    with httpx.Client(base_url=central.url, auth=("admin", ADMIN_PASSWORD)) as c:
        r = c.post("/api/v2.0/projects", json={"project_name": "lib", "metadata": {"public": "true"}})
        assert r.status_code == 201, r.text
        image = oci.push_image(c, "lib/app", "v1")
        sbom = oci.artifact_manifest("application/vnd.example.sbom", subject=image)
        oci.push_manifest(c, "lib/app", sbom)
    r = await harbor.call(
        "POST",
        "/registries",
        json={
            "name": "central",
            "type": "harbor",
            "url": central.url,
            "credential": {"type": "basic", "access_key": "admin", "access_secret": ADMIN_PASSWORD},
        },
    )
    assert r.status_code == 201, r.text
    registry_id = int(r.headers["Location"].rsplit("/", 1)[1])
    r = await harbor.call("POST", "/projects", json={"project_name": "edge", "registry_id": registry_id})
    assert r.status_code == 201, r.text
    await pull_all(client, "edge/lib/app", "v1", image)
    listed = await client.get(f"/v2/edge/lib/app/referrers/{image.digest}", headers=AUTH)
    assert listed.status_code == 200, listed.text
    assert [d["digest"] for d in listed.json()["manifests"]] == [sbom.digest]
    central.stop()
    time.sleep(0.5)
    listed = await client.get(f"/v2/edge/lib/app/referrers/{image.digest}", headers=AUTH)
    assert [d["digest"] for d in listed.json()["manifests"]] == [sbom.digest]
    r = await client.get(f"/v2/edge/lib/app/manifests/{sbom.digest}", headers={**AUTH, "Accept": "*/*"})
    assert r.status_code == 200 and r.content == sbom.body
