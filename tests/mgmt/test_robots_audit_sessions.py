"""Robots (no escalation, secret once), the audit log per caller, web sessions with CSRF and TOTP."""

import time

import pyotp

from tests.mgmt.conftest import API, Harbor
from tests.mgmt.harbor_schema import check


def _robot(name: str, project: str, *access: tuple[str, str], level: str = "project") -> dict[str, object]:
    return {
        "name": name,
        "level": level,
        "duration": -1,
        "permissions": [
            {"kind": "project", "namespace": project, "access": [{"resource": r, "action": a} for r, a in access]}
        ],
    }


async def test_robots(harbor: Harbor) -> None:
    alice, _ = await harbor.user("alice")
    bob, _ = await harbor.user("bob")
    pid = await harbor.project("team", who=alice)
    await harbor.member("team", "bob", 2)  # developer
    body = _robot("ci", "team", ("repository", "pull"), ("repository", "push"))
    assert await harbor.status("POST", "/robots", who=bob, json=body) == 403
    r = await harbor.call("POST", "/robots", who=alice, json=body)
    assert r.status_code == 201, r.text
    check(r.json(), "RobotCreated")
    created = r.json()
    assert created["name"] == "robot$team+ci" and created["expires_at"] == -1
    robot = (created["name"], created["secret"])
    # No escalation: a system robot needs an admin.
    system = {**_robot("sys", "*", ("repository", "pull")), "level": "system"}
    assert await harbor.status("POST", "/robots", who=alice, json=system) == 403
    assert await harbor.status("POST", "/robots", json=system) == 201
    r = await harbor.call("GET", f"/robots/{created['id']}", who=alice)
    check(r.json(), "Robot")
    assert "secret" not in r.json()
    r = await harbor.call("GET", "/robots", who=alice, params={"q": f"Level=project,ProjectID={pid}"})
    check(r.json(), "Robot", array=True)
    assert [x["name"] for x in r.json()] == ["robot$team+ci"]
    assert await harbor.status("GET", "/robots", who=alice) == 403
    r = await harbor.call("GET", "/robots", params={"q": "Level=system"})
    assert [x["name"] for x in r.json()] == ["robot$sys"]
    # The robot signs in with its secret and sees what its permissions allow.
    assert await harbor.status("GET", "/projects/team/repositories", who=robot) == 403
    await harbor.push("team/app", "v1", who=robot)
    r = await harbor.call("PATCH", f"/robots/{created['id']}", who=alice, json={})
    check(r.json(), "RobotSec")
    assert await harbor.status("GET", "/projects/team", who=robot) == 401
    robot = (created["name"], r.json()["secret"])
    update = {**_robot("ci", "team", ("repository", "pull")), "disable": True}
    assert await harbor.status("PUT", f"/robots/{created['id']}", who=alice, json=update) == 200
    assert (await harbor.call("GET", f"/robots/{created['id']}", who=alice)).json()["disable"] is True
    assert await harbor.status("DELETE", f"/robots/{created['id']}", who=bob) == 403
    assert await harbor.status("DELETE", f"/robots/{created['id']}", who=alice) == 200


async def test_audit_log_visibility(harbor: Harbor) -> None:
    alice, _ = await harbor.user("alice")
    bob, _ = await harbor.user("bob")
    await harbor.project("apple", who=alice)
    await harbor.project("banana", who=bob)
    r = await harbor.call("GET", "/audit-logs", params={"q": "operation=create,resource_type=project"})
    check(r.json(), "AuditLog", array=True)
    assert {x["resource"] for x in r.json()} >= {"apple", "banana"}
    r = await harbor.call("GET", "/audit-logs", who=alice, params={"page_size": 100})
    assert {x["resource"] for x in r.json()} == {"apple"}
    r = await harbor.call("GET", "/audit-logs", who=alice, params={"q": "username=bob"})
    assert r.json() == []
    assert await harbor.status("GET", "/audit-logs", who=None) == 401
    r = await harbor.call("GET", "/projects/apple/logs", who=alice)
    check(r.json(), "AuditLog", array=True)
    assert [x["operation"] for x in r.json()] == ["create"]
    assert await harbor.status("GET", "/projects/apple/logs", who=bob) == 404
    r = await harbor.call("GET", "/audit-logs", params={"q": "op_time=[2000-01-01 00:00:00~2001-01-01 00:00:00]"})
    assert r.json() == []


async def test_session_login_csrf_and_totp(harbor: Harbor) -> None:
    alice, alice_id = await harbor.user("alice")
    c = harbor.client
    r = await c.post("/c/login", data={"principal": "alice", "password": "wrong"})
    assert r.status_code == 401
    r = await c.post("/c/login", data={"principal": "alice", "password": alice[1]})
    assert r.status_code == 200 and "sid" in c.cookies
    token = r.headers["X-Harbor-CSRF-Token"]
    r = await c.get(f"{API}/users/current")
    assert r.status_code == 200 and r.json()["username"] == "alice"
    assert r.headers["X-Harbor-CSRF-Token"] == token
    assert (await c.post(f"{API}/projects", json={"project_name": "mine"})).status_code == 403
    r = await c.post(f"{API}/projects", json={"project_name": "mine"}, headers={"X-Harbor-CSRF-Token": token})
    assert r.status_code == 201
    # TOTP: start, confirm, then sign-in needs a code.
    r = await c.post(f"{API}/users/current/totp", headers={"X-Harbor-CSRF-Token": token})
    secret = r.json()["secret"]
    assert r.json()["uri"].startswith("otpauth://totp/")
    r = await c.put(f"{API}/users/current/totp", json={"code": "000000"}, headers={"X-Harbor-CSRF-Token": token})
    assert r.status_code == 400
    code = pyotp.TOTP(secret).now()
    r = await c.put(f"{API}/users/current/totp", json={"code": code}, headers={"X-Harbor-CSRF-Token": token})
    assert r.status_code == 200
    assert (await c.get("/c/log_out")).status_code == 200
    assert (await c.get(f"{API}/users/current")).status_code == 401
    r = await c.post("/c/login", data={"principal": "alice", "password": alice[1]})
    assert r.status_code == 401
    # The code that confirmed it was used: the next step's code (within the drift allowed) signs in.
    r = await c.post("/c/login", data={"principal": "alice", "password": alice[1], "totp": code})
    assert r.status_code == 401
    later = pyotp.TOTP(secret).at(time.time() + 30)
    r = await c.post("/c/login", data={"principal": "alice", "password": alice[1], "totp": later})
    assert r.status_code == 200
    # Basic auth (registry clients, scripts) is not affected by TOTP.
    c.cookies.clear()
    assert await harbor.status("GET", "/users/current", who=alice) == 200
