"""Artifacts as Harbor shows them, over live HTTP: extra_attrs from the image config,
addition_links and the build_history addition, an index's references with each child's
platform, and artifact copy as a mount."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.api import oci
from tests.mgmt.harbor_schema import check
from tests.parity.conftest import API, DEVELOPER, GUEST, Live
from tests.stacks import stored_objects

HISTORY = [
    {"created": "2024-05-01T11:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:abc in / "},
    {"created": "2024-05-01T11:00:01Z", "created_by": '/bin/sh -c #(nop)  CMD ["sh"]', "empty_layer": True},
]


def image_config(architecture: str = "arm64", **extra: Any) -> oci.Blob:
    document = {
        "architecture": architecture,
        "os": "linux",
        "created": "2024-05-01T12:00:00Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"maintainer": "ops@example.com"}},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": HISTORY,
        **extra,
    }
    return oci.Blob(json.dumps(document).encode(), oci.OCI_CONFIG)


def test_extra_attrs_addition_links_and_build_history(live: Live) -> None:
    project = live.name("ea")
    live.project(project)
    guest, _ = live.user()
    live.member(project, guest[0], GUEST)
    image = live.push(f"{project}/team/app", "v1", config=image_config())
    path = f"/projects/{project}/repositories/team%252Fapp/artifacts"

    artifact = live.ok("GET", f"{path}/v1", who=guest)
    check(artifact, "Artifact")
    assert artifact["extra_attrs"] == {
        "architecture": "arm64",
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "Labels": {"maintainer": "ops@example.com"}},
        "author": "ops@example.com",  # no author: the maintainer label, as Harbor does
        "created": "2024-05-01T12:00:00Z",
    }
    href = f"{API}/projects/{project}/repositories/team%252Fapp/artifacts/{image.digest}/additions/build_history"
    base = f"{API}/projects/{project}/repositories/team%252Fapp/artifacts"
    # A scannable image also links its reports; `sboms` names the SBOM's digest once one exists.
    assert artifact["addition_links"] == {
        "build_history": {"href": href, "absolute": False},
        "vulnerabilities": {"href": f"{base}/{image.digest}/additions/vulnerabilities", "absolute": False},
        "sboms": {"href": f"{base}//additions/sbom", "absolute": False},
    }
    [listed] = live.ok("GET", path, who=guest)
    assert listed["extra_attrs"] == artifact["extra_attrs"] and listed["addition_links"] == artifact["addition_links"]

    with live.client(guest) as c:
        r = c.get(href)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == HISTORY
    # The project is private: to an anonymous caller it does not exist.
    assert live.api("GET", f"{path}/v1/additions/build_history", who=None).status_code == 404
    assert live.api("GET", f"{path}/v1/additions/readme.md", who=guest).status_code == 400

    # An author of its own wins; an artifact that is no image has neither.
    authored = live.push(f"{project}/authored", "v1", config=image_config(author="Jane <j@example.com>"))
    body = live.ok("GET", f"/projects/{project}/repositories/authored/artifacts/{authored.digest}")
    assert body["extra_attrs"]["author"] == "Jane <j@example.com>"
    other = oci.artifact_manifest("application/vnd.example.thing")
    live.push_manifest(f"{project}/things", other, "v1")
    body = live.ok("GET", f"/projects/{project}/repositories/things/artifacts/v1")
    check(body, "Artifact")
    assert body["extra_attrs"] == {} and "addition_links" not in body
    r = live.api("GET", f"/projects/{project}/repositories/things/artifacts/v1/additions/build_history")
    assert r.status_code == 400


def test_index_references_carry_each_platform(live: Live) -> None:
    project = live.name("ix")
    live.project(project)
    amd = oci.image_manifest(image_config("amd64"))
    arm = oci.image_manifest(image_config("arm64"))
    index = oci.index_manifest([amd, arm], platforms=[("linux", "amd64"), ("linux", "arm64")])
    body = json.loads(index.body)
    body["manifests"][1]["platform"].update({"variant": "v8", "os.version": "1.0", "os.features": ["sse4"]})
    body["manifests"][1]["annotations"] = {"org.example": "arm"}
    body["manifests"][1]["urls"] = ["https://example.com/arm"]
    index = oci.Manifest(json.dumps(body).encode(), oci.OCI_INDEX, [], [amd, arm])
    live.push_manifest(f"{project}/multi", index, "latest")
    path = f"/projects/{project}/repositories/multi/artifacts"

    artifact = live.ok("GET", f"{path}/latest")
    check(artifact, "Artifact")
    # An index has no build history of its own; its reports merge its images' (Harbor's links).
    assert artifact["type"] == "IMAGE" and set(artifact["addition_links"]) == {"vulnerabilities", "sboms"}
    children = {c.digest: live.ok("GET", f"{path}/{c.digest}") for c in (amd, arm)}
    assert artifact["references"] == [
        {
            "parent_id": artifact["id"],
            "child_id": children[amd.digest]["id"],
            "child_digest": amd.digest,
            "platform": {"architecture": "amd64", "os": "linux"},
        },
        {
            "parent_id": artifact["id"],
            "child_id": children[arm.digest]["id"],
            "child_digest": arm.digest,
            "platform": {
                "architecture": "arm64",
                "os": "linux",
                "variant": "v8",
                "os.version": "1.0",
                "os.features": ["sse4"],
            },
            "annotations": {"org.example": "arm"},
            "urls": ["https://example.com/arm"],
        },
    ]
    assert children[arm.digest]["extra_attrs"]["architecture"] == "arm64"
    assert [a["digest"] for a in live.ok("GET", path)] == [index.digest]  # children are not listed
    assert live.api("GET", f"{path}/latest/additions/build_history").status_code == 400


def _stored(live: Live) -> int:
    staging = frozenset({"uploads", "quarantine"})
    return sum(1 for _ in stored_objects(live.server.data_dir, live.server.env, staging))


def test_copy_is_a_mount_with_harbors_permissions(live: Live) -> None:
    source, target = live.name("cs"), live.name("ct")
    live.project(source)
    live.project(target)
    image = live.push(f"{source}/app", "v1", config=image_config())
    with live.client() as c:
        assert c.put(
            f"/v2/{source}/app/manifests/latest", content=image.body, headers={"content-type": image.media_type}
        ).is_success
    amd, arm = oci.image_manifest(image_config("amd64")), oci.image_manifest(image_config("arm64"))
    index = oci.index_manifest([amd, arm])
    live.push_manifest(f"{source}/multi", index, "v2")

    copier, _ = live.user()  # pulls from the source, pushes to the target
    live.member(source, copier[0], GUEST)
    live.member(target, copier[0], DEVELOPER)
    stranger, _ = live.user()  # pushes to the target, may not see the source
    live.member(target, stranger[0], DEVELOPER)
    reader, _ = live.user()  # may read both, push to neither
    live.member(source, reader[0], GUEST)
    live.member(target, reader[0], GUEST)

    copy = f"/projects/{target}/repositories/copied%252Fapp/artifacts"
    before = _stored(live)
    r = live.api("POST", copy, who=copier, params={"from": f"{source}/app:v1"})
    assert r.status_code == 201, r.text
    assert r.headers["Location"] == f"{API}{copy}/{image.digest}"
    assert _stored(live) == before  # nothing was written to the blob store
    copied = live.ok("GET", f"{copy}/{image.digest}")
    assert sorted(t["name"] for t in copied["tags"]) == ["latest", "v1"]
    assert copied["extra_attrs"]["architecture"] == "arm64"
    with live.client(copier) as c:
        r = c.get(f"/v2/{target}/copied/app/manifests/v1", headers={"Accept": image.media_type})
        assert r.status_code == 200 and r.content == image.body
        for blob in image.blobs:
            r = c.get(f"/v2/{target}/copied/app/blobs/{blob.digest}")
            assert r.status_code == 200 and r.content == blob.data
    r = live.api("POST", copy, who=copier, params={"from": f"{source}/app@{image.digest}"})
    assert r.status_code == 409, r.text

    # An index comes with its children, by digest.
    r = live.api(
        "POST",
        f"/projects/{target}/repositories/multi/artifacts",
        who=copier,
        params={"from": f"{source}/multi@{index.digest}"},
    )
    assert r.status_code == 201, r.text
    with live.client(copier) as c:
        for manifest in (index, amd, arm):
            r = c.get(f"/v2/{target}/multi/manifests/{manifest.digest}", headers={"Accept": oci.ACCEPT_ALL})
            assert r.status_code == 200, manifest.digest
        assert c.get(f"/v2/{target}/multi/tags/list").json()["tags"] == ["v2"]

    # A private source is answered as a missing one to those who may not read it.
    hidden = live.api("POST", copy, who=stranger, params={"from": f"{source}/app:v1"})
    missing = live.api("POST", copy, who=stranger, params={"from": f"{live.name('nope')}/app:v1"})
    absent = live.api("POST", copy, who=copier, params={"from": f"{source}/app:nope"})
    for r in (hidden, missing, absent):
        assert r.status_code == 404, r.text
    assert hidden.json()["errors"][0]["message"].replace(source, "X") == missing.json()["errors"][0]["message"].replace(
        missing.request.url.params["from"].split("/")[0], "X"
    )
    assert live.api("POST", copy, who=reader, params={"from": f"{source}/app:v1"}).status_code == 403
    assert live.api("POST", copy, who=None, params={"from": f"{source}/app:v1"}).status_code == 404  # private target
    for bad in ("app:v1", f"{source}/app", f"{source}/app@sha256:nothex", f"{source}/App:v1"):
        assert live.api("POST", copy, who=copier, params={"from": bad}).status_code == 400, bad
    assert live.api("POST", copy, who=copier).status_code == 400

    logs = live.ok("GET", f"/projects/{target}/logs", params={"q": "resource_type=artifact,operation=create"})
    assert {log["resource"] for log in logs} >= {
        f"{target}/copied/app@{image.digest}",
        f"{target}/multi@{index.digest}",
    }


def test_copy_respects_the_target_quota(live: Live) -> None:
    source, target = live.name("qs"), live.name("qt")
    live.project(source)
    r = live.api("POST", "/projects", json={"project_name": target, "storage_limit": 100})
    assert r.status_code == 201, r.text
    image = live.push(f"{source}/app", "v1", config=image_config())
    r = live.api("POST", f"/projects/{target}/repositories/app/artifacts", params={"from": f"{source}/app:v1"})
    assert r.status_code == 403, r.text
    assert "quota" in r.json()["errors"][0]["message"]
    with live.client() as c:
        r = c.get(f"/v2/{target}/app/manifests/{image.digest}", headers={"Accept": image.media_type})
        assert r.status_code == 404
    project_id = live.ok("GET", f"/projects/{target}")["project_id"]
    live.ok("PUT", f"/quotas/{project_id}", json={"hard": {"storage": -1}})
    r = live.api("POST", f"/projects/{target}/repositories/app/artifacts", params={"from": f"{source}/app:v1"})
    assert r.status_code == 201, r.text
    assert live.ok("GET", f"/quotas/{project_id}")["used"]["storage"] >= sum(b.size for b in image.blobs)


def test_copy_through_harbor_clients_unencoded_source(live: Live) -> None:
    """harborapi and the Harbor UI send the source unencoded, nested names included."""
    source, target = live.name("ns"), live.name("nt")
    live.project(source)
    live.project(target)
    image = live.push(f"{source}/deep/er/app", "v1")
    with httpx.Client(base_url=live.url, auth=("admin", live.server.env["PORTSIDE_ADMIN_PASSWORD"])) as c:
        r = c.post(f"{API}/projects/{target}/repositories/app/artifacts?from={source}/deep/er/app@{image.digest}")
    assert r.status_code == 201, r.text
