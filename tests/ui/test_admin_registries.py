"""The administration's registries page on a live server, against a real CNCF Distribution
behind htpasswd: a registry tested (right and wrong secret), added (its secret never shown
back), listed with its health, changed with the secret kept, tested from the list, and
removed, each through the page's forms; a bad form comes back with the field marked; anyone
but a system administrator is refused the page and every form."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator

import pytest

from tests.servers import ADMIN_PASSWORD, Distribution, Portside, free_port
from tests.ui.pages import api
from tests.ui.test_admin import Browser, new_user

USER, SECRET = "puller", "Ui-Distribution-Secret-93"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    started = Portside(data_dir=tmp_path_factory.mktemp("ui-registries") / "data", open_registry=False)
    started.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    root = tmp_path_factory.mktemp("ui-distribution")
    made = subprocess.run(["htpasswd", "-Bbn", USER, SECRET], check=True, capture_output=True, text=True)
    (root / "htpasswd").write_text(made.stdout)
    started = Distribution(data_dir=root / "data", htpasswd=root / "htpasswd")
    started.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def admin(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, ("admin", ADMIN_PASSWORD))
    yield browser
    browser.close()


def _stored(server: Portside) -> dict[str, dict[str, object]]:
    return {r["name"]: r for r in api(server, "GET", "/registries").json()}


def _row(page: str, name: str) -> str:
    for row in re.findall(r"<tr>.*?</tr>", page, re.S):
        if f">{name}</a>" in row:
            return row
    raise AssertionError(f"no row for {name}")


def test_a_registry_is_tested_added_changed_and_removed(
    server: Portside, admin: Browser, distribution: Distribution
) -> None:
    listed = admin.get("/admin/registries")
    assert listed.status_code == 200 and "No registries yet." in listed.text
    assert 'href="/admin/registries"' in admin.get("/admin/users").text  # in the navigation

    form = {
        "name": "dist",
        "type": "docker-registry",
        "url": distribution.url,
        "credential_type": "basic",
        "access_key": USER,
        "access_secret": SECRET,
    }
    tested = admin.post("/admin/registries", {**form, "test": "1"})
    assert tested.status_code == 200 and f"{distribution.url} answers." in tested.text
    assert SECRET not in tested.text
    assert "dist" not in _stored(server)  # a test adds nothing
    wrong = admin.post("/admin/registries", {**form, "access_secret": "wrong", "test": "1"})
    assert wrong.status_code == 400 and "refused the credentials" in wrong.text and "aria-invalid" in wrong.text

    made = admin.post("/admin/registries", form)
    assert made.status_code == 303, made.text
    page = admin.get("/admin/registries").text
    assert "Registry dist added" in page
    assert "Not checked yet" in _row(page, "dist") and f"basic: {USER}" in _row(page, "dist")
    assert SECRET not in page
    again = admin.post("/admin/registries", form)
    assert again.status_code == 409 and "exists already" in again.text

    registry_id = _stored(server)["dist"]["id"]
    tested_row = admin.post(f"/admin/registries/{registry_id}/ping", {})
    assert tested_row.status_code == 303
    page = admin.get("/admin/registries").text
    assert "dist is healthy." in page and "Healthy" in _row(page, "dist")

    edit = admin.get(f"/admin/registries/{registry_id}")
    assert edit.status_code == 200 and SECRET not in edit.text and 'value="dist"' in edit.text
    changed = admin.post(
        f"/admin/registries/{registry_id}",
        {**form, "access_secret": "", "description": "the local Distribution"},  # empty: kept
    )
    assert changed.status_code == 303, changed.text
    assert _stored(server)["dist"]["description"] == "the local Distribution"
    assert admin.post(f"/admin/registries/{registry_id}/ping", {}).status_code == 303
    assert "dist is healthy." in admin.get("/admin/registries").text  # the secret was kept

    assert admin.post(f"/admin/registries/{registry_id}/delete", {}).status_code == 303
    assert "dist" not in _stored(server)


def test_a_bad_form_comes_back_with_the_field_marked(server: Portside, admin: Browser) -> None:
    refused = admin.post("/admin/registries", {"name": "x", "type": "docker-registry", "url": "not a url"})
    assert refused.status_code == 400
    assert 'aria-invalid="true" aria-describedby="url-error"' in refused.text and 'value="x"' in refused.text
    unreachable = f"http://127.0.0.1:{free_port()}"
    tested = admin.post("/admin/registries", {"name": "y", "type": "docker-registry", "url": unreachable, "test": "1"})
    assert tested.status_code == 400 and "unreachable" in tested.text


def test_only_administrators_see_or_change_registries(server: Portside) -> None:
    made = api(server, "POST", "/registries", json={"name": "kept", "type": "harbor", "url": "https://peer.example"})
    assert made.status_code == 201, made.text
    registry_id = made.headers["Location"].rsplit("/", 1)[-1]
    user = Browser(server, new_user(server))
    assert user.get("/admin/registries").status_code == 403
    assert user.get(f"/admin/registries/{registry_id}").status_code == 403
    assert 'href="/admin/registries"' not in user.get("/account").text
    for action in ("", "/ping", "/delete"):
        assert user.post(f"/admin/registries/{registry_id}{action}", {"name": "x"}).status_code == 403
    assert (
        user.post("/admin/registries", {"name": "z", "type": "harbor", "url": "https://z.example"}).status_code == 403
    )
    assert "kept" in _stored(server)
