"""Tokens stop working when what they stood for changes, over live HTTP.

- A refresh token ends with its account's password change (by the user, an admin or the
  CLI), a robot's secret refresh, disabling and deletion.
- An access token is checked again on every request once accounts changed: a deleted
  user's or robot's token stops at once; a token for a project that was deleted reaches
  neither it nor a new project of the same name; a permission taken away is gone from it.
- Nothing is left behind: no repository is made in a deleted project.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.access.accounts import ADMIN, Principal
from tests.access.conftest import AclServer
from tests.access.flow import TokenFlow, describe, error_codes, parse_challenge, repo_scope
from tests.api import oci

API = "/api/v2.0"


def _name(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


@pytest.fixture
def admin(acl: AclServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=acl.url, timeout=60.0, auth=(ADMIN.username or "", ADMIN.password or "")) as c:
        yield c


@dataclass
class Account:
    id: int
    who: Principal


def _user(admin: httpx.Client, prefix: str = "rv") -> Account:
    name, password = _name(prefix), "Revoke-Passw0rd"
    r = admin.post(f"{API}/users", json={"username": name, "password": password, "email": f"{name}@example.com"})
    assert r.status_code == 201, describe(r)
    return Account(int(r.headers["location"].rsplit("/", 1)[1]), Principal(name, name, password))


def _project(client: httpx.Client, prefix: str = "rvp") -> tuple[str, int]:
    name = _name(prefix)
    r = client.post(f"{API}/projects", json={"project_name": name, "metadata": {"public": "false"}})
    assert r.status_code == 201, describe(r)
    return name, int(r.headers["location"].rsplit("/", 1)[1])


def _add_developer(admin: httpx.Client, project: str, account: Account) -> str:
    """Make `account` a developer of `project`; the membership's id."""
    r = admin.post(
        f"{API}/projects/{project}/members", json={"role_id": 2, "member_user": {"username": account.who.username}}
    )
    assert r.status_code == 201, describe(r)
    return str(r.headers["location"].rsplit("/", 1)[1])


def _push_token(acl: AclServer, who: Principal, project: str) -> str:
    with TokenFlow(acl.url, who) as flow:
        return flow.token(repo_scope(f"{project}/app", "pull,push"))


def _as(acl: AclServer, who: Principal) -> httpx.Client:
    return httpx.Client(base_url=acl.url, timeout=60.0, auth=(who.username or "", who.password or ""))


def _oauth(acl: AclServer, **form: str) -> httpx.Response:
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        return c.post("/service/token", data={"service": "portside", "client_id": "docker", **form})


def _refresh_token(acl: AclServer, who: Principal, scope: str) -> str:
    r = _oauth(
        acl,
        grant_type="password",
        username=who.username or "",
        password=who.password or "",
        scope=scope,
        access_type="offline",
    )
    assert r.status_code == 200, describe(r)
    return str(r.json()["refresh_token"])


def _refreshes(acl: AclServer, refresh: str, scope: str) -> bool:
    r = _oauth(acl, grant_type="refresh_token", refresh_token=refresh, scope=scope)
    if r.status_code == 200:
        return True
    assert r.status_code == 401 and "UNAUTHORIZED" in error_codes(r), describe(r)
    return False


def _start_upload(acl: AclServer, token: str, repo: str) -> httpx.Response:
    with httpx.Client(base_url=acl.url, timeout=30.0) as c:
        return c.post(f"/v2/{repo}/blobs/uploads/", headers={"Authorization": f"Bearer {token}", "content-length": "0"})


def _invalid_token(r: httpx.Response) -> None:
    assert r.status_code == 401, describe(r)
    assert parse_challenge(r.headers["www-authenticate"]).get("error") == "invalid_token", describe(r)
    assert "no longer valid" in r.json()["errors"][0]["message"], describe(r)


def _robot(admin: httpx.Client, project: str, actions: tuple[str, ...] = ("pull", "push")) -> tuple[int, Principal]:
    access: list[dict[str, Any]] = [{"resource": "repository", "action": a} for a in actions]
    r = admin.post(
        f"{API}/robots",
        json={
            "name": _name("ci"),
            "level": "project",
            "duration": -1,
            "permissions": [{"kind": "project", "namespace": project, "access": access}],
        },
    )
    assert r.status_code == 201, describe(r)
    body = r.json()
    return int(body["id"]), Principal(body["name"], body["name"], body["secret"], kind="robot")


# --------------------------------------------------------------------------- refresh tokens


def test_a_password_change_ends_the_refresh_tokens(acl: AclServer, admin: httpx.Client) -> None:
    account = _user(admin)
    project, project_id = _project(admin)
    _add_developer(admin, project, account)
    scope = repo_scope(f"{project}/app", "pull,push")

    # By the user, with the old password.
    refresh = _refresh_token(acl, account.who, scope)
    assert _refreshes(acl, refresh, scope)
    with _as(acl, account.who) as me:
        r = me.put(
            f"{API}/users/{account.id}/password",
            json={"old_password": account.who.password, "new_password": "Changed-Passw0rd"},
        )
        assert r.status_code == 200, describe(r)
    assert not _refreshes(acl, refresh, scope)
    account.who = Principal(account.who.key, account.who.username, "Changed-Passw0rd")

    # By an administrator.
    refresh = _refresh_token(acl, account.who, scope)
    r = admin.put(f"{API}/users/{account.id}/password", json={"new_password": "Admin-Set-Passw0rd"})
    assert r.status_code == 200, describe(r)
    assert not _refreshes(acl, refresh, scope)
    account.who = Principal(account.who.key, account.who.username, "Admin-Set-Passw0rd")

    # By the operator's CLI, in a process of its own on the same data directory.
    refresh = _refresh_token(acl, account.who, scope)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "portside",
            "user",
            "passwd",
            account.who.username or "",
            "--password-stdin",
            "--data-dir",
            str(acl.data_dir),
        ],
        input="Cli-Set-Passw0rd\n",
        text=True,
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert not _refreshes(acl, refresh, scope)
    # The new password gets a refresh token that works.
    account.who = Principal(account.who.key, account.who.username, "Cli-Set-Passw0rd")
    assert _refreshes(acl, _refresh_token(acl, account.who, scope), scope)
    assert project_id > 0


def test_a_robot_secret_refresh_disabling_and_deletion_end_its_refresh_tokens(
    acl: AclServer, admin: httpx.Client
) -> None:
    project, _ = _project(admin)
    robot_id, robot = _robot(admin, project)
    scope = repo_scope(f"{project}/app", "pull,push")

    refresh = _refresh_token(acl, robot, scope)
    r = admin.patch(f"{API}/robots/{robot_id}", json={})
    assert r.status_code == 200, describe(r)
    assert not _refreshes(acl, refresh, scope)
    robot = Principal(robot.key, robot.username, r.json()["secret"], kind="robot")

    refresh = _refresh_token(acl, robot, scope)
    current = admin.get(f"{API}/robots/{robot_id}").json()
    r = admin.put(f"{API}/robots/{robot_id}", json={**current, "disable": True})
    assert r.status_code == 200, describe(r)
    assert not _refreshes(acl, refresh, scope)
    # Enabled again, the robot signs in again; the token of before stays dead.
    r = admin.put(f"{API}/robots/{robot_id}", json={**current, "disable": False})
    assert r.status_code == 200, describe(r)
    assert not _refreshes(acl, refresh, scope)

    refresh = _refresh_token(acl, robot, scope)
    assert _refreshes(acl, refresh, scope)
    assert admin.delete(f"{API}/robots/{robot_id}").status_code == 200
    assert not _refreshes(acl, refresh, scope)


# --------------------------------------------------------------------------- access tokens


def test_a_deleted_users_token_stops_at_once(acl: AclServer, admin: httpx.Client) -> None:
    account = _user(admin)
    project, _ = _project(admin)
    _add_developer(admin, project, account)
    token = _push_token(acl, account.who, project)
    assert _start_upload(acl, token, f"{project}/app").status_code == 202
    assert admin.delete(f"{API}/users/{account.id}").status_code == 200
    _invalid_token(_start_upload(acl, token, f"{project}/app"))
    # A new user of the same name is another account: the old token is not theirs.
    again = admin.post(
        f"{API}/users",
        json={
            "username": account.who.username,
            "password": "Another-Passw0rd",
            "email": f"again-{account.who.username}@example.com",
        },
    )
    assert again.status_code == 201, describe(again)
    _add_developer(admin, project, account)
    _invalid_token(_start_upload(acl, token, f"{project}/app"))


def test_a_password_change_ends_the_access_tokens_too(acl: AclServer, admin: httpx.Client) -> None:
    account = _user(admin)
    project, _ = _project(admin)
    _add_developer(admin, project, account)
    token = _push_token(acl, account.who, project)
    assert admin.put(f"{API}/users/{account.id}/password", json={"new_password": "Reset-Passw0rd"}).status_code == 200
    _invalid_token(_start_upload(acl, token, f"{project}/app"))


def test_a_removed_member_loses_what_the_role_gave(acl: AclServer, admin: httpx.Client) -> None:
    account = _user(admin)
    project, _ = _project(admin)
    member_id = _add_developer(admin, project, account)
    token = _push_token(acl, account.who, project)
    assert _start_upload(acl, token, f"{project}/app").status_code == 202
    assert admin.put(f"{API}/projects/{project}/members/{member_id}", json={"role_id": 3}).status_code == 200
    r = _start_upload(acl, token, f"{project}/app")
    assert r.status_code == 401 and parse_challenge(r.headers["www-authenticate"]).get("error") == "insufficient_scope"
    with httpx.Client(base_url=acl.url, timeout=30) as c:  # a guest still pulls
        r = c.get(f"/v2/{project}/app/tags/list", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 404 and error_codes(r) == ["NAME_UNKNOWN"], describe(r)


def test_a_token_never_reaches_a_deleted_project_nor_its_successor(acl: AclServer, admin: httpx.Client) -> None:
    first, second = _user(admin, "owner"), _user(admin, "heir")
    with _as(acl, first.who) as owner:
        project, old_id = _project(owner)
        with TokenFlow(acl.url, first.who) as flow:
            token = flow.token(repo_scope(f"{project}/app", "pull,push"))
            # The project is deleted while the token lives (it holds nothing yet).
            assert owner.delete(f"{API}/projects/{project}").status_code == 200
            # A push with the token of before makes nothing: no orphan repository.
            with httpx.Client(base_url=acl.url, timeout=60.0, headers=flow.bearer(token)) as pusher:
                blob = oci.layer()
                r = pusher.post(
                    f"/v2/{project}/app/blobs/uploads/",
                    params={"digest": blob.digest},
                    content=blob.data,
                    headers={"content-type": "application/octet-stream"},
                )
                assert r.status_code == 403 and error_codes(r) == ["DENIED"], describe(r)
                assert f"project {project} does not exist" in r.json()["errors"][0]["message"]
    assert f"{project}/app" not in acl.repositories()

    # Someone else makes a project of the same name and pushes into it.
    with _as(acl, second.who) as heir:
        r = heir.post(f"{API}/projects", json={"project_name": project, "metadata": {"public": "false"}})
        assert r.status_code == 201, describe(r)
        assert int(r.headers["location"].rsplit("/", 1)[1]) != old_id
        oci.push_image(heir, f"{project}/app", "v1")
    # The first owner's token is for the project that was deleted: it reaches nothing here.
    with httpx.Client(base_url=acl.url, timeout=60.0, headers={"Authorization": f"Bearer {token}"}) as stale:
        r = stale.get(f"/v2/{project}/app/manifests/v1", headers={"Accept": oci.ACCEPT_ALL})
        assert r.status_code == 403 and error_codes(r) == ["DENIED"], describe(r)
        r = stale.post(f"/v2/{project}/app/blobs/uploads/", headers={"content-length": "0"})
        assert r.status_code == 403 and error_codes(r) == ["DENIED"], describe(r)
    assert acl.tags(f"{project}/app") == ["v1"]


def test_a_deleted_robots_token_does_not_push_into_a_new_project_of_the_same_name(
    acl: AclServer, admin: httpx.Client
) -> None:
    project, _ = _project(admin)
    _, robot = _robot(admin, project)
    with TokenFlow(acl.url, robot) as flow:
        token = flow.token(repo_scope(f"{project}/app", "pull,push"))
    assert _start_upload(acl, token, f"{project}/app").status_code == 202
    # Deleting the project deletes its robots; a project of the same name is made again.
    assert admin.delete(f"{API}/projects/{project}").status_code == 200
    _project_named(admin, project)
    _invalid_token(_start_upload(acl, token, f"{project}/app"))
    assert f"{project}/app" not in acl.repositories()


def _project_named(admin: httpx.Client, name: str) -> None:
    r = admin.post(f"{API}/projects", json={"project_name": name, "metadata": {"public": "false"}})
    assert r.status_code == 201, describe(r)
