"""Repositories, artifacts and tags per role, and consistency with what /v2 serves."""

import pytest

from tests.mgmt.conftest import Harbor
from tests.mgmt.harbor_schema import check

ROLES = {"admin1": 1, "dev": 2, "guest": 3, "maint": 4, "limited": 5}


@pytest.fixture
async def team(harbor: Harbor) -> dict[str, tuple[str, str]]:
    people = {}
    await harbor.project("team")
    for name, role in ROLES.items():
        people[name], _ = await harbor.user(name)
        await harbor.member("team", name, role)
    people["outsider"], _ = await harbor.user("outsider")
    await harbor.push("team/app", "v1")
    await harbor.push("team/nested/app", "v1", layer=b"other")
    await harbor.push("library/hello", "latest")
    return people


async def test_listing_and_shapes(harbor: Harbor, team: dict[str, tuple[str, str]]) -> None:
    r = await harbor.call("GET", "/projects/team/repositories", who=team["limited"], params={"sort": "name"})
    assert r.status_code == 200
    check(r.json(), "Repository", array=True)
    assert [x["name"] for x in r.json()] == ["team/app", "team/nested/app"]
    assert r.json()[0]["artifact_count"] == 1
    r = await harbor.call("GET", "/repositories", who=team["outsider"])
    assert {x["name"] for x in r.json()} == {"library/hello"}
    r = await harbor.call("GET", "/repositories", who=None)
    assert {x["name"] for x in r.json()} == {"library/hello"}
    r = await harbor.call("GET", "/repositories", who=team["guest"])
    assert {x["name"] for x in r.json()} == {"library/hello", "team/app", "team/nested/app"}
    # A private project is, to an outsider, a project that does not exist.
    assert await harbor.status("GET", "/projects/team/repositories", who=team["outsider"]) == 404
    assert await harbor.status("GET", "/projects/team/repositories", who=None) == 404

    for encoded in ("nested%252Fapp", "nested%2Fapp"):
        r = await harbor.call("GET", f"/projects/team/repositories/{encoded}/artifacts", who=team["guest"])
        assert r.status_code == 200, (encoded, r.text)
        check(r.json(), "Artifact", array=True)
        assert [t["name"] for t in r.json()[0]["tags"]] == ["v1"]
    r = await harbor.call("GET", "/projects/team/repositories/app/artifacts/v1", who=team["limited"])
    assert r.status_code == 200
    artifact = r.json()
    check(artifact, "Artifact")
    assert artifact["type"] == "IMAGE" and artifact["media_type"] == "application/vnd.oci.image.config.v1+json"
    assert artifact["manifest_media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert artifact["repository_name"] == "team/app" and artifact["size"] > len(b"layer")
    r = await harbor.call(
        "GET", "/projects/team/repositories/app/artifacts", who=team["guest"], params={"q": "tags=nope"}
    )
    assert r.json() == [] and r.headers["X-Total-Count"] == "0"
    r = await harbor.call(
        "GET", "/projects/team/repositories/app/artifacts", who=team["guest"], params={"with_tag": "false"}
    )
    assert "tags" not in r.json()[0]
    assert await harbor.status("GET", "/projects/team/repositories/app/artifacts", who=team["outsider"]) == 404


async def test_tags_and_deletes_by_role(harbor: Harbor, team: dict[str, tuple[str, str]]) -> None:
    path = "/projects/team/repositories/app/artifacts/v1/tags"
    for who in ("limited", "guest", "outsider"):
        expected = 404 if who == "outsider" else 403
        assert await harbor.status("POST", path, who=team[who], json={"name": "v2"}) == expected, who
    assert await harbor.status("POST", path, who=team["dev"], json={"name": "v2"}) == 201
    assert await harbor.status("POST", path, who=team["dev"], json={"name": "v2"}) == 409
    r = await harbor.client.get("/v2/team/app/manifests/v2", headers=_basic(team["dev"]))
    assert r.status_code == 200
    r = await harbor.call("GET", path, who=team["guest"])
    check(r.json(), "Tag", array=True)
    assert [t["name"] for t in r.json()] == ["v1", "v2"]
    assert await harbor.status("DELETE", f"{path}/v2", who=team["dev"]) == 403
    assert await harbor.status("DELETE", f"{path}/v2", who=team["maint"]) == 200
    r = await harbor.client.get("/v2/team/app/manifests/v2", headers=_basic(team["dev"]))
    assert r.status_code == 404
    one = "/projects/team/repositories/app/artifacts/v1"
    assert await harbor.status("DELETE", one, who=team["dev"]) == 403
    assert await harbor.status("DELETE", one, who=team["maint"]) == 200
    assert await harbor.status("GET", one, who=team["maint"]) == 404
    r = await harbor.client.get("/v2/team/app/tags/list", headers=_basic(team["dev"]))
    assert r.json().get("tags") in (None, [])
    r = await harbor.call("PUT", "/projects/team/repositories/app", who=team["guest"], json={"description": "d"})
    assert r.status_code == 403
    r = await harbor.call("PUT", "/projects/team/repositories/app", who=team["dev"], json={"description": "d"})
    assert r.status_code == 200
    r = await harbor.call("GET", "/projects/team/repositories/app", who=team["guest"])
    check(r.json(), "Repository")
    assert r.json()["description"] == "d"
    assert await harbor.status("DELETE", "/projects/team/repositories/app", who=team["dev"]) == 403
    assert await harbor.status("DELETE", "/projects/team/repositories/app", who=team["maint"]) == 200
    assert await harbor.status("GET", "/projects/team/repositories/app", who=team["maint"]) == 404


def _basic(who: tuple[str, str]) -> dict[str, str]:
    from tests.mgmt.conftest import basic

    return basic(*who)


async def test_index_lists_its_references(harbor: Harbor) -> None:
    import hashlib
    import json

    from tests.mgmt.conftest import ADMIN, basic

    await harbor.project("multi")
    amd64 = await harbor.push("multi/app", "amd64", layer=b"amd64 layer")
    arm64 = await harbor.push("multi/app", "arm64", layer=b"arm64 layer")
    children = []
    for digest, arch in ((amd64, "amd64"), (arm64, "arm64")):
        manifest = await harbor.client.get(f"/v2/multi/app/manifests/{digest}", headers=basic(*ADMIN))
        children.append(
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": digest,
                "size": len(manifest.content),
                "platform": {"os": "linux", "architecture": arch},
            }
        )
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children}
    ).encode()
    r = await harbor.client.put(
        "/v2/multi/app/manifests/latest",
        content=index,
        headers={**basic(*ADMIN), "Content-Type": "application/vnd.oci.image.index.v1+json"},
    )
    assert r.status_code == 201, r.text

    r = await harbor.call("GET", "/projects/multi/repositories/app/artifacts/latest")
    assert r.status_code == 200, r.text
    artifact = r.json()
    check(artifact, "Artifact")
    assert artifact["digest"] == "sha256:" + hashlib.sha256(index).hexdigest()
    assert artifact["manifest_media_type"] == "application/vnd.oci.image.index.v1+json"
    references = {ref["child_digest"]: ref for ref in artifact["references"]}
    assert set(references) == {amd64, arm64}
    assert references[arm64]["platform"]["architecture"] == "arm64"
    assert all(ref["parent_id"] == artifact["id"] for ref in artifact["references"])
    # An index weighs itself plus what its children weigh.
    sizes = {}
    for digest in (amd64, arm64):
        child = await harbor.call("GET", f"/projects/multi/repositories/app/artifacts/{digest}")
        sizes[digest] = child.json()["size"]
    assert len(index) + max(sizes.values()) < artifact["size"] <= len(index) + sum(sizes.values())
    # A child an index needs cannot be deleted before the index.
    assert await harbor.status("DELETE", f"/projects/multi/repositories/app/artifacts/{amd64}") in (403, 412)
    assert await harbor.status("DELETE", "/projects/multi/repositories/app/artifacts/latest") == 200
    assert await harbor.status("DELETE", f"/projects/multi/repositories/app/artifacts/{amd64}") == 200


async def test_pulls_are_counted(harbor: Harbor) -> None:
    import asyncio

    from tests.mgmt.conftest import ADMIN, basic

    await harbor.project("counted")
    await harbor.push("counted/app", "v1")
    for _ in range(3):
        r = await harbor.client.get("/v2/counted/app/manifests/v1", headers=basic(*ADMIN))
        assert r.status_code == 200
    # HEAD is not a pull.
    assert (await harbor.client.head("/v2/counted/app/manifests/v1", headers=basic(*ADMIN))).status_code == 200
    for _ in range(50):  # the audit trail writes about once a second
        repository = (await harbor.call("GET", "/projects/counted/repositories/app")).json()
        if repository["pull_count"]:
            break
        await asyncio.sleep(0.1)
    assert repository["pull_count"] == 3
    artifact = (await harbor.call("GET", "/projects/counted/repositories/app/artifacts/v1")).json()
    assert artifact["pull_time"] and not artifact["pull_time"].startswith("0001")
