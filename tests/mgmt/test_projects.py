"""Projects and members: visibility per caller, Harbor's shapes, refusing deletes of non-empty projects."""

from tests.mgmt.conftest import Harbor
from tests.mgmt.harbor_schema import check


async def test_visibility_of_projects(harbor: Harbor) -> None:
    alice, _ = await harbor.user("alice")
    bob, _ = await harbor.user("bob")
    await harbor.project("alice-private", who=alice)
    await harbor.project("alice-public", public=True, who=alice)
    await harbor.project("bob-private", who=bob)

    async def names(who: tuple[str, str] | None, **params: str) -> set[str]:
        r = await harbor.call("GET", "/projects", who=who, params=params)
        assert r.status_code == 200, r.text
        check(r.json(), "Project", array=True)
        return {p["name"] for p in r.json()}

    assert await names(None) == {"library", "alice-public"}
    assert await names(alice) == {"library", "alice-public", "alice-private"}
    assert await names(bob) == {"library", "alice-public", "bob-private"}
    assert await names(bob, q="name=~alice") == {"alice-public"}
    assert await names(alice, owner="alice") == {"alice-public", "alice-private"}
    assert await names(harbor_admin := ("admin", "Admin12345"), public="false") == {"alice-private", "bob-private"}
    assert harbor_admin

    r = await harbor.call("GET", "/projects/alice-private", who=alice)
    assert r.status_code == 200
    check(r.json(), "Project")
    assert r.json()["metadata"]["public"] == "false" and r.json()["current_user_role_id"] == 1
    # To whoever may not see it, a private project does not exist.
    assert await harbor.status("GET", "/projects/alice-private", who=bob) == 404
    assert await harbor.status("GET", "/projects/alice-private", who=None) == 404
    assert await harbor.status("GET", "/projects/alice-public", who=None) == 200
    # Whether a name is taken is told to those who may see the project, and to no one else.
    assert await harbor.status("HEAD", "/projects", who=None, params={"project_name": "bob-private"}) == 404
    assert await harbor.status("HEAD", "/projects", who=alice, params={"project_name": "bob-private"}) == 404
    assert await harbor.status("HEAD", "/projects", who=bob, params={"project_name": "bob-private"}) == 200
    assert await harbor.status("HEAD", "/projects", params={"project_name": "bob-private"}) == 200
    assert await harbor.status("HEAD", "/projects", who=None, params={"project_name": "nope"}) == 404


async def test_create_update_delete(harbor: Harbor) -> None:
    alice, _ = await harbor.user("alice")
    bob, _ = await harbor.user("bob")
    assert await harbor.status("POST", "/projects", who=None, json={"project_name": "x"}) == 401
    r = await harbor.call("POST", "/projects", who=alice, json={"project_name": "Bad Name"})
    assert r.status_code == 400
    pid = await harbor.project("team", who=alice)
    assert await harbor.status("POST", "/projects", who=alice, json={"project_name": "team"}) == 409
    r = await harbor.call("PUT", f"/projects/{pid}", who=bob, json={"metadata": {"public": "true"}})
    assert r.status_code == 404
    r = await harbor.call("PUT", f"/projects/{pid}", who=alice, json={"metadata": {"public": "true"}})
    assert r.status_code == 200
    r = await harbor.call("GET", "/projects/team", who=None, headers={"X-Is-Resource-Name": "true"})
    assert r.json()["metadata"]["public"] == "true"
    await harbor.push("team/app", "v1")
    r = await harbor.call("DELETE", "/projects/team", who=alice)
    assert r.status_code == 412 and r.json()["errors"][0]["code"] == "PRECONDITION"
    assert await harbor.status("DELETE", "/projects/team/repositories/app", who=alice) == 200
    assert await harbor.status("DELETE", "/projects/team", who=bob) == 403
    assert await harbor.status("DELETE", "/projects/team", who=alice) == 200
    assert await harbor.status("GET", f"/projects/{pid}") == 404


async def test_members(harbor: Harbor) -> None:
    alice, _ = await harbor.user("alice")
    bob, bob_id = await harbor.user("bob")
    carol, _ = await harbor.user("carol")
    await harbor.project("team", who=alice)
    r = await harbor.call(
        "POST", "/projects/team/members", who=bob, json={"role_id": 2, "member_user": {"username": "bob"}}
    )
    assert r.status_code == 404
    r = await harbor.call(
        "POST", "/projects/team/members", who=alice, json={"role_id": 3, "member_user": {"user_id": bob_id}}
    )
    assert r.status_code == 201
    mid = int(r.headers["Location"].rsplit("/", 1)[1])
    r = await harbor.call(
        "POST", "/projects/team/members", who=alice, json={"role_id": 3, "member_user": {"user_id": bob_id}}
    )
    assert r.status_code == 409
    r = await harbor.call("GET", "/projects/team/members", who=bob)
    assert r.status_code == 200
    check(r.json(), "ProjectMemberEntity", array=True)
    assert {(m["entity_name"], m["role_name"]) for m in r.json()} == {("alice", "projectAdmin"), ("bob", "guest")}
    r = await harbor.call("GET", "/projects/team/members", who=alice, params={"entityname": "bo"})
    assert [m["entity_name"] for m in r.json()] == ["bob"]
    assert await harbor.status("GET", "/projects/team/members", who=carol) == 404
    r = await harbor.call("GET", f"/projects/team/members/{mid}", who=alice)
    check(r.json(), "ProjectMemberEntity")
    assert await harbor.status("PUT", f"/projects/team/members/{mid}", who=bob, json={"role_id": 1}) == 403
    assert await harbor.status("PUT", f"/projects/team/members/{mid}", who=alice, json={"role_id": 9}) == 400
    assert await harbor.status("PUT", f"/projects/team/members/{mid}", who=alice, json={"role_id": 4}) == 200
    assert (await harbor.call("GET", f"/projects/team/members/{mid}", who=bob)).json()["role_id"] == 4
    assert await harbor.status("DELETE", f"/projects/team/members/{mid}", who=alice) == 200
    assert await harbor.status("GET", "/projects/team", who=bob) == 404
