"""Pushing into a project that does not exist: refused with DENIED naming the project,
unless the configuration lets the admin's push create it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from portside.meta.sql.accounts import SqlAccounts
from tests.access.accounts import ADMIN, PRINCIPALS, create_user, project_exists, run_store
from tests.access.conftest import AclServer, start_portside
from tests.access.flow import TokenFlow, access_set, describe, error_codes, jwt_claims, repo_scope
from tests.api import oci
from tests.servers import Portside


def _denied_naming(r: httpx.Response, project: str) -> None:
    assert r.status_code == 403, describe(r)
    assert "DENIED" in error_codes(r), describe(r)
    messages = " ".join(e["message"] for e in r.json()["errors"])
    assert re.search(rf"\bproject\b.*\b{project}\b", messages, re.I), (
        f"the message does not name the project: {describe(r)}"
    )


def test_admin_push_into_missing_project_is_denied_naming_it_basic(acl: AclServer) -> None:
    with acl.admin() as c:
        r = c.post("/v2/nosuchproj/app/blobs/uploads/", headers={"content-length": "0"})
        _denied_naming(r, "nosuchproj")
    assert not project_exists(acl.data_dir, "nosuchproj")
    assert "nosuchproj/app" not in acl.repositories()


def test_admin_push_into_missing_project_is_denied_naming_it_token(acl: AclServer) -> None:
    with TokenFlow(acl.url, ADMIN) as flow:
        token = flow.token(repo_scope("nosuchproj2/app", "pull,push"))
        assert access_set(jwt_claims(token)) == set()
        r = flow.http.post("/v2/nosuchproj2/app/blobs/uploads/", headers={**flow.bearer(token), "content-length": "0"})
        _denied_naming(r, "nosuchproj2")
    assert not project_exists(acl.data_dir, "nosuchproj2")


def test_user_push_into_missing_project_is_refused(acl: AclServer) -> None:
    dev = PRINCIPALS["developer"]
    with TokenFlow(acl.url, dev) as flow:
        token = flow.token(repo_scope("nosuchproj3/app", "pull,push"))
        assert access_set(jwt_claims(token)) == set()
        r = flow.http.post("/v2/nosuchproj3/app/blobs/uploads/", headers={**flow.bearer(token), "content-length": "0"})
        assert r.status_code in (401, 403), describe(r)
    assert not project_exists(acl.data_dir, "nosuchproj3")


@pytest.fixture(scope="module")
def creating(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    server = start_portside(
        tmp_path_factory.mktemp("creating") / "data",
        {"PORTSIDE_ADMIN_CREATES_PROJECTS": "true", "PORTSIDE_LOGIN_FAILURE_LIMIT": "1000"},
    )
    try:
        yield server
    finally:
        server.stop()


def _project_public(data_dir: Path, name: str) -> bool | None:
    async def work(store: SqlAccounts) -> bool | None:
        project = await store.get_project(name)
        return None if project is None else project.public

    return run_store(data_dir, work)


def test_admin_push_creates_missing_project_when_configured(creating: Portside) -> None:
    data_dir = Path(creating.data_dir)
    with TokenFlow(creating.url, ADMIN) as flow:
        token = flow.token(repo_scope("autoproj/app", "pull,push"))
        assert access_set(jwt_claims(token)) == {
            ("repository", "autoproj/app", "pull"),
            ("repository", "autoproj/app", "push"),
        }
        flow.http.headers.update(flow.bearer(token))
        manifest = oci.push_image(flow.http, "autoproj/app", "v1")
    # created private, owned by the admin; the image is there
    assert _project_public(data_dir, "autoproj") is False
    with httpx.Client(base_url=creating.url, auth=(ADMIN.username or "", ADMIN.password or "")) as c:
        r = c.get("/v2/autoproj/app/manifests/v1", headers={"Accept": oci.ACCEPT_ALL})
        assert r.status_code == 200 and r.headers["docker-content-digest"] == manifest.digest, describe(r)
        # Basic on /v2 creates too
        oci.push_image(c, "autoproj-basic/app", "v1")
    assert _project_public(data_dir, "autoproj-basic") is False
    # a pull of a missing project does not create it
    with TokenFlow(creating.url, ADMIN) as flow:
        token = flow.token(repo_scope("pullonly/app", "pull"))
        assert access_set(jwt_claims(token)) == set()
    assert not project_exists(data_dir, "pullonly")


def test_non_admin_push_does_not_create_projects(creating: Portside) -> None:
    data_dir = Path(creating.data_dir)
    create_user(data_dir, "creator-dev", "Passw0rd-dev")
    with httpx.Client(base_url=creating.url, timeout=30.0) as c:
        r = c.get(
            "/service/token",
            params={"service": "portside", "scope": "repository:devproj/app:pull,push"},
            auth=("creator-dev", "Passw0rd-dev"),
        )
        assert r.status_code == 200, describe(r)
        assert access_set(jwt_claims(r.json()["token"])) == set()
        r = c.post(
            "/v2/devproj/app/blobs/uploads/", auth=("creator-dev", "Passw0rd-dev"), headers={"content-length": "0"}
        )
        assert r.status_code == 403 and "DENIED" in error_codes(r), describe(r)
    assert not project_exists(data_dir, "devproj")
