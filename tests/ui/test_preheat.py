"""The P2P preheat pages on a live server, against the Dragonfly manager stand-in (which
refuses any request its published API document does not describe): administration's
instances page (tested, added with its token never shown back, tested from the list, made
default, disabled, removed) and a project's P2P preheat tab (a policy added from plain
fields, run now, its executions, and an execution's tasks with their logs); a bad form
comes back with the field marked; only system administrators reach the instances, and
only the project's administrators change its policies."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest

from tests.remote.dragonfly_server import DragonflyManager
from tests.servers import ADMIN_PASSWORD, Portside, free_port
from tests.ui.pages import api
from tests.ui.test_admin import Browser, new_project, new_user

TOKEN = "ui-dragonfly-token-41b7"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    started = Portside(data_dir=tmp_path_factory.mktemp("ui-preheat") / "data", open_registry=False)
    started.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def dragonfly() -> Iterator[DragonflyManager]:
    with DragonflyManager(token=TOKEN, pending_polls=0) as manager:
        yield manager


@pytest.fixture(scope="module")
def admin(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, ("admin", ADMIN_PASSWORD))
    yield browser
    browser.close()


def _row(page: str, name: str) -> str:
    for row in re.findall(r"<tr>.*?</tr>", page, re.S):
        if f"<td>{name}" in row or f">{name}</a>" in row:
            return row
    raise AssertionError(f"no row for {name}")


def _push(server: Portside, repository: str, tag: str) -> None:
    import hashlib
    import json

    import httpx

    def digest(data: bytes) -> str:
        return "sha256:" + hashlib.sha256(data).hexdigest()

    config, layer = json.dumps({"os": "linux", "architecture": "amd64"}).encode(), b"ui-layer"
    with httpx.Client(base_url=server.url, auth=("admin", ADMIN_PASSWORD), timeout=60) as client:
        for blob in (config, layer):
            r = client.post(f"/v2/{repository}/blobs/uploads/", params={"digest": digest(blob)}, content=blob)
            assert r.status_code == 201, r.text
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest(config),
                "size": len(config),
            },
            "layers": [
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest(layer), "size": len(layer)}
            ],
        }
        r = client.put(
            f"/v2/{repository}/manifests/{tag}",
            content=json.dumps(manifest).encode(),
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        )
        assert r.status_code == 201, r.text


def test_instances_page(server: Portside, admin: Browser, dragonfly: DragonflyManager) -> None:
    listed = admin.get("/admin/preheat")
    assert listed.status_code == 200 and "No instances yet." in listed.text
    assert 'href="/admin/preheat"' in admin.get("/admin/users").text  # in the navigation
    form = {"name": "df", "vendor": "dragonfly", "endpoint": dragonfly.url, "auth_mode": "OAUTH", "auth_secret": TOKEN}
    tested = admin.post("/admin/preheat", {**form, "test": "1"})
    assert tested.status_code == 200 and f"{dragonfly.url} is healthy." in tested.text and TOKEN not in tested.text
    unreachable = admin.post("/admin/preheat", {**form, "endpoint": f"http://127.0.0.1:{free_port()}", "test": "1"})
    assert unreachable.status_code == 400 and "could not be reached" in unreachable.text
    assert 'aria-invalid="true" aria-describedby="endpoint-error"' in unreachable.text

    assert admin.post("/admin/preheat", form).status_code == 303
    page = admin.get("/admin/preheat").text
    assert "Instance df added" in page and "Not checked yet" in _row(page, "df") and TOKEN not in page
    assert admin.post("/admin/preheat", form).status_code == 409
    assert admin.post("/admin/preheat/df/ping", {}).status_code == 303
    page = admin.get("/admin/preheat").text
    assert "df is healthy." in page and "Healthy" in _row(page, "df")
    assert admin.post("/admin/preheat/df/change", {"change": "default"}).status_code == 303
    assert "Default" in _row(admin.get("/admin/preheat").text, "df")
    assert admin.post("/admin/preheat/df/change", {"change": "disable"}).status_code == 303
    assert "Disabled" in _row(admin.get("/admin/preheat").text, "df")
    assert admin.post("/admin/preheat/df/change", {"change": "enable"}).status_code == 303
    bad = admin.post("/admin/preheat", {**form, "name": "x", "endpoint": "not a url"})
    assert bad.status_code == 400 and 'aria-describedby="endpoint-error"' in bad.text and 'value="x"' in bad.text

    user = Browser(server, new_user(server))
    assert user.get("/admin/preheat").status_code == 403
    assert 'href="/admin/preheat"' not in user.get("/account").text
    for action in ("/ping", "/change", "/delete"):
        assert user.post(f"/admin/preheat/df{action}", {"change": "disable"}).status_code == 403
    assert user.post("/admin/preheat", {**form, "name": "z"}).status_code == 403


def test_project_preheat_tab(server: Portside, admin: Browser, dragonfly: DragonflyManager) -> None:
    made = api(
        server,
        "POST",
        "/p2p/preheat/instances",
        json={
            "name": "tab-df",
            "vendor": "dragonfly",
            "endpoint": dragonfly.url,
            "auth_mode": "OAUTH",
            "auth_info": {"token": TOKEN},
        },
    )
    assert made.status_code == 201, made.text
    provider = api(server, "GET", "/p2p/preheat/instances/tab-df").json()["id"]
    project, _ = new_project(server)
    _push(server, f"{project}/app", "v1")
    tab = admin.get(f"/projects/{project}/preheat")
    assert (
        tab.status_code == 200
        and "No preheat policies yet." in tab.text
        and 'aria-current="page">P2P preheat' in tab.text
    )

    form = {
        "name": "warm",
        "provider_id": str(provider),
        "repository": "app",
        "tag": "v*",
        "trigger": "manual",
        "scope": "all_peers",
    }
    bad = admin.post(f"/projects/{project}/preheat", {**form, "trigger": "scheduled", "cron": "nightly"})
    assert bad.status_code == 400 and 'aria-describedby="trigger-error"' in bad.text
    assert admin.post(f"/projects/{project}/preheat", form).status_code == 303
    page = admin.get(f"/projects/{project}/preheat").text
    assert "Preheat policy warm added" in page and "repositories app, tags v*" in _row(page, "warm")
    stored = api(server, "GET", f"/projects/{project}/preheat/policies/warm").json()
    assert '"type": "repository"' in stored["filters"] and '"all_peers"' in stored["extra_attrs"]

    assert admin.post(f"/projects/{project}/preheat/warm/run", {}).status_code == 303
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        executions = api(server, "GET", f"/projects/{project}/preheat/policies/warm/executions").json()
        if executions and executions[0]["status"] not in ("Running", "Pending"):
            break
        time.sleep(0.2)
    assert executions[0]["status"] == "Success", executions
    page = admin.get(f"/projects/{project}/preheat/warm").text
    assert f"/executions/{executions[0]['id']}" in page and "1 of 1" in page
    detail = admin.get(f"/projects/{project}/preheat/warm/executions/{executions[0]['id']}").text
    assert f"{project}/app:v1" in detail and "dragonfly job" in detail and "preheated" in detail
    assert dragonfly.rejected == []

    # Only the project's administrators change its policies.
    user_credentials = new_user(server)
    api(
        server,
        "POST",
        f"/projects/{project}/members",
        json={"role_id": 2, "member_user": {"username": user_credentials[0]}},
    )
    developer = Browser(server, user_credentials)
    seen = developer.get(f"/projects/{project}/preheat")
    assert seen.status_code == 200 and "Only the project's maintainers and administrators" in seen.text
    assert developer.post(f"/projects/{project}/preheat", {**form, "name": "mine"}).status_code == 403
    assert developer.post(f"/projects/{project}/preheat/warm/run", {}).status_code == 403
    assert developer.post(f"/projects/{project}/preheat/warm/delete", {}).status_code == 403
    assert admin.post(f"/projects/{project}/preheat/warm/delete", {}).status_code == 303
    assert "No preheat policies yet." in admin.get(f"/projects/{project}/preheat").text
