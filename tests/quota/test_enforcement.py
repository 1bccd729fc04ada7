"""Pushes that would take a project over its storage limit are refused with DENIED naming
the quota, at every place storage grows: upload completion (monolithic and chunked), a
cross-repository mount, a manifest. Content the project holds already costs nothing."""

from __future__ import annotations

import json
import os
import re

import httpx

from tests.mgmt.conftest import Harbor
from tests.quota.conftest import V2, MiB, digest, image_manifest, quota_of, set_limit, used

CONFIG = json.dumps({"architecture": "amd64", "os": "linux"}).encode()


def denied_by_quota(r: httpx.Response, project: str) -> str:
    assert r.status_code == 403, r.text
    [error] = r.json()["errors"]
    assert error["code"] == "DENIED", r.text
    assert re.fullmatch(
        rf'quota exceeded: project "{project}" would use \S+ \S+ of its \S+ \S+ storage limit', error["message"]
    ), error["message"]
    return str(error["message"])


async def test_blob_uploads_stop_at_the_limit(harbor: Harbor, v2: V2) -> None:
    await harbor.project("team")
    await set_limit(harbor, "team", 10 * MiB)
    first = os.urandom(6 * MiB)
    assert (await v2.blob("team/app", first)).status_code == 201

    second = os.urandom(6 * MiB)
    message = denied_by_quota(await v2.blob("team/app", second), "team")
    assert message == 'quota exceeded: project "team" would use 12.0 MiB of its 10.0 MiB storage limit'
    denied_by_quota(await v2.chunked_blob("team/app", second), "team")
    # nothing of the refused blob is visible, and the usage did not move
    assert (await v2.client.head(f"/v2/team/app/blobs/{digest(second)}", headers=v2.headers)).status_code == 404
    assert await used(harbor, "team") == len(first)

    # a blob the project holds already costs nothing, in any of its repositories
    assert (await v2.blob("team/other", first)).status_code == 201
    assert (await v2.chunked_blob("team/third", first)).status_code == 201
    assert await used(harbor, "team") == len(first)

    # a refused chunked upload keeps its session: once the limit is raised, repeating its
    # PUT completes it; a monolithic upload is simply sent again
    r = await v2.client.post("/v2/team/app/blobs/uploads/", headers=v2.headers)
    r = await v2.client.patch(r.headers["location"], content=second, headers=v2.headers)
    session = r.headers["location"]
    denied_by_quota(await v2.client.put(session, params={"digest": digest(second)}, headers=v2.headers), "team")
    await set_limit(harbor, "team", 12 * MiB)
    assert (await v2.client.put(session, params={"digest": digest(second)}, headers=v2.headers)).status_code == 201
    assert (await v2.blob("team/other", second)).status_code == 201
    assert await used(harbor, "team") == 12 * MiB


async def test_manifests_count_and_are_refused_over_the_limit(harbor: Harbor, v2: V2) -> None:
    await harbor.project("team")
    layer = os.urandom(4096)
    for blob in (CONFIG, layer):
        assert (await v2.blob("team/app", blob)).status_code == 201
    blobs = len(CONFIG) + len(layer)
    payload = image_manifest(CONFIG, [layer])
    await set_limit(harbor, "team", blobs + len(payload) - 1)

    r = await v2.manifest("team/app", "v1", payload)
    denied_by_quota(r, "team")
    assert r.json()["errors"][0]["detail"] == {
        "project": "team",
        "limit": blobs + len(payload) - 1,
        "used": blobs,
        "requested": len(payload),
    }
    assert (await v2.client.get("/v2/team/app/tags/list", headers=v2.headers)).json().get("tags") in (None, [])

    await set_limit(harbor, "team", blobs + len(payload))
    assert (await v2.manifest("team/app", "v1", payload)).status_code == 201
    assert await used(harbor, "team") == blobs + len(payload)
    # exactly at the limit: the same manifest under another tag, or in another repository
    # of the project (with blobs it holds), costs nothing
    assert (await v2.manifest("team/app", "v2", payload)).status_code == 201
    for blob in (CONFIG, layer):
        assert (await v2.blob("team/copy", blob)).status_code == 201
    assert (await v2.manifest("team/copy", "v1", payload)).status_code == 201
    # a new manifest does not fit
    other = image_manifest(CONFIG, [layer, layer])
    denied_by_quota(await v2.manifest("team/app", "v3", other), "team")


async def test_mounts_from_other_projects_count(harbor: Harbor, v2: V2) -> None:
    await harbor.project("src")
    await harbor.project("team")
    big = os.urandom(2 * MiB)
    assert (await v2.blob("src/app", big)).status_code == 201
    await set_limit(harbor, "team", MiB)

    r = await v2.mount("team/app", digest(big), "src/app")
    denied_by_quota(r, "team")
    assert await used(harbor, "team") == 0
    await set_limit(harbor, "team", 2 * MiB)
    assert (await v2.mount("team/app", digest(big), "src/app")).status_code == 201
    # within the project, a mount is free even at the limit
    assert (await v2.mount("team/other", digest(big), "team/app")).status_code == 201
    assert await used(harbor, "team") == 2 * MiB


async def test_a_limit_below_usage_refuses_growth_only(harbor: Harbor, v2: V2) -> None:
    await harbor.project("team")
    pushed = await v2.image("team/app", "v1", [os.urandom(5000)], CONFIG)
    await set_limit(harbor, "team", 1000)
    quota = await quota_of(harbor, "team")
    assert quota["hard"]["storage"] == 1000 and quota["used"]["storage"] > 1000
    denied_by_quota(await v2.blob("team/app", os.urandom(10)), "team")
    # reading, re-tagging and deleting still work
    r = await v2.client.get(f"/v2/team/app/manifests/{pushed.digest}", headers=v2.headers)
    assert r.status_code == 200
    assert (await v2.manifest("team/app", "again", r.content)).status_code == 201
    assert (await v2.delete("team/app", "manifests", pushed.digest)).status_code == 202
    await set_limit(harbor, "team", -1)
    assert (await v2.blob("team/app", os.urandom(10 * MiB))).status_code == 201


async def test_unlimited_projects_and_other_repositories_are_not_limited(harbor: Harbor, v2: V2) -> None:
    await harbor.project("free")
    await harbor.project("tight")
    await set_limit(harbor, "tight", 10)
    assert (await v2.blob("free/app", os.urandom(3 * MiB))).status_code == 201
    denied_by_quota(await v2.blob("tight/app", os.urandom(11)), "tight")
    assert (await v2.blob("tight/app", os.urandom(10))).status_code == 201
