"""The endpoints Harbor's tools call first, over live HTTP: /health, /ping, /systeminfo
(and volumes), /statistics, /search and /users/current/permissions, each checked
against the swagger's definitions and for what it must not tell."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mgmt.harbor_schema import check
from tests.parity.conftest import ADMIN, API, DEVELOPER, GUEST, MAINTAINER, Live
from tests.servers import Portside
from tests.stacks import Backing

ANONYMOUS_INFO = {"auth_mode", "primary_auth_mode", "self_registration", "banner_message"}


def test_health_and_ping(live: Live, stack: str) -> None:
    with httpx.Client(base_url=live.url) as anonymous:
        r = anonymous.get(f"{API}/health")
        assert r.status_code == 200
        check(r.json(), "OverallHealthStatus")
        expected = {"database", "storage"} | ({"redis"} if stack == "scaled" else set())
        # No vulnerability database was imported into this server: its component says so,
        # and the registry, which serves without one, stays healthy.
        scanner = {
            "name": "vulnerability-database",
            "status": "unhealthy",
            "error": "no vulnerability database imported: run `portside vulndb import`",
        }
        assert r.json() == {
            "status": "healthy",
            "components": sorted(
                [{"name": n, "status": "healthy"} for n in expected] + [scanner], key=lambda c: c["name"]
            ),
        }
        for headers in ({}, {"Authorization": "Basic bm90OnJpZ2h0"}):
            r = anonymous.get(f"{API}/ping", headers=headers)
            assert r.status_code == 200 and r.text == "Pong", r.text
            assert r.headers["content-type"].startswith("text/plain")


@pytest.fixture
def own_server(tmp_path: Path, stack: str, backing: Backing) -> Iterator[Portside]:
    server = Portside(data_dir=tmp_path / "data", env=backing.env(stack), open_registry=False)
    server.start()
    yield server
    server.stop()


def test_health_reports_what_readiness_says(own_server: Portside, stack: str) -> None:
    if stack != "fs":
        pytest.skip("a storage failure is staged on the filesystem store")
    uploads = own_server.data_dir / "uploads"
    moved = own_server.data_dir / "uploads-away"
    shutil.move(uploads, moved)
    try:
        with httpx.Client(base_url=own_server.url) as c:
            health = c.get(f"{API}/health")
            ready = c.get("/readyz")
    finally:
        shutil.move(moved, uploads)
    assert health.status_code == 200 and ready.status_code == 503
    check(health.json(), "OverallHealthStatus")
    body = health.json()
    assert body["status"] == "unhealthy"
    storage = next(c for c in body["components"] if c["name"] == "storage")
    assert storage["status"] == "unhealthy" and storage["error"]
    assert ready.json()["checks"]["storage"] == f"failed: {storage['error']}"
    assert next(c for c in body["components"] if c["name"] == "database") == {"name": "database", "status": "healthy"}
    with httpx.Client(base_url=own_server.url) as c:
        assert c.get(f"{API}/health").json()["status"] == "healthy"


def test_systeminfo_and_volumes(live: Live, stack: str) -> None:
    anonymous = live.ok("GET", "/systeminfo", who=None)
    check(anonymous, "GeneralInfo")
    assert set(anonymous) == ANONYMOUS_INFO
    assert anonymous["auth_mode"] == "db_auth" and anonymous["self_registration"] is False

    user, _ = live.user()
    for who in (user, ADMIN):
        info = live.ok("GET", "/systeminfo", who=who)
        check(info, "GeneralInfo")
        assert info["registry_url"] == live.server.host
        assert info["external_url"] == live.url
        assert info["harbor_version"].startswith("v") and "portside" in info["harbor_version"]
        assert info["project_creation_restriction"] == "everyone"
        assert info["read_only"] is False and info["has_ca_root"] is False
        assert info["registry_storage_provider_name"] == ("filesystem" if stack == "fs" else "s3")
        assert info["current_time"].endswith("Z")

    volumes = live.ok("GET", "/systeminfo/volumes")
    check(volumes, "SystemInfo")
    if stack == "fs":
        [disk] = volumes["storage"]
        assert disk["total"] >= disk["free"] > 0
    else:
        assert volumes["storage"] == []  # an object store has no disk to report
    assert live.api("GET", "/systeminfo/volumes", who=user).status_code == 403
    assert live.api("GET", "/systeminfo/volumes", who=None).status_code == 401


def _total(live: Live, path: str, who: tuple[str, str] | None = ADMIN, **params: Any) -> int:
    r = live.api("GET", path, who=who, params={"page_size": 1, **params})
    assert r.status_code == 200, r.text
    return int(r.headers["X-Total-Count"])


def test_statistics(live: Live) -> None:
    member, _ = live.user()
    private, public, hidden = live.name("sp"), live.name("so"), live.name("sh")
    live.project(private)
    live.project(public, public=True)
    live.project(hidden)
    live.member(private, member[0], GUEST)
    for repo in (f"{private}/a", f"{private}/b", f"{public}/c", f"{hidden}/d"):
        live.push(repo)

    assert live.api("GET", "/statistics", who=None).status_code == 401
    mine = live.ok("GET", "/statistics", who=member)
    check(mine, "Statistic")
    assert set(mine) == {"private_project_count", "private_repo_count", "public_project_count", "public_repo_count"}
    assert mine["private_project_count"] == 1 and mine["private_repo_count"] == 2
    assert mine["public_project_count"] == _total(live, "/projects", member, q="public=true")
    assert mine["public_repo_count"] + 2 == _total(live, "/repositories", member)

    everything = live.ok("GET", "/statistics")
    check(everything, "Statistic")
    assert everything["total_project_count"] == _total(live, "/projects")
    assert everything["public_project_count"] == _total(live, "/projects", q="public=true")
    assert everything["private_project_count"] == everything["total_project_count"] - everything["public_project_count"]
    assert everything["total_repo_count"] == _total(live, "/repositories")
    assert everything["private_repo_count"] == everything["total_repo_count"] - everything["public_repo_count"]
    assert everything["total_storage_consumption"] > 0


def test_search_shows_nothing_private_to_those_who_may_not_see_it(live: Live) -> None:
    needle = live.name("needle")
    secret, other, open_ = f"{needle}-secret", f"{needle}-other", f"{needle}-open"
    live.project(secret)
    live.project(other)
    live.project(open_, public=True)
    live.push(f"{secret}/app")
    live.push(f"{open_}/lib")
    live.push(f"{other}/tool")
    insider, _ = live.user()
    live.member(secret, insider[0], GUEST)
    neighbour, _ = live.user()  # a member of another project
    live.member(other, neighbour[0], DEVELOPER)
    stranger, _ = live.user()
    robot = live.robot(other, "pull", "list")

    def found(who: tuple[str, str] | None) -> tuple[set[str], set[str]]:
        body = live.ok("GET", "/search", who=who, params={"q": needle})
        check(body, "Search")
        return {p["name"] for p in body["project"]}, {r["repository_name"] for r in body["repository"]}

    assert found(ADMIN) == ({secret, other, open_}, {f"{secret}/app", f"{open_}/lib", f"{other}/tool"})
    assert found(insider) == ({secret, open_}, {f"{secret}/app", f"{open_}/lib"})
    assert found(neighbour) == ({other, open_}, {f"{other}/tool", f"{open_}/lib"})
    for who in (stranger, None):
        assert found(who) == ({open_}, {f"{open_}/lib"}), who
    projects, repositories = found(robot.creds)
    assert secret not in projects and not any(r.startswith(secret) for r in repositories)
    assert f"{other}/tool" in repositories
    body = live.ok("GET", "/search", who=insider, params={"q": needle})
    [app] = [r for r in body["repository"] if r["repository_name"] == f"{secret}/app"]
    assert app["project_name"] == secret and app["project_public"] is False and app["artifact_count"] == 1


def test_current_permissions(live: Live) -> None:
    project = live.name("pp")
    project_id = live.project(project)
    guest, _ = live.user()
    developer, _ = live.user()
    maintainer, _ = live.user()
    stranger, _ = live.user()
    live.member(project, guest[0], GUEST)
    live.member(project, developer[0], DEVELOPER)
    live.member(project, maintainer[0], MAINTAINER)
    robot = live.robot(project, "pull")

    def held(who: tuple[str, str] | None, scope: str, relative: bool = True) -> set[tuple[str, str]]:
        r = live.api("GET", "/users/current/permissions", who=who, params={"scope": scope, "relative": relative})
        assert r.status_code == 200, r.text
        check(r.json(), "Permission", array=True)
        return {(p["resource"], p["action"]) for p in r.json()}

    scope = f"/project/{project_id}"
    assert ("repository", "pull") in held(guest, scope) and ("repository", "push") not in held(guest, scope)
    assert ("repository", "push") in held(developer, scope) and ("artifact", "delete") not in held(developer, scope)
    assert {("artifact", "delete"), ("tag", "delete")} <= held(maintainer, scope)
    assert ("member", "create") not in held(maintainer, scope)
    assert {("member", "create"), ("project", "delete")} <= held(ADMIN, scope)
    assert held(guest, scope) < held(developer, scope) < held(maintainer, scope) < held(ADMIN, scope)
    assert (f"{scope}/repository", "pull") in held(guest, scope, relative=False)
    assert held(guest, f"/project/{project}") == held(guest, scope)  # by name as by id
    assert held(guest, f"{scope}/repository") == {(".", "read"), (".", "list"), (".", "pull")}
    assert held(robot.creds, scope) == {("repository", "pull"), ("artifact", "read"), ("artifact", "list")}
    # Nothing for those who may not see the project, nor for a project that does not exist.
    assert held(stranger, scope) == set()
    assert held(stranger, "/project/999999999") == held(stranger, "/project/99999999999999999999") == set()

    assert ("user", "create") in held(ADMIN, "/system") and ("volumes", "read") in held(ADMIN, "/system")
    assert held(developer, "/system") == set()
    assert held(developer, "") == set()
    assert live.api("GET", "/users/current/permissions", who=None, params={"scope": scope}).status_code == 401
