"""What a caller may learn of accounts and projects it may not see, over live HTTP.

- A private project is, to whoever may not see it, answered exactly as a project that does
  not exist: on /v2 (Basic and token auth alike), in the management API, in HEAD probes.
- A wrong password costs as long for a name nobody has as for a user who exists, so the
  time an answer takes does not tell which names are taken.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.access.accounts import ADMIN, HIDDEN, PRINCIPALS
from tests.access.conftest import AclServer
from tests.access.flow import TokenFlow, describe, repo_scope

API = "/api/v2.0"
OUTSIDER = PRINCIPALS["outsider"]
MISSING = "nosuchproject"


def _same(a: httpx.Response, b: httpx.Response, name_a: str, name_b: str) -> None:
    """`a` (about `name_a`) and `b` (about `name_b`) say the same, names aside."""
    assert a.status_code == b.status_code, f"{describe(a)}\n{describe(b)}"
    assert a.text.replace(name_a, "NAME") == b.text.replace(name_b, "NAME"), f"{describe(a)}\n{describe(b)}"


@pytest.fixture
def outsider(acl: AclServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=acl.url, timeout=60, auth=(OUTSIDER.username or "", OUTSIDER.password or "")) as c:
        yield c


def test_head_probes_of_private_names(acl: AclServer, outsider: httpx.Client) -> None:
    with httpx.Client(base_url=acl.url, timeout=60) as anonymous:
        for c in (anonymous, outsider):
            hidden = c.head(f"{API}/projects", params={"project_name": HIDDEN})
            missing = c.head(f"{API}/projects", params={"project_name": MISSING})
            assert hidden.status_code == missing.status_code == 404, (describe(hidden), describe(missing))
    with httpx.Client(base_url=acl.url, timeout=60, auth=(ADMIN.username or "", ADMIN.password or "")) as admin:
        assert admin.head(f"{API}/projects", params={"project_name": HIDDEN}).status_code == 200
        # A member sees its private project, so it may know the name.
        member = PRINCIPALS["guest"]
    with httpx.Client(base_url=acl.url, timeout=60, auth=(member.username or "", member.password or "")) as c:
        assert c.head(f"{API}/projects", params={"project_name": "priv"}).status_code == 200


def test_management_answers_of_private_projects(acl: AclServer, outsider: httpx.Client) -> None:
    hidden_id = acl.seeded.project_ids[HIDDEN]
    for path in ("", "/summary", "/members", "/logs", "/repositories", "/repositories/seed/artifacts"):
        _same(
            outsider.get(f"{API}/projects/{HIDDEN}{path}"),
            outsider.get(f"{API}/projects/{MISSING}{path}"),
            HIDDEN,
            MISSING,
        )
    _same(outsider.get(f"{API}/projects/{hidden_id}"), outsider.get(f"{API}/projects/999999"), str(hidden_id), "999999")
    with httpx.Client(base_url=acl.url, timeout=60) as anonymous:
        _same(anonymous.get(f"{API}/projects/{HIDDEN}"), anonymous.get(f"{API}/projects/{MISSING}"), HIDDEN, MISSING)


def test_robots_of_private_projects_do_not_exist_for_strangers(acl: AclServer, outsider: httpx.Client) -> None:
    with httpx.Client(base_url=acl.url, timeout=60, auth=(ADMIN.username or "", ADMIN.password or "")) as admin:
        body = {
            "name": f"spy{uuid.uuid4().hex[:6]}",
            "level": "project",
            "duration": -1,
            "permissions": [
                {"kind": "project", "namespace": HIDDEN, "access": [{"resource": "repository", "action": "pull"}]}
            ],
        }
        r = admin.post(f"{API}/robots", json=body)
        assert r.status_code == 201, describe(r)
        robot_id = str(r.json()["id"])
    _same(outsider.get(f"{API}/robots/{robot_id}"), outsider.get(f"{API}/robots/987654"), robot_id, "987654")


def test_registry_answers_of_private_projects(acl: AclServer, outsider: httpx.Client) -> None:
    # Basic credentials on /v2
    for method, tail in (("GET", "/manifests/v1"), ("POST", "/blobs/uploads/"), ("GET", "/tags/list")):
        _same(
            outsider.request(method, f"/v2/{HIDDEN}/seed{tail}", headers={"content-length": "0"}),
            outsider.request(method, f"/v2/{MISSING}/seed{tail}", headers={"content-length": "0"}),
            HIDDEN,
            MISSING,
        )
    # Token auth: the token endpoint leaves both scopes out, and the registry says the same of both.
    with TokenFlow(acl.url, OUTSIDER) as flow:
        hidden_token = flow.token(repo_scope(f"{HIDDEN}/seed", "pull,push"))
        missing_token = flow.token(repo_scope(f"{MISSING}/seed", "pull,push"))
        for method, tail in (("GET", "/manifests/v1"), ("POST", "/blobs/uploads/")):
            _same(
                flow.http.request(method, f"/v2/{HIDDEN}/seed{tail}", headers=flow.bearer(hidden_token)),
                flow.http.request(method, f"/v2/{MISSING}/seed{tail}", headers=flow.bearer(missing_token)),
                HIDDEN,
                MISSING,
            )


def _timed(c: httpx.Client, username: str) -> float:
    start = time.perf_counter()
    r = c.get("/service/token", params={"service": "portside"}, auth=(username, "Not-The-Passw0rd"))
    elapsed = time.perf_counter() - start
    assert r.status_code == 401, describe(r)
    return elapsed


def test_unknown_users_cost_what_known_users_cost(acl: AclServer) -> None:
    """Not a speed test: the ratio of two medians taken in alternation, which load on the
    machine moves alike. A wrong password for a user who exists is checked with argon2
    (tens of milliseconds); a name nobody has must be checked as long."""
    known, unknown = [], []
    with httpx.Client(base_url=acl.url, timeout=60) as c:
        _timed(c, OUTSIDER.username or "")  # the first check of a process warms it up
        _timed(c, f"nobody-{uuid.uuid4().hex[:6]}")
        for _ in range(15):
            known.append(_timed(c, OUTSIDER.username or ""))
            unknown.append(_timed(c, f"nobody-{uuid.uuid4().hex[:6]}"))
    ratio = statistics.median(unknown) / statistics.median(known)
    # Before unknown names were checked, the ratio was about 0.1.
    assert ratio > 0.6, (ratio, known, unknown)
