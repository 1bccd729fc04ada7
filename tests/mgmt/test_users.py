"""Users: who may do what, Harbor's shapes, paging and error bodies."""

import pytest

from tests.mgmt.conftest import ADMIN, Harbor
from tests.mgmt.harbor_schema import check


async def test_admin_creates_and_lists_users_with_paging(harbor: Harbor) -> None:
    for i in range(12):
        await harbor.user(f"user{i:02d}")
    r = await harbor.call("GET", "/users", params={"page": 2, "page_size": 5})
    assert r.status_code == 200
    check(r.json(), "UserResp", array=True)
    assert r.headers["X-Total-Count"] == "13"
    assert len(r.json()) == 5
    link = r.headers["Link"]
    assert '</api/v2.0/users?page=1&page_size=5>; rel="prev"' in link
    assert '</api/v2.0/users?page=3&page_size=5>; rel="next"' in link
    r = await harbor.call("GET", "/users", params={"q": "username=~user1"})
    assert {u["username"] for u in r.json()} == {"user10", "user11"}


async def test_only_admins_manage_users(harbor: Harbor) -> None:
    alice, alice_id = await harbor.user("alice")
    _, bob_id = await harbor.user("bob")
    r = await harbor.call("POST", "/users", who=alice, json={"username": "eve", "password": "Passw0rd1"})
    assert r.status_code == 403
    assert r.json()["errors"][0]["code"] == "FORBIDDEN"
    check(r.json(), "Errors")
    r = await harbor.call("GET", "/users", who=None)
    assert r.status_code == 401 and r.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert await harbor.status("GET", "/users", who=alice) == 403
    assert await harbor.status("GET", f"/users/{bob_id}", who=alice) == 403
    assert await harbor.status("DELETE", f"/users/{bob_id}", who=alice) == 403
    assert await harbor.status("PUT", f"/users/{bob_id}/sysadmin", who=alice, json={"sysadmin_flag": True}) == 403
    r = await harbor.call("GET", f"/users/{alice_id}", who=alice)
    assert r.status_code == 200 and r.json()["username"] == "alice"
    check(r.json(), "UserResp")
    r = await harbor.call("GET", "/users/search", who=alice, params={"username": "bo"})
    assert r.status_code == 200
    check(r.json(), "UserSearchRespItem", array=True)
    assert r.json() == [{"user_id": bob_id, "username": "bob"}]
    assert await harbor.status("GET", "/users/search", who=None, params={"username": "bo"}) == 401


async def test_profile_password_sysadmin_delete(harbor: Harbor) -> None:
    alice, alice_id = await harbor.user("alice")
    r = await harbor.call("PUT", f"/users/{alice_id}", who=alice, json={"realname": "Alice A", "comment": "hi"})
    assert r.status_code == 200
    assert (await harbor.call("GET", "/users/current", who=alice)).json()["realname"] == "Alice A"
    # Her own change needs the old password, and Harbor's rules.
    r = await harbor.call("PUT", f"/users/{alice_id}/password", who=alice, json={"new_password": "Newpass123"})
    assert r.status_code == 403
    r = await harbor.call(
        "PUT", f"/users/{alice_id}/password", who=alice, json={"old_password": alice[1], "new_password": "weak"}
    )
    assert r.status_code == 400 and r.json()["errors"][0]["code"] == "BAD_REQUEST"
    r = await harbor.call(
        "PUT", f"/users/{alice_id}/password", who=alice, json={"old_password": alice[1], "new_password": "Newpass123"}
    )
    assert r.status_code == 200
    assert await harbor.status("GET", "/users/current", who=alice) == 401
    alice = ("alice", "Newpass123")
    assert await harbor.status("GET", "/users/current", who=alice) == 200
    # An admin sets another's password without the old one.
    r = await harbor.call("PUT", f"/users/{alice_id}/password", json={"new_password": "Adminset123"})
    assert r.status_code == 200
    alice = ("alice", "Adminset123")
    assert await harbor.status("PUT", f"/users/{alice_id}/sysadmin", json={"sysadmin_flag": True}) == 200
    assert await harbor.status("GET", "/users", who=alice) == 200
    assert await harbor.status("DELETE", f"/users/{alice_id}") == 200
    assert await harbor.status("GET", "/users/current", who=alice) == 401
    assert await harbor.status("GET", f"/users/{alice_id}") == 404


async def test_validation_errors_are_harbor_400s(harbor: Harbor) -> None:
    r = await harbor.call("POST", "/users", json={"username": "x"})
    assert r.status_code == 400
    check(r.json(), "Errors")
    assert r.json()["errors"][0]["code"] == "BAD_REQUEST"
    r = await harbor.call("GET", "/users", params={"page_size": 101})
    assert r.status_code == 400
    await harbor.user("dup")
    r = await harbor.call("POST", "/users", json={"username": "dup", "password": "Passw0rd1"})
    assert r.status_code == 409 and r.json()["errors"][0]["code"] == "CONFLICT"
    r = await harbor.call("GET", "/users/999")
    assert r.status_code == 404 and r.json()["errors"][0]["code"] == "NOT_FOUND"


async def test_openapi_and_docs(harbor: Harbor) -> None:
    r = await harbor.call("GET", "/openapi.json", who=None)
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/users" in paths and "/projects/{project_name_or_id}/members" in paths
    assert await harbor.status("GET", "/docs", who=None) == 200


@pytest.mark.login_failure_limit(3)
async def test_failed_logins_are_throttled(harbor: Harbor) -> None:
    statuses = [await harbor.status("GET", "/users/current", who=("admin", "wrong")) for _ in range(4)]
    assert statuses[0] == 401 and statuses[-1] == 429
    r = await harbor.call("GET", "/users/current", who=ADMIN)
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert r.json()["errors"][0]["code"] == "TOO_MANY_REQUESTS"
