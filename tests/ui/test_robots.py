"""A project's Robots tab on a live server: creating a robot with the permission matrix, its
secret shown once (and only in the answer to the form), signing in with it to the registry
and pushing or pulling as the matrix says, refreshing the secret, disabling, enabling and
deleting; a guest member sees the list without controls and a forged form changes
nothing; a private project's robots are missing for everyone else."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.access.accounts import Principal
from tests.access.flow import TokenFlow
from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Portside
from tests.ui.pages import api, csrf_of, unique

API = "/api/v2.0"
ADMIN = ("admin", ADMIN_PASSWORD)
PASSWORD = "Passw0rd-ui-robots"
GUEST = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    running = Portside(
        data_dir=tmp_path_factory.mktemp("ui-robots") / "data",
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


def new_project(server: Portside, public: bool = False, guest: str | None = None) -> tuple[str, int]:
    name = unique("p")
    r = api(server, "POST", "/projects", json={"project_name": name, "metadata": {"public": str(public).lower()}})
    assert r.status_code == 201, r.text
    if guest:
        r = api(
            server, "POST", f"/projects/{name}/members", json={"role_id": GUEST, "member_user": {"username": guest}}
        )
        assert r.status_code == 201, r.text
    return name, int(api(server, "GET", f"/projects/{name}").json()["project_id"])


class Browser:
    """A browser signed in through the sign-in page; its forms carry the page's CSRF token."""

    def __init__(self, server: Portside, who: tuple[str, str] | None):
        self.client = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False)
        self.csrf = ""
        if who is not None:
            form = self.client.get("/sign-in")
            signed = self.client.post(
                "/sign-in", data={"csrf_token": csrf_of(form.text), "username": who[0], "password": who[1]}
            )
            assert signed.status_code == 303, signed.text
            self.csrf = csrf_of(self.client.get("/account").text)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any]) -> httpx.Response:
        return self.client.post(path, data={**data, "csrf_token": self.csrf})

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def admin(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, ADMIN)
    yield browser
    browser.close()


def message_of(page: str) -> str:
    found = re.search(r'<p class="message">(.*?)</p>', page, re.S)
    assert found, page
    return html.unescape(found.group(1))


def field_value(page: str, field_id: str) -> str:
    found = re.search(rf'<input id="{field_id}"[^>]*value="([^"]*)"', page)
    assert found, f"no field {field_id}"
    return html.unescape(found.group(1))


def create_robot(browser: Browser, project: str, access: list[str], **fields: str) -> httpx.Response:
    form: dict[str, Any] = {"name": unique("r"), "description": "", "duration": "30", "access": access}
    form.update(fields)
    return browser.post(f"/projects/{project}/robots", form)


def robots_of(server: Portside, project_id: int) -> list[dict[str, Any]]:
    r = api(server, "GET", "/robots", params={"q": f"Level=project,ProjectID={project_id}"})
    assert r.status_code == 200, r.text
    return list(r.json())


def login_status(server: Portside, username: str, secret: str) -> int:
    """What `docker login` meets: the token endpoint with the robot's Basic credentials."""
    with TokenFlow(server.url, Principal("robot", username, secret, "robot")) as flow:
        return flow.token_response().status_code


def registry(server: Portside, username: str, secret: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=(username, secret), timeout=60)


def test_a_robot_is_created_its_secret_shown_once_and_it_pushes_and_pulls(server: Portside, admin: Browser) -> None:
    project, project_id = new_project(server)
    tab = admin.get(f"/projects/{project}/robots")
    assert tab.status_code == 200 and 'aria-current="page">Robots' in tab.text
    assert "New robot account" in tab.text and 'name="access" value="repository:push"' in tab.text
    assert " style=" not in tab.text and "<script>" not in tab.text

    name = unique("ci")
    created = create_robot(admin, project, ["repository:pull", "repository:push"], name=name, description="builds")
    assert created.status_code == 200  # the answer itself, not a redirect: the secret goes nowhere else
    assert "location" not in created.headers and created.headers["cache-control"] == "no-store"
    assert "it will not be shown again" in created.text
    username = field_value(created.text, "robot-username")
    secret = field_value(created.text, "robot-secret")
    assert username == f"robot${project}+{name}" and len(secret) >= 32
    assert 'data-copy="robot-secret"' in created.text
    assert all(secret not in value for value in created.headers.get_list("set-cookie"))

    listing = admin.get(f"/projects/{project}/robots")
    assert username in listing.text and "builds" in listing.text and "repository: pull, push" in listing.text
    assert "Enabled" in listing.text
    for later in (listing, admin.get(f"/projects/{project}"), admin.get(f"/projects/{project}/logs")):
        assert secret not in later.text
    [robot] = robots_of(server, project_id)
    assert robot["name"] == username and robot["description"] == "builds" and robot["duration"] == 30
    assert {(a["resource"], a["action"]) for a in robot["permissions"][0]["access"]} == {
        ("repository", "pull"),
        ("repository", "push"),
    }

    assert login_status(server, username, secret) == 200
    assert login_status(server, username, secret + "x") == 401
    with registry(server, username, secret) as robot_client:
        pushed = oci.push_image(robot_client, f"{project}/app", "v1")
        pulled = robot_client.get(f"/v2/{project}/app/manifests/v1", headers={"Accept": oci.OCI_MANIFEST})
        assert pulled.status_code == 200 and pulled.content == pushed.body


def test_without_push_the_robot_pulls_and_may_not_push(server: Portside, admin: Browser) -> None:
    project, _ = new_project(server)
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry_admin:
        oci.push_image(registry_admin, f"{project}/app", "v1")
    created = create_robot(admin, project, ["repository:pull"])
    assert created.status_code == 200
    username, secret = field_value(created.text, "robot-username"), field_value(created.text, "robot-secret")
    with registry(server, username, secret) as robot_client:
        assert robot_client.get(f"/v2/{project}/app/manifests/v1", headers={"Accept": oci.OCI_MANIFEST}).is_success
        refused = robot_client.post(f"/v2/{project}/other/blobs/uploads/")
        assert refused.status_code in (401, 403), refused.text
    assert api(server, "GET", f"/projects/{project}/repositories/other").status_code == 404


def test_refreshing_the_secret_shows_the_new_one_once_and_the_old_one_stops(server: Portside, admin: Browser) -> None:
    project, project_id = new_project(server)
    created = create_robot(admin, project, ["repository:pull"])
    username, old = field_value(created.text, "robot-username"), field_value(created.text, "robot-secret")
    [robot] = robots_of(server, project_id)
    listing = admin.get(f"/projects/{project}/robots")
    assert f'action="/projects/{project}/robots/{robot["id"]}/refresh"' in listing.text

    refreshed = admin.post(f"/projects/{project}/robots/{robot['id']}/refresh", {})
    assert refreshed.status_code == 200 and "location" not in refreshed.headers
    new = field_value(refreshed.text, "robot-secret")
    assert new != old and "The old secret no longer works" in refreshed.text
    assert login_status(server, username, old) == 401
    assert login_status(server, username, new) == 200
    assert new not in admin.get(f"/projects/{project}/robots").text


def test_a_robot_is_disabled_enabled_and_deleted(server: Portside, admin: Browser) -> None:
    project, project_id = new_project(server)
    created = create_robot(admin, project, ["repository:pull"], duration="-1")
    username, secret = field_value(created.text, "robot-username"), field_value(created.text, "robot-secret")
    [robot] = robots_of(server, project_id)
    assert robot["expires_at"] == -1
    base = f"/projects/{project}/robots/{robot['id']}"
    assert "Never" in admin.get(f"/projects/{project}/robots").text

    disabled = admin.post(f"{base}/disable", {})
    assert disabled.status_code == 303 and disabled.headers["location"] == f"/projects/{project}/robots"
    shown = admin.get(disabled.headers["location"])
    assert (
        f"{username} disabled." in shown.text and "Disabled" in shown.text and f'action="{base}/enable"' in shown.text
    )
    assert robots_of(server, project_id)[0]["disable"] is True
    assert login_status(server, username, secret) == 401

    assert admin.post(f"{base}/enable", {}).status_code == 303
    assert robots_of(server, project_id)[0]["disable"] is False
    assert login_status(server, username, secret) == 200

    listing = admin.get(f"/projects/{project}/robots")
    # Deleting asks first: the button opens the question whose own button sends the form.
    assert re.search(
        rf'<summary class="button danger">Delete</summary>\s*<form method="post" action="{base}/delete">', listing.text
    )
    deleted = admin.post(f"{base}/delete", {})
    assert deleted.status_code == 303
    assert robots_of(server, project_id) == []
    after = admin.get(deleted.headers["location"])
    assert f"{username} deleted." in after.text and f"<code>{username}</code>" not in after.text
    assert "No robot accounts" in after.text
    assert login_status(server, username, secret) == 401


def test_a_guest_sees_the_robots_without_controls_and_a_forged_form_changes_nothing(
    server: Portside, admin: Browser
) -> None:
    who = new_user(server)
    project, project_id = new_project(server, guest=who[0])
    created = create_robot(admin, project, ["repository:pull"])
    username, secret = field_value(created.text, "robot-username"), field_value(created.text, "robot-secret")
    [robot] = robots_of(server, project_id)
    base = f"/projects/{project}/robots/{robot['id']}"
    guest = Browser(server, who)
    try:
        tab = guest.get(f"/projects/{project}/robots")
        assert tab.status_code == 200 and username in tab.text
        for control in ("New robot account", 'name="access"', "/refresh", "/disable", "/delete", "Refresh secret"):
            assert control not in tab.text, control
        for path, form in (
            (f"/projects/{project}/robots", {"name": "sneaky", "duration": "30", "access": "repository:pull"}),
            (f"{base}/refresh", {}),
            (f"{base}/disable", {}),
            (f"{base}/delete", {}),
        ):
            refused = guest.post(path, form)
            assert refused.status_code == 403, (path, refused.text)
            assert "may not" in message_of(refused.text)
            assert "robot-secret" not in refused.text
        assert guest.client.post(f"{base}/delete", data={}).status_code == 403  # no CSRF token either
    finally:
        guest.close()
    [still] = robots_of(server, project_id)
    assert still["id"] == robot["id"] and still["disable"] is False
    assert login_status(server, username, secret) == 200  # not refreshed


def test_a_private_projects_robots_are_missing_for_others(server: Portside, admin: Browser) -> None:
    project, project_id = new_project(server)
    create_robot(admin, project, ["repository:pull"])
    [robot] = robots_of(server, project_id)
    missing = unique("p")
    stranger = Browser(server, new_user(server))
    anonymous = Browser(server, None)
    try:
        for browser in (stranger, anonymous):
            hidden = browser.get(f"/projects/{project}/robots")
            absent = browser.get(f"/projects/{missing}/robots")
            assert hidden.status_code == absent.status_code == 404
            assert message_of(hidden.text) == f"project {project} not found"
            assert message_of(absent.text) == f"project {missing} not found"
            assert robot["name"] not in hidden.text
        forged = stranger.post(f"/projects/{project}/robots/{robot['id']}/delete", {})
        assert forged.status_code == 404 and message_of(forged.text) == f"project {project} not found"
    finally:
        stranger.close()
        anonymous.close()
    assert len(robots_of(server, project_id)) == 1


def test_a_robot_of_another_project_is_not_reached_through_this_one(server: Portside, admin: Browser) -> None:
    mine, _ = new_project(server)
    theirs, theirs_id = new_project(server)
    create_robot(admin, theirs, ["repository:pull"])
    [robot] = robots_of(server, theirs_id)
    refused = admin.post(f"/projects/{mine}/robots/{robot['id']}/delete", {})
    assert refused.status_code == 404 and message_of(refused.text) == f"robot {robot['id']} not found"
    assert len(robots_of(server, theirs_id)) == 1


def test_the_form_comes_back_with_the_reason(server: Portside, admin: Browser) -> None:
    project, project_id = new_project(server)
    bad_name = create_robot(admin, project, ["repository:pull", "tag:list"], name="Bad Name")
    assert bad_name.status_code == 400 and 'id="name-error"' in bad_name.text and "invalid robot name" in bad_name.text
    assert 'value="Bad Name"' in bad_name.text
    assert re.search(r'value="tag:list" checked', bad_name.text)  # the ticks are kept
    outside = create_robot(admin, project, ["repository:update"])
    assert outside.status_code == 400 and "cannot be given here" in outside.text
    nothing = create_robot(admin, project, [])
    assert nothing.status_code == 400 and "at least one permission" in nothing.text
    duration = create_robot(admin, project, ["repository:pull"], duration="soon")
    assert duration.status_code == 400 and 'id="duration-error"' in duration.text
    name = unique("dup")
    assert create_robot(admin, project, ["repository:pull"], name=name).status_code == 200
    again = create_robot(admin, project, ["repository:pull"], name=name)
    assert again.status_code == 409 and "already exists" in again.text
    assert len(robots_of(server, project_id)) == 1


def test_the_filter_and_htmx_rows(server: Portside, admin: Browser) -> None:
    project, _ = new_project(server)
    create_robot(admin, project, ["repository:pull"], name="alpha")
    create_robot(admin, project, ["repository:pull"], name="beta")
    filtered = admin.get(f"/projects/{project}/robots", params={"q": "alp"})
    assert f"robot${project}+alpha" in filtered.text and f"robot${project}+beta" not in filtered.text
    rows = admin.get(
        f"/projects/{project}/robots", params={"q": "bet"}, headers={"HX-Request": "true", "HX-Target": "rows"}
    )
    assert rows.status_code == 200 and f"robot${project}+beta" in rows.text
    assert "<header" not in rows.text and "New robot account" not in rows.text and "<table" in rows.text
