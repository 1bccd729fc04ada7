"""Harbor's CVE allowlists through the API: the system's (read by anyone signed in, written
by system administrators) and a project's `cve_allowlist` (written with the project by
those who may update it, read with it by those who may see it); the project metadata the
vulnerability policy reads checked; bad lists refused with nothing changed."""

from __future__ import annotations

import time

from portside.meta.allowlists import CveAllowlist
from portside.mgmt.cve_allowlist import CveAllowlistService
from tests.mgmt.conftest import Harbor
from tests.mgmt.harbor_schema import check


async def test_the_system_allowlist(harbor: Harbor) -> None:
    alice, _ = await harbor.user("alice")
    r = await harbor.call("GET", "/system/CVEAllowlist", who=alice)
    assert r.status_code == 200, r.text
    check(r.json(), "CVEAllowlist")
    assert r.json() == {"id": 0, "project_id": 0, "items": []}
    assert await harbor.status("GET", "/system/CVEAllowlist", who=None) == 401

    body = {"expires_at": 4102444800, "items": [{"cve_id": "CVE-2018-18074"}, {"cve_id": " CVE-2023-32681 "}]}
    assert await harbor.status("PUT", "/system/CVEAllowlist", who=alice, json=body) == 403
    assert await harbor.status("PUT", "/system/CVEAllowlist", who=None, json=body) == 401
    assert await harbor.status("PUT", "/system/CVEAllowlist", json=body) == 200
    listed = (await harbor.call("GET", "/system/CVEAllowlist", who=alice)).json()
    check(listed, "CVEAllowlist")
    assert listed["project_id"] == 0 and listed["id"] > 0 and listed["expires_at"] == 4102444800
    assert [i["cve_id"] for i in listed["items"]] == ["CVE-2018-18074", "CVE-2023-32681"]
    assert listed["creation_time"].endswith("Z") and listed["update_time"].endswith("Z")

    # Replaced whole; repeats kept once; no expiry is never.
    body = {"items": [{"cve_id": "GHSA-j8r2-6x86-q33q"}, {"cve_id": "GHSA-j8r2-6x86-q33q"}]}
    assert await harbor.status("PUT", "/system/CVEAllowlist", json=body) == 200
    listed = (await harbor.call("GET", "/system/CVEAllowlist")).json()
    assert [i["cve_id"] for i in listed["items"]] == ["GHSA-j8r2-6x86-q33q"] and "expires_at" not in listed

    # Refused with a reason, and the list stays as it was.
    for bad in (
        {"items": [{"cve_id": ""}]},
        {"items": [{"cve_id": "CVE 2020 1"}]},
        {"items": [{"cve_id": "x" * 129}]},
        {"expires_at": -5, "items": []},
        {"items": [{"cve_id": "CVE-1"}] * 10_001},
    ):
        r = await harbor.call("PUT", "/system/CVEAllowlist", json=bad)
        assert r.status_code in (400, 422), (bad, r.text)
        assert r.json()["errors"][0]["message"]
    assert (await harbor.call("GET", "/system/CVEAllowlist")).json() == listed


async def test_a_projects_allowlist_and_policy_metadata(harbor: Harbor) -> None:
    alice, _ = await harbor.user("alice")
    bob, _ = await harbor.user("bob")
    r = await harbor.call(
        "POST",
        "/projects",
        who=alice,
        json={
            "project_name": "team",
            "metadata": {"prevent_vul": "true", "severity": "High", "reuse_sys_cve_allowlist": "false"},
            "cve_allowlist": {"items": [{"cve_id": "CVE-2018-18074"}], "expires_at": 4102444800},
        },
    )
    assert r.status_code == 201, r.text
    project = (await harbor.call("GET", "/projects/team", who=alice)).json()
    check(project, "Project")
    assert project["metadata"]["severity"] == "high" and project["metadata"]["prevent_vul"] == "true"
    allowlist = project["cve_allowlist"]
    assert allowlist["project_id"] == project["project_id"] and allowlist["expires_at"] == 4102444800
    assert [i["cve_id"] for i in allowlist["items"]] == ["CVE-2018-18074"]

    # Replaced by an update; a metadata-only update leaves it alone.
    update = {"cve_allowlist": {"items": [{"cve_id": "CVE-2023-32681"}, {"cve_id": "PYSEC-2018-28"}]}}
    assert await harbor.status("PUT", "/projects/team", who=alice, json=update) == 200
    assert await harbor.status("PUT", "/projects/team", who=alice, json={"metadata": {"auto_scan": "true"}}) == 200
    allowlist = (await harbor.call("GET", "/projects/team", who=alice)).json()["cve_allowlist"]
    assert [i["cve_id"] for i in allowlist["items"]] == ["CVE-2023-32681", "PYSEC-2018-28"]
    assert "expires_at" not in allowlist
    # Emptied by an empty list.
    assert await harbor.status("PUT", "/projects/team", who=alice, json={"cve_allowlist": {"items": []}}) == 200
    assert (await harbor.call("GET", "/projects/team", who=alice)).json()["cve_allowlist"]["items"] == []

    # Others: a private project is missing; the policy's metadata is checked.
    assert await harbor.status("PUT", "/projects/team", who=bob, json=update) == 404
    for metadata in ({"severity": "severe"}, {"reuse_sys_cve_allowlist": "yes"}, {"auto_sbom_generation": "1"}):
        r = await harbor.call("PUT", "/projects/team", who=alice, json={"metadata": metadata})
        assert r.status_code == 400, (metadata, r.text)
    # A bad list refuses the whole update: the metadata beside it is not written either.
    bad = {"metadata": {"auto_scan": "false"}, "cve_allowlist": {"items": [{"cve_id": "not an id"}]}}
    assert await harbor.status("PUT", "/projects/team", who=alice, json=bad) == 400
    assert (await harbor.call("GET", "/projects/team", who=alice)).json()["metadata"]["auto_scan"] == "true"
    # A bad list refuses a new project before it exists.
    bad_new = {"project_name": "other", "cve_allowlist": {"items": [{"cve_id": "CVE 1"}]}}
    assert await harbor.status("POST", "/projects", who=alice, json=bad_new) == 400
    assert await harbor.status("GET", "/projects/other", who=alice) == 404


class _Store:
    def __init__(self) -> None:
        self.lists: dict[int, CveAllowlist] = {}

    async def get_allowlist(self, project_id: int) -> CveAllowlist | None:
        return self.lists.get(project_id)

    async def put_allowlist(self, project_id: int, cve_ids: object, expires_at: int | None) -> CveAllowlist:
        raise AssertionError("not written here")


async def test_the_governing_allowlist_is_the_systems_when_reused_and_expires() -> None:
    from datetime import UTC, datetime

    from portside.meta.accounts import Project

    store = _Store()
    store.lists[0] = CveAllowlist(0, ("CVE-SYS-1",), expires_at=None, id=1)
    store.lists[7] = CveAllowlist(7, ("CVE-OWN-1",), expires_at=2_000, id=2)
    service = CveAllowlistService(None, store)  # type: ignore[arg-type]
    stamp = datetime.now(UTC)

    def project(reuse: str | None) -> Project:
        metadata = {} if reuse is None else {"reuse_sys_cve_allowlist": reuse}
        return Project(7, "p", 1, "admin", metadata, stamp, stamp)

    assert (await service.governing(project(None))).in_force(1_000) == {"CVE-OWN-1"}
    assert (await service.governing(project("false"))).in_force(1_999) == {"CVE-OWN-1"}
    assert (await service.governing(project(None))).in_force(2_000) == frozenset()  # expired at expires_at
    assert (await service.governing(project("true"))).in_force(time.time()) == {"CVE-SYS-1"}
    empty = Project(8, "q", 1, "admin", {}, stamp, stamp)
    assert (await service.governing(empty)).in_force(time.time()) == frozenset()
