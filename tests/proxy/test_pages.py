"""The project pages and the pull-through cache: a system administrator chooses the registry
a new project proxies (one select, offered to no one else), and the project's summary says
which registry it caches."""

from __future__ import annotations

import httpx

from tests.mgmt.conftest import ADMIN, Harbor
from tests.proxy.test_pull_through import pull_all, push
from tests.proxy.upstream import FaultyUpstream
from tests.servers import Distribution


async def sign_in(client: httpx.AsyncClient, who: tuple[str, str]) -> str:
    r = await client.post("/c/login", data={"principal": who[0], "password": who[1]})
    assert r.status_code == 200, r.text
    return r.headers["X-Harbor-CSRF-Token"]


async def test_a_proxy_project_made_and_shown_in_the_pages(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    image = push(upstream_registry, "lib/app", "v1")
    r = await harbor.call("POST", "/registries", json={"name": "central", "type": "docker-registry", "url": faulty.url})
    registry_id = r.headers["Location"].rsplit("/", 1)[1]
    someone, _ = await harbor.user("someone")

    csrf = await sign_in(client, someone)
    page = (await client.get("/projects")).text
    assert 'name="registry_id"' not in page  # only system administrators make proxy projects
    client.cookies.clear()

    csrf = await sign_in(client, ADMIN)
    page = (await client.get("/projects")).text
    assert 'name="registry_id"' in page and f'<option value="{registry_id}">central ({faulty.url})' in page
    r = await client.post(
        "/projects", data={"name": "cache", "public": "on", "registry_id": registry_id, "csrf_token": csrf}
    )
    assert r.status_code in (302, 303), r.text
    await pull_all(client, "cache/lib/app", "v1", image)
    page = (await client.get("/projects/cache")).text
    assert "A proxy cache of <strong>central</strong>" in page and "pushes are refused" in page
    assert "fetched: 3" in page  # the manifest and its two blobs, each once
