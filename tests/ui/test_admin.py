"""The administration pages on a live server: users (create, administrator flag, password
reset, delete), system robots, quotas, garbage collection and the scrub (run now, dry run,
schedule, history, each run's log) and the audit log with its filters; and that anyone
but a system administrator is refused every page and every form, changing nothing."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
PASSWORD = "Passw0rd-ui-admin"
GIB = 1024**3
PAGES = ("/admin/users", "/admin/robots", "/admin/quotas", "/admin/gc", "/admin/scrub", "/admin/audit-logs")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    running = Portside(
        data_dir=tmp_path_factory.mktemp("ui-admin") / "data",
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


def user_named(server: Portside, name: str) -> dict[str, Any] | None:
    found = api(server, "GET", "/users", params={"q": f"username={name}"}).json()
    return found[0] if found else None


def new_project(server: Portside) -> tuple[str, int]:
    name = unique("p")
    r = api(server, "POST", "/projects", json={"project_name": name})
    assert r.status_code == 201, r.text
    return name, int(api(server, "GET", f"/projects/{name}").json()["project_id"])


def sign_in(client: httpx.Client, name: str, password: str) -> httpx.Response:
    form = client.get("/sign-in")
    return client.post("/sign-in", data={"csrf_token": csrf_of(form.text), "username": name, "password": password})


class Browser:
    """A browser signed in through the sign-in page; its forms carry the page's CSRF token."""

    def __init__(self, server: Portside, who: tuple[str, str]):
        self.client = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False)
        signed = sign_in(self.client, *who)
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


def finished(server: Portside, kind: str, job_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = api(server, "GET", f"/system/{kind}/{job_id}").json()
        if job["job_status"] not in ("Pending", "Running"):
            return dict(job)
        time.sleep(0.2)
    raise AssertionError(f"{kind} job {job_id} did not finish")


def login_status(server: Portside, username: str, secret: str) -> int:
    with TokenFlow(server.url, Principal("robot", username, secret, "robot")) as flow:
        return flow.token_response().status_code


# --- who may ----------------------------------------------------------------------------


def test_administration_is_for_administrators_only(server: Portside, admin: Browser) -> None:
    assert admin.get("/admin").headers["location"] == "/admin/users"
    for path in PAGES:
        shown = admin.get(path)
        assert shown.status_code == 200, path
        assert f'<a href="{path}" aria-current="page">' in shown.text, path
        assert " style=" not in shown.text and "<script>" not in shown.text

    with httpx.Client(base_url=server.url, timeout=60) as anonymous:
        for path in PAGES:
            sent = anonymous.get(path)
            assert sent.status_code == 303 and sent.headers["location"].startswith("/sign-in?next="), path

    who = new_user(server)
    user = Browser(server, who)
    try:
        assert 'href="/admin/users"' not in user.get("/projects").text
        for path in (*PAGES, "/admin/gc/1", "/admin/users/1"):
            refused = user.get(path)
            assert refused.status_code == 403, path
            assert message_of(refused.text).startswith(f"{who[0]} may not "), path
            assert "admin-nav" not in refused.text
    finally:
        user.close()


def test_a_non_administrators_forms_are_refused_and_change_nothing(server: Portside) -> None:
    project, project_id = new_project(server)
    victim = new_user(server)
    victim_id = user_named(server, victim[0])["user_id"]  # type: ignore[index]
    gc_runs = api(server, "GET", "/system/gc").headers.get("x-total-count")
    schedule = api(server, "GET", "/system/gc/schedule").json()
    quota = api(server, "GET", f"/quotas/{project_id}").json()
    robots = api(server, "GET", "/robots", params={"q": "Level=system"}).headers.get("x-total-count")
    who = new_user(server)
    user = Browser(server, who)
    sneaky = unique("sneaky")
    try:
        for path, form in (
            ("/admin/users", {"username": sneaky, "password": PASSWORD, "repeat_password": PASSWORD}),
            (f"/admin/users/{victim_id}/sysadmin", {"sysadmin": "true"}),
            (
                f"/admin/users/{victim_id}/password",
                {"new_password": "Changed-Passw0rd", "repeat_password": "Changed-Passw0rd"},
            ),
            (f"/admin/users/{victim_id}/delete", {}),
            ("/admin/robots", {"name": sneaky, "duration": "30", "access": "repository:pull", "scope": "all"}),
            (f"/admin/quotas/{project_id}", {"storage_limit": "1"}),
            ("/admin/gc/run", {"run_dry_run": "on"}),
            ("/admin/gc/schedule", {"type": "Hourly"}),
            ("/admin/scrub/run", {}),
        ):
            refused = user.post(path, form)
            assert refused.status_code == 403, (path, refused.text)
    finally:
        user.close()
    assert user_named(server, sneaky) is None
    after = user_named(server, victim[0])
    assert after is not None and after["sysadmin_flag"] is False
    with httpx.Client(base_url=server.url, timeout=60) as c:
        assert sign_in(c, *victim).status_code == 303  # the password is unchanged
    assert api(server, "GET", "/system/gc").headers.get("x-total-count") == gc_runs
    assert api(server, "GET", "/system/gc/schedule").json() == schedule
    assert api(server, "GET", f"/quotas/{project_id}").json()["hard"] == quota["hard"]
    assert api(server, "GET", "/robots", params={"q": "Level=system"}).headers.get("x-total-count") == robots


# --- users ------------------------------------------------------------------------------


def test_a_user_is_created_made_administrator_given_a_new_password_and_deleted(
    server: Portside, admin: Browser
) -> None:
    name = unique("ada")
    created = admin.post(
        "/admin/users",
        {
            "username": name,
            "email": f"{name}@example.com",
            "realname": "Ada Lovelace",
            "password": PASSWORD,
            "repeat_password": PASSWORD,
        },
    )
    assert created.status_code == 303
    found = user_named(server, name)
    assert found is not None and found["realname"] == "Ada Lovelace" and found["sysadmin_flag"] is False
    page_url = f"/admin/users/{found['user_id']}"
    assert created.headers["location"] == page_url
    assert f"User {name} created." in admin.get(page_url).text
    listed = admin.get("/admin/users", params={"q": name[:6]})
    assert f'href="{page_url}"' in listed.text
    rows = admin.get("/admin/users", params={"q": name}, headers={"HX-Request": "true", "HX-Target": "rows"})
    assert name in rows.text and "<header" not in rows.text

    assert admin.post(f"{page_url}/sysadmin", {"sysadmin": "true"}).status_code == 303
    assert user_named(server, name)["sysadmin_flag"] is True  # type: ignore[index]
    shown = admin.get(page_url)
    assert "is now an administrator" in shown.text and "Revoke administrator" in shown.text
    with httpx.Client(base_url=server.url, timeout=60) as theirs:
        assert sign_in(theirs, name, PASSWORD).status_code == 303
        assert theirs.get("/admin/users").status_code == 200  # an administrator now
        assert admin.post(f"{page_url}/sysadmin", {"sysadmin": "false"}).status_code == 303
        assert user_named(server, name)["sysadmin_flag"] is False  # type: ignore[index]
        assert theirs.get("/admin/users").status_code == 403  # and no longer

    weak = admin.post(f"{page_url}/password", {"new_password": "short", "repeat_password": "short"})
    assert weak.status_code == 400 and 'id="new_password-error"' in weak.text
    differ = admin.post(f"{page_url}/password", {"new_password": "New-Passw0rd-1", "repeat_password": "New-Passw0rd-2"})
    assert differ.status_code == 400 and "differ" in differ.text
    reset = admin.post(f"{page_url}/password", {"new_password": "New-Passw0rd-1", "repeat_password": "New-Passw0rd-1"})
    assert reset.status_code == 303
    with httpx.Client(base_url=server.url, timeout=60) as theirs:
        assert sign_in(theirs, name, PASSWORD).status_code == 401
        assert sign_in(theirs, name, "New-Passw0rd-1").status_code == 303

    page = admin.get(page_url).text
    assert f'action="{page_url}/delete"' in page
    deleted = admin.post(f"{page_url}/delete", {})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/admin/users"
    assert user_named(server, name) is None
    assert admin.get(page_url).status_code == 404


def test_the_user_form_comes_back_with_the_reason(server: Portside, admin: Browser) -> None:
    name = unique("bob")
    weak = admin.post("/admin/users", {"username": name, "password": "weak", "repeat_password": "weak"})
    assert weak.status_code == 400 and 'id="password-error"' in weak.text and f'value="{name}"' in weak.text
    assert user_named(server, name) is None
    taken = admin.post("/admin/users", {"username": "admin", "password": PASSWORD, "repeat_password": PASSWORD})
    assert taken.status_code == 409 and 'id="username-error"' in taken.text


def test_an_administrator_may_not_demote_or_delete_themselves(server: Portside, admin: Browser) -> None:
    me = user_named(server, "admin")
    assert me is not None
    page = admin.get(f"/admin/users/{me['user_id']}")
    assert page.status_code == 200 and "This is you" in page.text
    assert "/sysadmin" not in page.text and "/delete" not in page.text
    assert admin.post(f"/admin/users/{me['user_id']}/sysadmin", {"sysadmin": "false"}).status_code == 403
    assert admin.post(f"/admin/users/{me['user_id']}/delete", {}).status_code == 403
    assert user_named(server, "admin")["sysadmin_flag"] is True  # type: ignore[index]


# --- system robots ----------------------------------------------------------------------


def test_system_robots_for_all_or_named_projects(server: Portside, admin: Browser) -> None:
    one, _ = new_project(server)
    other, other_id = new_project(server)
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry_admin:
        for project in (one, other):
            oci.push_image(registry_admin, f"{project}/app", "v1")
    page = admin.get("/admin/robots")
    assert 'name="system_access" value="garbage-collection:create"' in page.text
    assert 'name="access" value="repository:pull"' in page.text

    everywhere = admin.post(
        "/admin/robots", {"name": unique("all"), "duration": "7", "scope": "all", "access": ["repository:pull"]}
    )
    assert everywhere.status_code == 200 and "it will not be shown again" in everywhere.text
    wide = (field_value(everywhere.text, "robot-username"), field_value(everywhere.text, "robot-secret"))
    named = admin.post(
        "/admin/robots",
        {"name": unique("one"), "duration": "-1", "scope": "some", "projects": one, "access": ["repository:pull"]},
    )
    assert named.status_code == 200
    narrow = (field_value(named.text, "robot-username"), field_value(named.text, "robot-secret"))
    assert wide[0].startswith("robot$") and "+" not in wide[0]

    listing = admin.get("/admin/robots")
    assert wide[0] in listing.text and narrow[0] in listing.text and "all projects" in listing.text
    assert wide[1] not in listing.text and narrow[1] not in listing.text
    accept = {"Accept": oci.OCI_MANIFEST}
    with httpx.Client(base_url=server.url, auth=wide, timeout=60) as robot:
        assert robot.get(f"/v2/{one}/app/manifests/v1", headers=accept).status_code == 200
        assert robot.get(f"/v2/{other}/app/manifests/v1", headers=accept).status_code == 200
    with httpx.Client(base_url=server.url, auth=narrow, timeout=60) as robot:
        assert robot.get(f"/v2/{one}/app/manifests/v1", headers=accept).status_code == 200
        assert robot.get(f"/v2/{other}/app/manifests/v1", headers=accept).status_code in (401, 403, 404)

    robots = {r["name"]: r for r in api(server, "GET", "/robots", params={"q": "Level=system"}).json()}
    wide_id = robots[wide[0]]["id"]
    assert admin.post(f"/admin/robots/{wide_id}/disable", {}).status_code == 303
    assert login_status(server, *wide) == 401
    assert admin.post(f"/admin/robots/{wide_id}/enable", {}).status_code == 303
    refreshed = admin.post(f"/admin/robots/{wide_id}/refresh", {})
    assert refreshed.status_code == 200
    assert login_status(server, *wide) == 401
    assert login_status(server, wide[0], field_value(refreshed.text, "robot-secret")) == 200
    assert admin.post(f"/admin/robots/{wide_id}/delete", {}).status_code == 303
    assert wide[0] not in {r["name"] for r in api(server, "GET", "/robots", params={"q": "Level=system"}).json()}

    missing = admin.post(
        "/admin/robots",
        {
            "name": unique("x"),
            "duration": "7",
            "scope": "some",
            "projects": unique("nope"),
            "access": "repository:pull",
        },
    )
    assert missing.status_code == 404 and 'id="projects-error"' in missing.text
    unnamed = admin.post(
        "/admin/robots", {"name": unique("x"), "duration": "7", "scope": "some", "access": "repository:pull"}
    )
    assert (
        unnamed.status_code == 400 and 'id="projects-error"' in unnamed.text and 'id="robot-scope-some"' in unnamed.text
    )

    # A project's robot is managed on its project's page, not here.
    r = api(
        server,
        "POST",
        "/robots",
        json={
            "name": unique("proj"),
            "level": "project",
            "duration": 7,
            "permissions": [
                {"kind": "project", "namespace": other, "access": [{"resource": "repository", "action": "pull"}]}
            ],
        },
    )
    assert r.status_code == 201, r.text
    project_robot = r.json()["id"]
    assert admin.post(f"/admin/robots/{project_robot}/delete", {}).status_code == 404
    assert api(server, "GET", f"/robots/{project_robot}").status_code == 200
    assert r.json()["name"] not in admin.get("/admin/robots").text
    assert other_id  # the project robot stays in its project


# --- quotas -----------------------------------------------------------------------------


def test_quotas_are_listed_sorted_by_usage_and_edited(server: Portside, admin: Browser) -> None:
    used, used_id = new_project(server)
    empty, empty_id = new_project(server)
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry_admin:
        oci.push_image(registry_admin, f"{used}/app", "v1", layers=[oci.layer(200_000)])
    page = admin.get("/admin/quotas", params={"sort": "-used.storage", "page_size": 100})
    assert page.status_code == 200 and 'class="quota-text"' in page.text
    assert page.text.index(f">{used}</a>") < page.text.index(f">{empty}</a>")
    least = admin.get("/admin/quotas", params={"sort": "used.storage", "page_size": 100}).text
    assert least.index(f">{empty}</a>") < least.index(f">{used}</a>")

    saved = admin.post(f"/admin/quotas/{empty_id}", {"storage_limit": "3", "sort": "-used.storage"})
    assert saved.status_code == 303 and saved.headers["location"] == "/admin/quotas?sort=-used.storage"
    assert api(server, "GET", f"/quotas/{empty_id}").json()["hard"]["storage"] == 3 * GIB
    again = admin.get(saved.headers["location"]).text
    assert f"Storage limit of {empty} saved." in again and '<meter class="quota"' in again
    assert field_value(admin.get("/admin/quotas", params={"page_size": 100}).text, f"limit-{empty_id}") == "3"

    bad = admin.post(f"/admin/quotas/{empty_id}", {"storage_limit": "lots"})
    assert bad.status_code == 400 and f'id="quota-{empty_id}-error"' in bad.text
    assert api(server, "GET", f"/quotas/{empty_id}").json()["hard"]["storage"] == 3 * GIB
    assert admin.post(f"/admin/quotas/{empty_id}", {"storage_limit": "-1"}).status_code == 303
    assert api(server, "GET", f"/quotas/{empty_id}").json()["hard"]["storage"] == -1
    assert admin.post(f"/admin/quotas/{used_id}", {"storage_limit": "0.5"}).status_code == 303
    assert api(server, "GET", f"/quotas/{used_id}").json()["hard"]["storage"] == GIB // 2


# --- garbage collection and the scrub -----------------------------------------------------


def _job_id(location: str, kind: str) -> int:
    found = re.fullmatch(rf"/admin/{kind}/(\d+)", location)
    assert found, location
    return int(found.group(1))


def test_gc_runs_now_and_as_a_dry_run_with_history_and_logs(server: Portside, admin: Browser) -> None:
    dry = admin.post("/admin/gc/run", {"run_dry_run": "on"})
    assert dry.status_code == 303
    dry_id = _job_id(dry.headers["location"], "gc")
    assert finished(server, "gc", dry_id)["job_status"] == "Success"
    real = admin.post("/admin/gc/run", {"run_delete_untagged": "on"})
    assert real.status_code == 303
    real_id = _job_id(real.headers["location"], "gc")
    assert finished(server, "gc", real_id)["job_status"] == "Success"

    history = admin.get("/admin/gc")
    for job_id in (dry_id, real_id):
        assert f'<a href="/admin/gc/{job_id}">{job_id}</a>' in history.text
    dry_row = re.search(rf'<a href="/admin/gc/{dry_id}">.*?</tr>', history.text, re.S)
    real_row = re.search(rf'<a href="/admin/gc/{real_id}">.*?</tr>', history.text, re.S)
    assert dry_row and "Dry run" in dry_row.group(0) and "Success" in dry_row.group(0)
    assert real_row and "Dry run" not in real_row.group(0) and "untagged deleted" in real_row.group(0)
    assert 'hx-trigger="every 2s"' not in history.text  # nothing runs: nothing to poll

    log = admin.get(f"/admin/gc/{dry_id}")
    assert log.status_code == 200 and f"gc job {dry_id} started" in log.text and "dry run" in log.text
    assert re.search(r"<dt>Dry run</dt><dd>Yes</dd>", log.text)
    assert f"gc job {real_id} started" in admin.get(f"/admin/gc/{real_id}").text
    assert admin.get("/admin/gc/999999").status_code == 404
    block = admin.get(f"/admin/gc/{dry_id}", headers={"HX-Request": "true", "HX-Target": "job"})
    assert block.text.lstrip().startswith('<div id="job"') and "<header" not in block.text


def test_the_gc_schedule_is_saved_shown_and_removed(server: Portside, admin: Browser) -> None:
    daily = admin.post("/admin/gc/schedule", {"type": "Daily", "schedule_delete_untagged": "on"})
    assert daily.status_code == 303
    schedule = api(server, "GET", "/system/gc/schedule").json()
    assert schedule["schedule"]["type"] == "Daily" and '"delete_untagged": true' in schedule["job_parameters"]
    shown = admin.get("/admin/gc").text
    assert "Daily (<code>0 0 0 * * *</code>)" in shown and "next run" in shown
    assert '<option value="Daily" selected>' in shown
    assert re.search(r'id="schedule-delete_untagged" name="schedule_delete_untagged" type="checkbox" checked', shown)

    bad = admin.post("/admin/gc/schedule", {"type": "Custom", "cron": "every tuesday"})
    assert bad.status_code == 400 and 'id="schedule-error"' in bad.text and 'value="every tuesday"' in bad.text
    assert api(server, "GET", "/system/gc/schedule").json()["schedule"]["type"] == "Daily"
    custom = admin.post("/admin/gc/schedule", {"type": "Custom", "cron": "0 30 2 * * *"})
    assert custom.status_code == 303
    assert api(server, "GET", "/system/gc/schedule").json()["schedule"]["cron"] == "0 30 2 * * *"
    assert 'value="0 30 2 * * *"' in admin.get("/admin/gc").text

    assert admin.post("/admin/gc/schedule", {"type": "None"}).status_code == 303
    assert api(server, "GET", "/system/gc/schedule").json()["schedule"]["type"] == "None"
    assert "Not scheduled." in admin.get("/admin/gc").text


def test_the_scrub_runs_and_shows_its_log(server: Portside, admin: Browser) -> None:
    started = admin.post("/admin/scrub/run", {})
    assert started.status_code == 303
    job_id = _job_id(started.headers["location"], "scrub")
    assert finished(server, "scrub", job_id)["job_status"] == "Success"
    page = admin.get(f"/admin/scrub/{job_id}")
    assert page.status_code == 200 and "scrubbing every blob" in page.text and "<dt>Checked</dt>" in page.text
    assert f'<a href="/admin/scrub/{job_id}">{job_id}</a>' in admin.get("/admin/scrub").text


# --- the audit log ----------------------------------------------------------------------


def test_the_audit_log_filters(server: Portside, admin: Browser) -> None:
    name = unique("audited")
    assert (
        admin.post("/admin/users", {"username": name, "password": PASSWORD, "repeat_password": PASSWORD}).status_code
        == 303
    )
    user_id = user_named(server, name)["user_id"]  # type: ignore[index]
    assert admin.post(f"/admin/users/{user_id}/delete", {}).status_code == 303

    def rows(**filters: str) -> list[str]:
        page = admin.get("/admin/audit-logs", params={"page_size": 100, **filters})
        assert page.status_code == 200, page.text
        return re.findall(r"<tr>\s*<td><time.*?</tr>", page.text, re.S)

    both = rows(resource=name)
    assert len(both) == 2 and all("admin" in row and "user" in row for row in both)
    [created] = rows(resource=name, operation="create")
    assert ">create<" in created
    [deleted] = rows(resource=name, operation="delete")
    assert ">delete<" in deleted
    assert rows(resource=name, username="nobody-like-this") == []
    assert len(rows(resource=name, username="adm")) == 2
    now = datetime.now(UTC)
    past = (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    future = (now + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    assert len(rows(resource=name, **{"from": past, "to": future})) == 2
    assert rows(resource=name, **{"from": future}) == []
    assert len(rows(resource=name, to=future)) == 2
    bad = admin.get("/admin/audit-logs", params={"from": "yesterday"})
    assert bad.status_code == 400 and 'id="time-error"' in bad.text
    selected = admin.get("/admin/audit-logs", params={"operation": "delete"}).text
    assert '<option value="delete" selected>' in selected
