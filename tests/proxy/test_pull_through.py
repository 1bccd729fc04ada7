"""Pulls through a proxy project whose upstream is a real CNCF Distribution registry, with
httpx: by tag and by digest, the upstream failing in every way it can, one download per
blob, a corrupted blob never kept, indexes kept before their children, pushes refused."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

import httpx
import pytest

from tests.api import oci
from tests.mgmt.conftest import ADMIN, Harbor, basic
from tests.proxy.upstream import FaultyUpstream
from tests.servers import Distribution

AUTH = basic(*ADMIN)


def push(upstream: Distribution, repo: str, tag: str, **kwargs: Any) -> oci.Manifest:
    with httpx.Client(base_url=upstream.url) as c:
        return oci.push_image(c, repo, tag, **kwargs)


async def proxy_project(harbor: Harbor, url: str, name: str = "cache", **metadata: str) -> int:
    r = await harbor.call(
        "POST", "/registries", json={"name": f"{name}-upstream", "type": "docker-registry", "url": url}
    )
    assert r.status_code == 201, r.text
    registry_id = int(r.headers["Location"].rsplit("/", 1)[1])
    r = await harbor.call(
        "POST",
        "/projects",
        json={"project_name": name, "registry_id": registry_id, "metadata": {"public": "true", **metadata}},
    )
    assert r.status_code == 201, r.text
    return registry_id


async def pull(client: httpx.AsyncClient, repo: str, reference: str) -> httpx.Response:
    return await client.get(f"/v2/{repo}/manifests/{reference}", headers={**AUTH, "Accept": "*/*"})


async def blob(client: httpx.AsyncClient, repo: str, digest: str) -> httpx.Response:
    return await client.get(f"/v2/{repo}/blobs/{digest}", headers=AUTH)


async def pull_all(client: httpx.AsyncClient, repo: str, tag: str, image: oci.Manifest) -> None:
    r = await pull(client, repo, tag)
    assert r.status_code == 200, r.text
    assert r.content == image.body and r.headers["docker-content-digest"] == image.digest
    for b in image.blobs:
        r = await blob(client, repo, b.digest)
        assert r.status_code == 200, r.text
        assert r.content == b.data


async def settled(harbor: Harbor, project: str, repo: str, digest: str, timeout: float = 10.0) -> None:
    """Until the cache has stored the manifest (its blobs are in, it is an artifact here)."""
    deadline = time.monotonic() + timeout
    path = f"/projects/{project}/repositories/{repo.replace('/', '%252F')}/artifacts/{digest}"
    while time.monotonic() < deadline:
        if (await harbor.call("GET", path)).status_code == 200:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{repo}@{digest} was not kept within {timeout}s")


async def test_pull_by_tag_then_by_digest_with_no_upstream_request(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    image = push(upstream_registry, "lib/app", "v1")
    await proxy_project(harbor, faulty.url)
    await pull_all(client, "cache/lib/app", "v1", image)
    await settled(harbor, "cache", "lib/app", image.digest)
    # Each blob went upstream once: the client's GET and the cache's own shared one download.
    for b in image.blobs:
        assert faulty.count("GET", f"/blobs/{b.digest}") == 1

    before = len(faulty.requests)
    r = await pull(client, "cache/lib/app", image.digest)
    assert r.status_code == 200 and r.content == image.body
    for b in image.blobs:
        r = await blob(client, "cache/lib/app", b.digest)
        assert r.status_code == 200 and r.content == b.data
        r = await client.head(f"/v2/cache/lib/app/blobs/{b.digest}", headers=AUTH)
        assert r.status_code == 200 and r.headers["content-length"] == str(len(b.data))
    assert len(faulty.requests) == before, faulty.requests[before:]

    # By tag: one HEAD (manifest_check_interval 0 asks every time), the cached copy served.
    r = await pull(client, "cache/lib/app", "v1")
    assert r.status_code == 200 and r.content == image.body
    assert faulty.requests[before:] == [("HEAD", "/v2/lib/app/manifests/v1")]


async def test_manifest_check_interval_spares_the_upstream(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    image = push(upstream_registry, "lib/app", "v1")
    await proxy_project(harbor, faulty.url, manifest_check_interval="3600")
    await pull_all(client, "cache/lib/app", "v1", image)
    await settled(harbor, "cache", "lib/app", image.digest)
    before = len(faulty.requests)
    for _ in range(5):
        assert (await pull(client, "cache/lib/app", "v1")).status_code == 200
    assert len(faulty.requests) == before


async def test_a_moved_tag_is_fetched_again(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    first = push(upstream_registry, "lib/app", "v1")
    await proxy_project(harbor, faulty.url)
    await pull_all(client, "cache/lib/app", "v1", first)
    await settled(harbor, "cache", "lib/app", first.digest)
    second = push(upstream_registry, "lib/app", "v1")
    await pull_all(client, "cache/lib/app", "v1", second)
    await settled(harbor, "cache", "lib/app", second.digest)
    faulty.mode = "500"
    r = await pull(client, "cache/lib/app", "v1")
    assert r.status_code == 200 and r.content == second.body


@pytest.mark.parametrize("failure", ["down", "429", "500", "hang", "401"])
async def test_the_cache_is_served_whenever_the_upstream_fails(
    failure: str, harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    image = push(upstream_registry, "lib/app", "v1")
    await proxy_project(harbor, faulty.url)
    await pull_all(client, "cache/lib/app", "v1", image)
    await settled(harbor, "cache", "lib/app", image.digest)
    if failure == "down":
        upstream_registry.stop()
    else:
        faulty.mode = failure
    await pull_all(client, "cache/lib/app", "v1", image)
    r = await pull(client, "cache/lib/app", image.digest)
    assert r.status_code == 200 and r.content == image.body
    # What nothing cached answers says why, and is no success.
    r = await pull(client, "cache/lib/app", "v2")
    expected = {"down": 503, "429": 429, "500": 503, "hang": 503, "401": 503}[failure]
    assert r.status_code == expected, r.text
    if expected == 429:
        assert r.headers["retry-after"]


async def test_a_tag_deleted_upstream_is_still_served(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    image = push(upstream_registry, "lib/app", "v1")
    await proxy_project(harbor, faulty.url)
    await pull_all(client, "cache/lib/app", "v1", image)
    await settled(harbor, "cache", "lib/app", image.digest)
    with httpx.Client(base_url=upstream_registry.url) as c:
        assert c.delete(f"/v2/lib/app/manifests/{image.digest}").status_code == 202
        assert c.get("/v2/lib/app/manifests/v1").status_code == 404
    await pull_all(client, "cache/lib/app", "v1", image)

    # Harbor's option off: the tag is as gone as upstream.
    r = await harbor.call("PUT", "/projects/cache", json={"metadata": {"proxy_cache_local_on_not_found": "false"}})
    assert r.status_code == 200, r.text
    r = await pull(client, "cache/lib/app", "v1")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"


async def test_credentials_revoked_upstream(harbor: Harbor, client: httpx.AsyncClient, tmp_path: Any) -> None:
    """A real credential on a Distribution with htpasswd auth, then the account removed."""
    import subprocess

    htpasswd = tmp_path / "htpasswd"
    line = subprocess.run(["htpasswd", "-Bbn", "puller", "Pull-Secret-1"], capture_output=True, check=True).stdout
    htpasswd.write_bytes(line)

    class Guarded(Distribution):
        def command(self) -> list[str]:
            command = super().command()
            config = self.data_dir.parent / f"distribution-{self.port}.yml"
            config.write_text(config.read_text() + f"auth:\n  htpasswd:\n    realm: upstream\n    path: {htpasswd}\n")
            return command

    server = Guarded(data_dir=tmp_path / "guarded").start()
    try:
        with httpx.Client(base_url=server.url, auth=("puller", "Pull-Secret-1")) as c:
            image = oci.push_image(c, "lib/app", "v1")
        r = await harbor.call(
            "POST",
            "/registries",
            json={
                "name": "guarded",
                "type": "docker-registry",
                "url": server.url,
                "credential": {"type": "basic", "access_key": "puller", "access_secret": "Pull-Secret-1"},
            },
        )
        assert r.status_code == 201, r.text
        registry_id = int(r.headers["Location"].rsplit("/", 1)[1])
        r = await harbor.call("POST", "/projects", json={"project_name": "cache", "registry_id": registry_id})
        assert r.status_code == 201, r.text
        await pull_all(client, "cache/lib/app", "v1", image)
        await settled(harbor, "cache", "lib/app", image.digest)
        htpasswd.write_text("")  # the account is gone; Distribution reads the file again
        server.restart()
        with httpx.Client(base_url=server.url, auth=("puller", "Pull-Secret-1")) as c:
            assert c.get("/v2/").status_code == 401
        await pull_all(client, "cache/lib/app", "v1", image)
    finally:
        server.stop()


async def test_concurrent_pulls_of_one_blob_share_one_download(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    big = oci.layer(4 << 20)
    image = push(upstream_registry, "lib/big", "v1", layers=[big])
    await proxy_project(harbor, faulty.url)
    faulty.slow_seconds = 0.01  # 64 chunks: long enough for every pull to find it running
    answers = await asyncio.gather(*(blob(client, "cache/lib/big", big.digest) for _ in range(6)))
    assert all(r.status_code == 200 and r.content == big.data for r in answers)
    assert faulty.count("GET", f"/blobs/{big.digest}") == 1
    faulty.slow_seconds = 0
    await pull_all(client, "cache/lib/big", "v1", image)
    await settled(harbor, "cache", "lib/big", image.digest)
    assert faulty.count("GET", f"/blobs/{big.digest}") == 1


async def test_a_corrupted_blob_is_never_served_whole_nor_kept(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    layer = oci.layer(300_000)
    push(upstream_registry, "lib/app", "v1", layers=[layer])
    await proxy_project(harbor, faulty.url)
    faulty.corrupt.add(layer.digest)
    got: bytes | None = None
    try:
        r = await blob(client, "cache/lib/app", layer.digest)
        got = r.content
    except Exception:
        got = None  # the transfer broke off
    assert got is None or hashlib.sha256(got).hexdigest() != layer.digest.split(":")[1] and len(got) < layer.size
    # Nothing was kept: with the upstream gone, the blob is not here.
    faulty.mode = "500"
    r = await blob(client, "cache/lib/app", layer.digest)
    assert r.status_code == 503
    # Sound bytes again: fetched anew, served, kept.
    faulty.mode, faulty.corrupt = "pass", set()
    r = await blob(client, "cache/lib/app", layer.digest)
    assert r.status_code == 200 and r.content == layer.data


async def test_an_index_is_kept_with_the_children_fetched_so_far(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    amd64, arm64 = oci.image_manifest(), oci.image_manifest(oci.config_blob(platform=("linux", "arm64")))
    index = oci.index_manifest([amd64, arm64])
    with httpx.Client(base_url=upstream_registry.url) as c:
        oci.push_manifest(c, "lib/multi", index, "v1")
    await proxy_project(harbor, faulty.url)
    r = await pull(client, "cache/lib/multi", "v1")
    assert r.status_code == 200 and r.content == index.body
    await pull_all(client, "cache/lib/multi", amd64.digest, amd64)
    await settled(harbor, "cache", "lib/multi", index.digest)
    await settled(harbor, "cache", "lib/multi", amd64.digest)
    upstream_registry.stop()
    r = await pull(client, "cache/lib/multi", "v1")
    assert r.status_code == 200 and r.content == index.body
    await pull_all(client, "cache/lib/multi", amd64.digest, amd64)
    r = await pull(client, "cache/lib/multi", arm64.digest)
    assert r.status_code == 503  # never fetched, and the upstream is gone


async def test_pushes_and_deletes_are_denied(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    image = push(upstream_registry, "lib/app", "v1")
    await proxy_project(harbor, faulty.url)
    await pull_all(client, "cache/lib/app", "v1", image)
    answers = [
        await client.post("/v2/cache/lib/app/blobs/uploads/", headers=AUTH),
        await client.put(
            "/v2/cache/lib/app/manifests/v2",
            content=image.body,
            headers={**AUTH, "Content-Type": image.media_type},
        ),
        await client.delete(f"/v2/cache/lib/app/manifests/{image.digest}", headers=AUTH),
        await client.delete(f"/v2/cache/lib/app/blobs/{image.blobs[0].digest}", headers=AUTH),
    ]
    for r in answers:
        assert r.status_code == 403, r.text
        assert r.json()["errors"][0]["code"] == "DENIED"
        assert "proxy project" in r.json()["errors"][0]["message"]


async def test_only_system_administrators_make_proxy_projects(
    harbor: Harbor, client: httpx.AsyncClient, faulty: FaultyUpstream
) -> None:
    r = await harbor.call("POST", "/registries", json={"name": "up", "type": "docker-registry", "url": faulty.url})
    registry_id = int(r.headers["Location"].rsplit("/", 1)[1])
    someone, _ = await harbor.user("someone")
    r = await harbor.call("POST", "/projects", who=someone, json={"project_name": "mine", "registry_id": registry_id})
    assert r.status_code == 403
    r = await harbor.call("POST", "/projects", json={"project_name": "nope", "registry_id": 999})
    assert r.status_code == 400
    r = await harbor.call("POST", "/projects", json={"project_name": "cache", "registry_id": registry_id})
    assert r.status_code == 201
    body = (await harbor.call("GET", "/projects/cache")).json()
    assert body["registry_id"] == registry_id and "registry_id" not in body["metadata"]
    r = await harbor.call("PUT", "/projects/cache", json={"metadata": {"registry_id": "1"}})
    assert r.status_code == 400
    r = await harbor.call("PUT", "/projects/cache", json={"metadata": {"manifest_check_interval": "soon"}})
    assert r.status_code == 400
    # A registry a proxy project uses stays.
    assert await harbor.status("DELETE", f"/registries/{registry_id}") == 412


async def test_requests_beyond_the_upstream_limit_get_429(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    images = [push(upstream_registry, "lib/app", f"v{n}") for n in range(4)]
    await proxy_project(harbor, faulty.url, max_upstream_rps="1")
    answers = [await pull(client, "cache/lib/app", f"v{n}") for n in range(4)]
    assert answers[0].status_code == 200 and answers[0].content == images[0].body
    limited = [r for r in answers if r.status_code == 429]
    assert limited and all(int(r.headers["retry-after"]) >= 1 for r in limited)
    assert "TOOMANYREQUESTS" in limited[0].text


async def test_failover_urls_are_tried_in_order(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    from tests.servers import free_port

    image = push(upstream_registry, "lib/app", "v1")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    registry_id = await proxy_project(harbor, dead)
    r = await harbor.call("PUT", f"/registries/{registry_id}/failover_urls", json={"urls": [faulty.url]})
    assert r.status_code == 200 and r.json() == {"urls": [faulty.url]}, r.text
    assert (await harbor.call("GET", f"/registries/{registry_id}/failover_urls")).json()["urls"] == [faulty.url]
    someone, _ = await harbor.user("someone")
    assert await harbor.status("PUT", f"/registries/{registry_id}/failover_urls", who=someone, json={"urls": []}) == 403
    r = await harbor.call("PUT", f"/registries/{registry_id}/failover_urls", json={"urls": ["ftp://x"]})
    assert r.status_code == 400
    await pull_all(client, "cache/lib/app", "v1", image)
    assert faulty.count("GET", "/manifests/v1") == 1


async def test_docker_hub_official_images_are_library(harbor: Harbor, client: httpx.AsyncClient) -> None:
    """No network here: the name the upstream is asked for is in what the failure says."""
    r = await harbor.call("POST", "/registries", json={"name": "hub", "type": "docker-hub", "url": "docker.io"})
    assert r.status_code == 201, r.text
    registry_id = int(r.headers["Location"].rsplit("/", 1)[1])
    r = await harbor.call("POST", "/projects", json={"project_name": "hub", "registry_id": registry_id})
    assert r.status_code == 201, r.text
    for name in ("hub/busybox", "hub/library/busybox"):
        r = await pull(client, name, "latest")
        assert r.status_code in (503, 429), r.text
        assert "of library/busybox is not cached" in r.json()["errors"][0]["message"]
    r = await pull(client, "hub/someone/tool", "latest")
    assert "of someone/tool is not cached" in r.json()["errors"][0]["message"]


async def test_connections_beyond_max_upstream_conn_get_429(
    harbor: Harbor, client: httpx.AsyncClient, upstream_registry: Distribution, faulty: FaultyUpstream
) -> None:
    big = oci.layer(2 << 20)
    push(upstream_registry, "lib/big", "v1", layers=[big])
    other = push(upstream_registry, "lib/other", "v1")
    await proxy_project(harbor, faulty.url, max_upstream_conn="1")
    faulty.slow_seconds = 0.05  # the one connection stays busy with the big blob for ~1.6 s
    transfer = asyncio.create_task(blob(client, "cache/lib/big", big.digest))
    await asyncio.sleep(0.3)
    r = await pull(client, "cache/lib/other", "v1")
    assert r.status_code == 429 and r.headers["retry-after"] == "1", r.text
    assert (await transfer).content == big.data
    faulty.slow_seconds = 0
    r = await pull(client, "cache/lib/other", "v1")
    assert r.status_code == 200 and r.content == other.body
