"""The project pages on a live server: the list and its search, creating a project, a
project's summary, repositories and settings, and that a private project the visitor may
not see looks exactly like a missing one."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Portside
from tests.ui.pages import api, unique

API = "/api/v2.0"
ADMIN = ("admin", ADMIN_PASSWORD)
PASSWORD = "Passw0rd-ui-projects"
DEVELOPER = 2


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    running = Portside(
        data_dir=tmp_path_factory.mktemp("ui-projects") / "data",
        env={"PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"},
        open_registry=False,
    )
    running.start()
    yield running
    running.stop()


def new_user(server: Portside) -> tuple[str, str]:
    name = unique("u")
    r = api(server, "POST", "/users", json={"username": name, "password": PASSWORD, "email": f"{name}@example.com"})
    assert r.status_code == 201, r.text
    return (name, PASSWORD)


def new_project(server: Portside, public: bool, member: str | None = None) -> str:
    name = unique("p")
    r = api(server, "POST", "/projects", json={"project_name": name, "metadata": {"public": str(public).lower()}})
    assert r.status_code == 201, r.text
    if member:
        r = api(
            server,
            "POST",
            f"/projects/{name}/members",
            json={"role_id": DEVELOPER, "member_user": {"username": member}},
        )
        assert r.status_code == 201, r.text
    return name


class Browser:
    """A browser signed in through /c/login, holding the `sid` cookie and the CSRF token."""

    def __init__(self, server: Portside, who: tuple[str, str] | None):
        self.client = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False)
        self.csrf = ""
        if who is not None:
            r = self.client.post("/c/login", data={"principal": who[0], "password": who[1]})
            assert r.status_code == 200, r.text
            self.csrf = r.headers["X-Harbor-CSRF-Token"]

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return self.client.get(path, **kwargs)  # type: ignore[arg-type]

    def post(self, path: str, data: dict[str, str], csrf: bool = True) -> httpx.Response:
        return self.client.post(path, data={**data, **({"csrf_token": self.csrf} if csrf else {})})

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def anonymous(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, None)
    yield browser
    browser.close()


@pytest.fixture
def admin(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, ADMIN)
    yield browser
    browser.close()


def message_of(page: str) -> str:
    found = re.search(r'<p class="message">(.*?)</p>', page, re.S)
    assert found, page
    return found.group(1)


def test_anonymous_visitors_see_the_public_projects_and_not_the_private_ones(
    server: Portside, anonymous: Browser
) -> None:
    public, private = new_project(server, True), new_project(server, False)
    answer = anonymous.get("/projects", params={"page_size": 100})
    assert answer.status_code == 200
    assert f'href="/projects/{public}"' in answer.text and "badge public" in answer.text
    assert private not in answer.text
    assert "New project" not in answer.text  # only signed-in users create projects


def test_a_member_sees_their_private_project(server: Portside) -> None:
    who = new_user(server)
    private = new_project(server, False, member=who[0])
    browser = Browser(server, who)
    try:
        listing = browser.get("/projects", params={"q": private})
        assert f'href="/projects/{private}"' in listing.text and "badge private" in listing.text
        assert "Developer" in listing.text
        summary = browser.get(f"/projects/{private}")
        assert summary.status_code == 200
        assert 'aria-current="page">Summary' in summary.text
        host = server.url.split("://", 1)[1]
        for client in ("docker", "podman", "skopeo", "oras"):
            assert f"{client} " in summary.text
        assert f"docker push {host}/{private}/REPOSITORY:TAG" in summary.text
        assert 'data-copy="push-1"' in summary.text
        assert "Developer" in summary.text  # members by role: a developer may list them
    finally:
        browser.close()


def test_a_private_project_looks_missing_to_a_non_member(server: Portside) -> None:
    private = new_project(server, False)
    missing = unique("p")
    stranger = Browser(server, new_user(server))
    try:
        for browser in (stranger, Browser(server, None)):
            for tab in ("", "/repositories", "/settings", "/members", "/logs"):
                hidden = browser.get(f"/projects/{private}{tab}")
                absent = browser.get(f"/projects/{missing}{tab}")
                assert hidden.status_code == absent.status_code == 404, tab
                assert message_of(hidden.text) == message_of(absent.text).replace(missing, private)
                assert message_of(hidden.text) == f"project {private} not found"
            assert private not in browser.get("/projects", params={"page_size": 100}).text
            searched = browser.get("/projects", params={"q": private}).text  # the box repeats what was typed
            assert f"/projects/{private}" not in searched and 'class="empty"' in searched
    finally:
        stranger.close()


def test_creating_a_project_with_a_bad_name_shows_the_reason(admin: Browser) -> None:
    answer = admin.post("/projects", {"name": "Bad Name!"})
    assert answer.status_code == 400
    assert 'class="field-error" id="name-error"' in answer.text
    assert "invalid project name" in answer.text
    assert 'value="Bad Name!"' in answer.text


def test_creating_a_project_redirects_to_it_and_a_duplicate_is_refused(server: Portside, admin: Browser) -> None:
    name = unique("new")
    answer = admin.post("/projects", {"name": name, "public": "on", "storage_limit": "2"})
    assert answer.status_code == 303 and answer.headers["location"] == f"/projects/{name}"
    shown = admin.get(answer.headers["location"])
    assert shown.status_code == 200 and f"Project {name} created." in shown.text
    body = api(server, "GET", f"/projects/{name}").json()
    assert body["metadata"]["public"] == "true"
    quota = api(server, "GET", f"/projects/{name}/summary").json()["quota"]
    assert quota["hard"]["storage"] == 2 * 1024**3
    again = admin.post("/projects", {"name": name})
    assert again.status_code == 409 and "already exists" in again.text


def test_a_user_creates_a_project_and_may_not_choose_its_limit(server: Portside) -> None:
    browser = Browser(server, new_user(server))
    try:
        assert "storage_limit" not in browser.get("/projects").text
        name = unique("mine")
        assert browser.post("/projects", {"name": name}).status_code == 303
        refused = browser.post("/projects", {"name": unique("mine"), "storage_limit": "5"})
        assert refused.status_code == 403 and "storage_limit" in refused.text
        assert browser.post("/projects", {"name": unique("x")}, csrf=False).status_code == 403
    finally:
        browser.close()


def test_the_search_filters_and_htmx_gets_only_the_rows(server: Portside, admin: Browser) -> None:
    stem = unique("find")
    wanted, other = new_project(server, True), new_project(server, True)
    api(server, "POST", "/projects", json={"project_name": f"{stem}-a"})
    filtered = admin.get("/projects", params={"q": stem})
    assert f"{stem}-a" in filtered.text and wanted not in filtered.text and other not in filtered.text
    assert 'hx-trigger="input changed delay:250ms' in filtered.text
    rows = admin.get("/projects", params={"q": stem}, headers={"HX-Request": "true", "HX-Target": "rows"})
    assert rows.status_code == 200
    assert f"{stem}-a" in rows.text
    assert "<html" not in rows.text and "<header" not in rows.text and "<table>" in rows.text


def test_a_project_with_a_repository_is_not_deleted_and_says_why(server: Portside, admin: Browser) -> None:
    name = new_project(server, False)
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_image(registry, f"{name}/app", "v1")
    repositories = admin.get(f"/projects/{name}/repositories")
    assert repositories.status_code == 200
    assert f'href="/projects/{name}/repositories/app"' in repositories.text
    assert "sort=-pull_count" in repositories.text
    rows = admin.get(
        f"/projects/{name}/repositories", params={"q": "ap"}, headers={"HX-Request": "true", "HX-Target": "rows"}
    )
    assert "/repositories/app" in rows.text and "<header" not in rows.text
    assert "/repositories/app" not in admin.get(f"/projects/{name}/repositories", params={"q": "zzz"}).text
    settings = admin.get(f"/projects/{name}/settings")
    assert 'aria-current="page">Settings' in settings.text and f'action="/projects/{name}/delete"' in settings.text
    assert admin.post(f"/projects/{name}/delete", {}, csrf=False).status_code == 403
    refused = admin.post(f"/projects/{name}/delete", {})
    assert refused.status_code == 412
    assert "still has 1 repositories" in refused.text
    assert api(server, "GET", f"/projects/{name}").status_code == 200


def test_settings_change_the_project_and_an_empty_one_is_deleted(server: Portside, admin: Browser) -> None:
    name = new_project(server, False)
    saved = admin.post(f"/projects/{name}/settings", {"part": "access", "public": "on"})
    assert saved.status_code == 303
    assert api(server, "GET", f"/projects/{name}").json()["metadata"]["public"] == "true"
    limit = admin.post(f"/projects/{name}/settings", {"part": "quota", "storage_limit": "abc"})
    assert limit.status_code == 400 and "invalid storage limit" in limit.text
    deleted = admin.post(f"/projects/{name}/delete", {})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/projects"
    assert api(server, "GET", f"/projects/{name}").status_code == 404


def test_members_are_added_changed_and_removed(server: Portside, admin: Browser) -> None:
    name = new_project(server, False)
    who = new_user(server)
    assert admin.post(f"/projects/{name}/members", {"username": who[0], "role_id": "3"}).status_code == 303
    page = admin.get(f"/projects/{name}/members")
    assert who[0] in page.text
    member_id = re.search(rf"/projects/{name}/members/(\d+)/role", page.text)
    assert member_id
    changed = admin.post(f"/projects/{name}/members/{member_id.group(1)}/role", {"role_id": "4"})
    assert changed.status_code == 303
    roles = {m["entity_name"]: m["role_id"] for m in api(server, "GET", f"/projects/{name}/members").json()}
    assert roles[who[0]] == 4
    unknown = admin.post(f"/projects/{name}/members", {"username": unique("nobody"), "role_id": "2"})
    assert unknown.status_code == 404 and 'id="username-error"' in unknown.text
    assert admin.post(f"/projects/{name}/members/{member_id.group(1)}/remove", {}).status_code == 303
    assert who[0] not in admin.get(f"/projects/{name}/members").text
    logs = admin.get(f"/projects/{name}/logs", params={"operation": "create"})
    assert logs.status_code == 200 and "project_member" in logs.text


def test_the_pages_hold_no_inline_script_or_style(server: Portside, admin: Browser) -> None:
    name = new_project(server, True)
    for path in ("/projects", f"/projects/{name}", f"/projects/{name}/repositories", f"/projects/{name}/settings"):
        text = admin.get(path).text
        assert not re.search(r"<script(?![^>]*\bsrc=)", text), path
        assert "<style" not in text and " style=" not in text, path
