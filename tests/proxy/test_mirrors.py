"""Requests that name no proxy project, as daemons send them to a mirror: containerd's
`?ns=docker.io` and a request to the host docker's `registry-mirrors` names are served by the
proxy project configured for them; other requests are left as they are."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from portside import wiring
from portside.config import Settings
from tests.mgmt.conftest import Harbor, lifespan
from tests.proxy.test_pull_through import AUTH, proxy_project, push
from tests.proxy.upstream import FaultyUpstream
from tests.servers import Distribution


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"mirror_namespaces": {"docker.io": "cache"}, "mirror_hosts": {"hub.test": "cache"}}
    )


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    await wiring.upgrade_database(settings)
    await wiring.bootstrap(settings)
    app = wiring.build(settings)
    async with lifespan(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portside") as c:
            yield c


async def test_mirror_requests_reach_the_proxy_project(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    image = push(upstream_registry, "library/tool", "v1")
    await proxy_project(harbor, faulty.url)
    accept = {"Accept": "*/*"}
    r = await client.get("/v2/library/tool/manifests/v1", params={"ns": "docker.io"}, headers=accept)
    assert r.status_code == 200 and r.content == image.body
    r = await client.get(f"/v2/library/tool/blobs/{image.blobs[1].digest}", params={"ns": "docker.io"})
    assert r.status_code == 200 and r.content == image.blobs[1].data
    r = await client.get("/v2/library/tool/manifests/v1", headers={**accept, "Host": "hub.test"})
    assert r.status_code == 200 and r.content == image.body
    # Another namespace, another host: Portside's own `library`, which holds no such image.
    r = await client.get("/v2/library/tool/manifests/v1", params={"ns": "quay.io"}, headers={**accept, **AUTH})
    assert r.status_code == 404
    assert (await client.get("/v2/", headers={"Host": "hub.test"})).status_code in (200, 401)
