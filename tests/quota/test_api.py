"""/quotas and the quota fields of /projects: Harbor's shapes (checked against the
swagger), paging, filters and sorting, who may do what, project creation with a limit,
and the project summary."""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.mgmt.conftest import ADMIN, Harbor
from tests.mgmt.harbor_schema import check
from tests.quota.conftest import V2, MiB, quota_of

GUEST = 3


async def _quotas(harbor: Harbor, who: tuple[str, str] | None = ADMIN, **params: Any) -> list[dict[str, Any]]:
    r = await harbor.call("GET", "/quotas", who=who, params=params)
    assert r.status_code == 200, r.text
    check(r.json(), "Quota", array=True)
    return r.json()  # type: ignore[no-any-return]


async def test_every_project_has_a_quota_in_harbors_shape(harbor: Harbor, v2: V2) -> None:
    alice, _ = await harbor.user("alice")
    team = await harbor.project("team", who=alice)
    layer = os.urandom(1234)
    assert (await v2.blob("team/app", layer)).status_code == 201

    found = await _quotas(harbor)
    # `library` was made at bootstrap without one: it gets its quota when first asked
    assert [q["ref"]["name"] for q in found] == ["library", "team"]
    [quota] = [q for q in found if q["ref"]["name"] == "team"]
    assert quota["id"] == team
    assert quota["ref"] == {"id": team, "name": "team", "owner_name": "alice"}
    assert quota["hard"] == {"storage": -1} and quota["used"] == {"storage": len(layer)}
    assert quota["creation_time"].endswith("Z") and quota["update_time"].endswith("Z")

    r = await harbor.call("GET", f"/quotas/{team}")
    assert r.status_code == 200
    check(r.json(), "Quota")
    assert r.json() == quota
    assert await harbor.status("GET", "/quotas/99999") == 404


async def test_listing_pages_filters_and_sorts(harbor: Harbor, v2: V2) -> None:
    ids = {}
    for name, size, limit in (("p1", 300, 5 * MiB), ("p2", 100, MiB), ("p3", 200, -1)):
        ids[name] = await harbor.project(name)
        assert (await v2.blob(f"{name}/app", os.urandom(size))).status_code == 201
        r = await harbor.call("PUT", f"/quotas/{ids[name]}", json={"hard": {"storage": limit}})
        assert r.status_code == 200, r.text

    r = await harbor.call("GET", "/quotas", params={"page": 1, "page_size": 2})
    assert r.status_code == 200 and r.headers["X-Total-Count"] == "4"
    assert 'rel="next"' in r.headers["Link"] and len(r.json()) == 2
    r = await harbor.call("GET", "/quotas", params={"page": 2, "page_size": 2})
    assert 'rel="prev"' in r.headers["Link"] and "next" not in r.headers["Link"]

    def names(found: list[dict[str, Any]]) -> list[str]:
        return [q["ref"]["name"] for q in found if q["ref"]["name"] != "library"]

    assert names(await _quotas(harbor, sort="used.storage")) == ["p2", "p3", "p1"]
    assert names(await _quotas(harbor, sort="-used.storage")) == ["p1", "p3", "p2"]
    # raw values, as Harbor sorts them: -1 (unlimited) first
    assert names(await _quotas(harbor, sort="hard.storage")) == ["p3", "p2", "p1"]
    assert names(await _quotas(harbor, sort="-hard.storage")) == ["p1", "p2", "p3"]
    r = await harbor.call("GET", "/quotas", params={"sort": "-used.storage", "page": 1, "page_size": 1})
    assert r.headers["X-Total-Count"] == "4" and names(r.json()) == ["p1"]

    found = await _quotas(harbor, reference="project", reference_id=str(ids["p2"]))
    assert [(q["id"], q["hard"]["storage"], q["used"]["storage"]) for q in found] == [(ids["p2"], MiB, 100)]
    assert await _quotas(harbor, reference_id=str(ids["p3"])) == await _quotas(harbor, reference_id=ids["p3"])
    assert await _quotas(harbor, reference="other") == []
    assert await _quotas(harbor, reference_id="424242") == []
    # A sort key the list does not know is ignored, as Harbor ignores it.
    assert await harbor.status("GET", "/quotas", params={"sort": "name"}) == 200
    assert await harbor.status("GET", "/quotas", params={"reference_id": "abc"}) == 400


async def test_only_system_administrators_read_and_change_quotas(harbor: Harbor) -> None:
    alice, _ = await harbor.user("alice")
    team = await harbor.project("team", who=alice)
    # alice is the project's admin, and still neither lists nor changes quotas
    for method, path, body in (
        ("GET", "/quotas", None),
        ("GET", f"/quotas/{team}", None),
        ("PUT", f"/quotas/{team}", {"hard": {"storage": 5 * MiB}}),
    ):
        r = await harbor.call(method, path, who=alice, json=body)
        assert r.status_code == 403 and r.json()["errors"][0]["code"] == "FORBIDDEN", r.text
        assert await harbor.status(method, path, who=None, json=body) == 401
    assert (await quota_of(harbor, "team"))["hard"]["storage"] == -1

    r = await harbor.call("PUT", f"/quotas/{team}", json={"hard": {"storage": 5 * MiB}})
    assert r.status_code == 200, r.text
    quota = await quota_of(harbor, "team")
    assert quota["hard"]["storage"] == 5 * MiB and quota["update_time"] >= quota["creation_time"]
    r = await harbor.call("GET", "/audit-logs", params={"q": "resource_type=quota"})
    assert [(a["operation"], a["resource"], a["username"]) for a in r.json()] == [("update", "team", "admin")]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"hard": {}},
        {"hard": {"count": 10}},
        {"hard": {"storage": 10, "count": 10}},
        {"hard": {"storage": 0}},
        {"hard": {"storage": -2}},
        {"hard": {"storage": "lots"}},
        {"hard": {"storage": 2**63}},
    ],
)
async def test_invalid_limits_are_bad_requests(harbor: Harbor, body: dict[str, Any]) -> None:
    team = await harbor.project("team")
    r = await harbor.call("PUT", f"/quotas/{team}", json=body)
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "BAD_REQUEST", r.text
    assert await harbor.status("PUT", "/quotas/99999", json={"hard": {"storage": 10}}) == 404


async def test_creating_projects_with_a_storage_limit(harbor: Harbor) -> None:
    alice, _ = await harbor.user("alice")
    r = await harbor.call("POST", "/projects", json={"project_name": "sized", "storage_limit": 3 * MiB})
    assert r.status_code == 201, r.text
    assert (await quota_of(harbor, "sized"))["hard"]["storage"] == 3 * MiB

    # other users get the default, may say so, and may not ask for anything else
    r = await harbor.call("POST", "/projects", who=alice, json={"project_name": "greedy", "storage_limit": 9 * MiB})
    assert r.status_code == 403 and "storage_limit" in r.json()["errors"][0]["message"], r.text
    assert await harbor.status("HEAD", "/projects", params={"project_name": "greedy"}) == 404
    r = await harbor.call("POST", "/projects", who=alice, json={"project_name": "modest", "storage_limit": -1})
    assert r.status_code == 201, r.text
    assert await harbor.status("POST", "/projects", who=alice, json={"project_name": "plain"}) == 201
    assert (await quota_of(harbor, "plain"))["hard"]["storage"] == -1

    r = await harbor.call("POST", "/projects", json={"project_name": "zero", "storage_limit": 0})
    assert r.status_code == 400, r.text
    assert await harbor.status("HEAD", "/projects", params={"project_name": "zero"}) == 404


@pytest.mark.default_storage_limit(10 * MiB)
async def test_the_default_limit_applies_to_new_and_older_projects(harbor: Harbor) -> None:
    alice, _ = await harbor.user("alice")
    await harbor.project("mine", who=alice)
    assert (await quota_of(harbor, "mine"))["hard"]["storage"] == 10 * MiB
    # a project from before quotas (here: made at bootstrap) gets the default on first sight
    assert (await quota_of(harbor, "library"))["hard"]["storage"] == 10 * MiB
    r = await harbor.call("POST", "/projects", who=alice, json={"project_name": "free", "storage_limit": -1})
    assert r.status_code == 403, r.text
    r = await harbor.call("POST", "/projects", json={"project_name": "free", "storage_limit": -1})
    assert r.status_code == 201, r.text
    assert (await quota_of(harbor, "free"))["hard"]["storage"] == -1


async def test_project_summary(harbor: Harbor, v2: V2) -> None:
    alice, _ = await harbor.user("alice")
    bob, _ = await harbor.user("bob")
    carol, _ = await harbor.user("carol")
    await harbor.project("team", who=alice)
    await harbor.project("open", public=True, who=alice)
    await harbor.member("team", "bob", GUEST)
    await v2.image("team/a", "v1", [os.urandom(100)])
    await v2.image("team/b", "v1", [os.urandom(100)])
    r = await harbor.call("PUT", f"/quotas/{(await quota_of(harbor, 'team'))['id']}", json={"hard": {"storage": MiB}})
    assert r.status_code == 200
    usage = (await quota_of(harbor, "team"))["used"]["storage"]

    async def summary(who: tuple[str, str] | None, project: str = "team") -> dict[str, Any]:
        r = await harbor.call("GET", f"/projects/{project}/summary", who=who)
        assert r.status_code == 200, r.text
        check(r.json(), "ProjectSummary")
        return r.json()  # type: ignore[no-any-return]

    counts = {
        "project_admin_count": 1,
        "maintainer_count": 0,
        "developer_count": 0,
        "guest_count": 1,
        "limited_guest_count": 0,
    }
    # the project's admin (and the system's) see members and quota
    full = {"repo_count": 2, **counts, "quota": {"hard": {"storage": MiB}, "used": {"storage": usage}}}
    assert await summary(alice) == full
    assert await summary(ADMIN) == full
    # a guest sees the members, not the quota
    assert await summary(bob) == {"repo_count": 2, **counts}
    # others see nothing of a private project, not even that it exists; anyone sees a
    # public one's repositories
    assert await harbor.status("GET", "/projects/team/summary", who=carol) == 404
    assert await harbor.status("GET", "/projects/team/summary", who=None) == 404
    assert await summary(None, "open") == {"repo_count": 0}
    assert await summary(carol, "open") == {"repo_count": 0}
    team_id = (await quota_of(harbor, "team"))["id"]
    r = await harbor.call("GET", f"/projects/{team_id}/summary", who=alice)
    assert r.status_code == 200 and r.json() == full
    assert await harbor.status("GET", "/projects/nope/summary") == 404


async def test_a_deleted_projects_quota_goes_with_it(harbor: Harbor) -> None:
    team = await harbor.project("team")
    r = await harbor.call("PUT", f"/quotas/{team}", json={"hard": {"storage": MiB}})
    assert r.status_code == 200
    assert await harbor.status("DELETE", "/projects/team") == 200
    assert await harbor.status("GET", f"/quotas/{team}") == 404
    assert await harbor.status("PUT", f"/quotas/{team}", json={"hard": {"storage": MiB}}) == 404
    assert [q["ref"]["name"] for q in await _quotas(harbor)] == ["library"]
