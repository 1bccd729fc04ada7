"""Harbor's `q` and `sort` on every list, over live HTTP: exact (`k=v`), fuzzy (`k=~v`),
any of (`k={a b}`), all of (`k=(a b)`), ranges (`k=[a~b]`, either end open), several
conditions at once, unknown keys ignored, conditions that cannot be read refused."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.parity.conftest import DEVELOPER, GUEST, MAINTAINER, Live


def listed(live: Live, path: str, field: str = "name", **params: Any) -> list[Any]:
    return [item[field] for item in live.ok("GET", path, params=params)]


def test_users(live: Live) -> None:
    base = live.name("qu")
    for suffix in ("alpha", "alphabet", "beta"):
        r = live.api(
            "POST", "/users", json={"username": base + suffix, "password": "Passw0rd-1", "email": f"{suffix}@{base}.io"}
        )
        assert r.status_code == 201, r.text

    def users(**params: Any) -> list[str]:
        return listed(live, "/users", "username", page_size=100, **params)

    assert users(q=f"username={base}alpha") == [base + "alpha"]  # exact, not "contains"
    assert users(q=f"username=~{base}", sort="-username") == [base + "beta", base + "alphabet", base + "alpha"]
    assert users(q=f"username=~{base}", sort="username") == [base + "alpha", base + "alphabet", base + "beta"]
    assert users(q=f"username={{{base}alpha {base}beta}}", sort="username") == [base + "alpha", base + "beta"]
    assert users(q=f"username=({base}alpha {base}beta)") == []
    assert users(q=f"username=({base}alpha {base}alpha)") == [base + "alpha"]
    assert users(q=f"email=beta@{base}.io") == [base + "beta"]
    assert users(q=f"email=~@{base}.io,username=~eta") == [base + "beta"]
    assert users(q=f"username=~{base},creation_time=[~2000-01-01T00:00:00]") == []
    assert len(users(q=f"username=~{base},creation_time=[2000-01-01 00:00:00~]")) == 3
    # Unknown keys are ignored, as Harbor ignores them; an unknown sort key too.
    assert len(users(q=f"username=~{base},nickname=x", sort="shoe_size")) == 3
    for bad in ("username", "username=", "=x", "creation_time=[a~b~c]", "user_id=[~]", "username={a b"):
        assert live.api("GET", "/users", params={"q": bad}).status_code == 400, bad
    for bad in ("user_id=abc", "user_id=99999999999999999999", "creation_time=[99999999999999~]"):
        assert live.api("GET", "/users", params={"q": bad}).status_code == 400, bad
    r = live.api("GET", "/repositories", params={"q": "pull_count=[~99999999999999999999999]"})
    assert r.status_code == 400, r.text


def test_projects(live: Live) -> None:
    base = live.name("qp")
    ids = {suffix: live.project(base + suffix, public=suffix == "pub") for suffix in ("a", "b", "pub")}
    reader, _ = live.user()

    def projects(**params: Any) -> list[str]:
        return listed(live, "/projects", page_size=100, **params)

    assert projects(q=f"name={base}a") == [base + "a"]
    assert projects(q=f"name=~{base}", sort="-name") == [base + "pub", base + "b", base + "a"]
    assert projects(q=f"name={{{base}a {base}pub}}") == [base + "a", base + "pub"]
    assert projects(q=f"name=~{base},public=true") == [base + "pub"]
    assert projects(q=f"name=~{base},public=false") == [base + "a", base + "b"]
    assert projects(q=f"name=~{base},owner=admin") == [base + "a", base + "b", base + "pub"]
    assert projects(q=f"name=~{base},owner=nobody") == []
    assert projects(q=f"project_id=[{ids['b']}~{ids['pub']}]", sort="project_id") == [base + "b", base + "pub"]
    assert projects(q=f"name=~{base},project_id=[~{ids['a']}]") == [base + "a"]
    assert projects(name=base, sort="-creation_time") == [base + "pub", base + "b", base + "a"]
    # A stranger sees the public one only, whatever q asks for.
    with live.client(reader) as c:
        r = c.get("/api/v2.0/projects", params={"q": f"name={{{base}a {base}pub}}"})
    assert [p["name"] for p in r.json()] == [base + "pub"]


def test_members_and_robots(live: Live) -> None:
    project = live.name("qm")
    project_id = live.project(project)
    people = []
    for role in (DEVELOPER, GUEST, MAINTAINER):
        who, _ = live.user("qmu")
        live.member(project, who[0], role)
        people.append(who[0])
    path = f"/projects/{project}/members"
    assert listed(live, path, "entity_name", q=f"entity_name={people[0]}") == [people[0]]
    assert sorted(listed(live, path, "entity_name", q=f"role_id={{{DEVELOPER} {GUEST}}}")) == sorted(people[:2])
    assert listed(live, path, "entity_name", q=f"role_id=[{MAINTAINER}~]") == [people[2]]
    names = listed(live, path, "entity_name", sort="-entity_name")
    assert names == sorted(names, reverse=True) and len(names) == 4  # the admin is the owner

    robots = [live.robot(project, "pull") for _ in range(3)]
    query = f"Level=project,ProjectID={project_id}"
    assert sorted(listed(live, "/robots", q=query)) == sorted(r.name for r in robots)
    assert listed(live, "/robots", q=query, sort="-name") == sorted((r.name for r in robots), reverse=True)
    assert listed(live, "/robots", q=f"{query},name={robots[1].name}") == [robots[1].name]
    assert listed(live, "/robots", q=f"level=project,project_id={project_id},id=[{robots[1].id}~]", sort="id") == [
        robots[1].name,
        robots[2].name,
    ]
    assert listed(live, "/robots", q=f"{query},Level=system") == []
    assert live.api("GET", "/robots", params={"q": "ProjectID=abc"}).status_code == 400


def test_repositories_artifacts_and_tags(live: Live) -> None:
    project = live.name("qr")
    live.project(project)
    for name in ("red", "redder", "blue"):
        live.push(f"{project}/{name}", "v1")
    path = f"/projects/{project}/repositories"
    assert listed(live, path, q=f"name={project}/red") == [f"{project}/red"]
    assert listed(live, path, q="name=~RED", sort="name") == [f"{project}/red", f"{project}/redder"]
    assert listed(live, path, q=f"name={{{project}/red {project}/blue}}", sort="-name") == [
        f"{project}/red",
        f"{project}/blue",
    ]
    assert listed(live, path, sort="name") == [f"{project}/blue", f"{project}/red", f"{project}/redder"]
    assert listed(live, path) == [f"{project}/blue", f"{project}/redder", f"{project}/red"]  # newest first
    assert listed(live, path, q="pull_count=[1~]") == []
    project_id = live.ok("GET", f"/projects/{project}")["project_id"]
    assert sorted(listed(live, "/repositories", q=f"project_id={project_id}", page_size=100)) == [
        f"{project}/blue",
        f"{project}/red",
        f"{project}/redder",
    ]
    assert listed(live, "/repositories", q=f"project_id={project_id},name=~/redd", sort="name") == [f"{project}/redder"]

    repo = f"{project}/arts"
    first = live.push(repo, "v1")
    second = live.push(repo, "v1b")
    for tag in ("v2", "rc"):
        with live.client() as c:
            assert c.put(
                f"/v2/{repo}/manifests/{tag}", content=second.body, headers={"content-type": second.media_type}
            ).is_success
    untagged = live.push(repo, None)
    arts = f"{path}/arts/artifacts"

    def digests(**params: Any) -> set[str]:
        return set(listed(live, arts, "digest", **params))

    assert digests(q="tags=v1") == {first.digest}
    assert digests(q="tags={v1 v2}") == {first.digest, second.digest}
    assert digests(q="tags=(v1b rc)") == {second.digest}
    assert digests(q="tags=(v1 rc)") == set()
    assert digests(q="tags=nil") == {untagged.digest}
    assert digests(q="tags=*") == {first.digest, second.digest}
    assert digests(q="tags=~V1") == {first.digest, second.digest}
    assert digests(q=f"digest={second.digest}") == {second.digest}
    assert digests(q="tags%3Dnil") == {untagged.digest}  # Harbor's clients encode q twice
    assert listed(live, arts, "digest", sort="push_time") == [first.digest, second.digest, untagged.digest]
    assert listed(live, arts, "digest") == [untagged.digest, second.digest, first.digest]

    tags = f"{arts}/{second.digest}/tags"
    assert listed(live, tags) == ["rc", "v1b", "v2"]
    assert listed(live, tags, sort="-name") == ["v2", "v1b", "rc"]
    assert listed(live, tags, q="name=~v") == ["v1b", "v2"]
    assert listed(live, tags, q="name={rc v2}") == ["rc", "v2"]
    r = live.api("GET", tags, params={"page_size": 2, "page": 2, "sort": "name"})
    assert r.headers["X-Total-Count"] == "3" and [t["name"] for t in r.json()] == ["v2"]


def test_audit_logs_quotas_and_job_history(live: Live) -> None:
    project = live.name("qa")
    live.project(project)
    live.push(f"{project}/app", "v1")
    r = live.api("DELETE", f"/projects/{project}/repositories/app/artifacts/v1/tags/v1")
    assert r.status_code == 200, r.text
    logs = f"/projects/{project}/logs"
    assert listed(live, logs, "operation", q="resource_type=project") == ["create"]
    # The push's entry is written by the trail's background writer within about a second;
    # the tag deletion's at once.
    deadline = time.monotonic() + 10
    while len(exact := listed(live, logs, "operation", q=f"resource={project}/app:v1")) < 2:
        assert time.monotonic() < deadline, exact
        time.sleep(0.2)
    assert sorted(exact) == ["create", "delete"]
    assert listed(live, logs, "resource", q=f"resource={project}") == [project]  # exact, not "contains"
    assert set(listed(live, logs, "operation", q="operation={create delete}")) == {"create", "delete"}
    oldest = listed(live, logs, "resource_type", sort="op_time")
    assert oldest[0] == "project" and listed(live, logs, "resource_type", sort="-op_time") == oldest[::-1]
    assert listed(live, logs, "operation", q="op_time=[~2000-01-01 00:00:00]") == []
    everything = listed(live, "/audit-logs", "resource", q=f"resource=~{project},username=admin", page_size=100)
    assert project in everything

    r = live.api("GET", "/quotas", params={"sort": "-hard.storage,unknown"})
    assert r.status_code == 200

    r = live.api("POST", "/system/gc/schedule", json={"schedule": {"type": "Manual"}, "parameters": {"dry_run": True}})
    assert r.status_code in (201, 409), r.text
    deadline = time.monotonic() + 60
    while live.ok("GET", "/system/gc", params={"q": "job_status={Pending Running}"}):
        assert time.monotonic() < deadline, "GC did not finish"
        time.sleep(0.2)
    runs = live.ok("GET", "/system/gc", params={"q": "job_status={Success Error Stopped}", "sort": "creation_time"})
    assert runs and [j["id"] for j in runs] == sorted(j["id"] for j in runs)
    newest = live.ok("GET", "/system/gc", params={"sort": "-creation_time"})
    assert newest[0]["id"] == max(j["id"] for j in runs)
    assert live.api("GET", "/system/gc", params={"q": "job_status=Weird"}).status_code == 400
    assert live.ok("GET", "/system/gc", params={"q": f"id=[{newest[0]['id'] + 1}~]"}) == []


@pytest.mark.parametrize("path", ["/users", "/projects", "/robots", "/audit-logs", "/repositories", "/system/gc"])
def test_an_unknown_key_is_ignored_everywhere(live: Live, path: str) -> None:
    r = live.api("GET", path, params={"q": "no_such_key=1", "sort": "-no_such_field"})
    assert r.status_code == 200, r.text
