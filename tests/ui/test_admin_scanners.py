"""The administration's scanners page on a live server: the built-in scanner listed as the
default, an adapter tested, registered (its credential never shown back), made the default,
disabled and enabled, and removed, each through the page's forms; a form refused comes back
with the reason; anyone but a system administrator is refused the page and every form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import pytest

from tests.scan.stub_adapters import metadata_adapter, running
from tests.servers import Portside, free_port
from tests.ui.pages import api
from tests.ui.test_admin import Browser, new_user

KEY = "ui-adapter-key-" + uuid.uuid4().hex


_Adapter = metadata_adapter(KEY, "Trivy", "Aqua Security", "0.50.1")


@pytest.fixture(scope="module")
def adapter() -> Iterator[str]:
    with running(_Adapter) as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    started = Portside(data_dir=tmp_path_factory.mktemp("ui-scanners") / "data", open_registry=False)
    started.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def admin(server: Portside) -> Browser:
    from tests.servers import ADMIN_PASSWORD

    return Browser(server, ("admin", ADMIN_PASSWORD))


def _registrations(server: Portside) -> dict[str, dict[str, object]]:
    return {s["name"]: s for s in api(server, "GET", "/scanners").json()}


def _row(page: str, name: str) -> str:
    """The table row of scanner `name`."""
    for row in re.findall(r"<tr>.*?</tr>", page, re.S):
        if f"<td>{name}" in row:
            return row
    raise AssertionError(f"no row for {name}")


def test_an_adapter_is_tested_registered_made_default_disabled_and_removed(
    server: Portside, admin: Browser, adapter: str
) -> None:
    listed = admin.get("/admin/scanners")
    assert listed.status_code == 200
    assert "Default" in _row(listed.text, "Portside")
    assert 'href="/admin/scanners"' in admin.get("/admin/users").text  # in the navigation

    form = {"name": "trivy", "url": adapter, "auth": "X-ScannerAdapter-API-Key", "access_credential": KEY}
    tested = admin.post("/admin/scanners", {**form, "test": "1"})
    assert tested.status_code == 200
    assert "answers: Trivy 0.50.1 by Aqua Security" in tested.text
    assert "trivy" not in _registrations(server)  # a test registers nothing
    wrong = admin.post("/admin/scanners", {**form, "access_credential": "wrong", "test": "1"})
    assert wrong.status_code == 400 and "aria-invalid" in wrong.text

    made = admin.post("/admin/scanners", form)
    assert made.status_code == 303, made.text
    page = admin.get("/admin/scanners").text
    assert "Scanner trivy registered." in page
    row = _row(page, "trivy")
    assert "Healthy" in row and "Aqua Security" in row and "Enabled" in row
    assert KEY not in page
    scanner_id = str(_registrations(server)["trivy"]["uuid"])
    again = admin.post("/admin/scanners", form)
    assert again.status_code == 409 and "registered already" in again.text

    assert admin.post(f"/admin/scanners/{scanner_id}/default", {}).status_code == 303
    assert _registrations(server)["trivy"]["is_default"] is True
    assert "Default" in _row(admin.get("/admin/scanners").text, "trivy")

    assert admin.post(f"/admin/scanners/{scanner_id}/disable", {}).status_code == 303
    assert _registrations(server)["trivy"]["disabled"] is True
    assert admin.post(f"/admin/scanners/{scanner_id}/enable", {}).status_code == 303
    shown = _registrations(server)["trivy"]
    assert shown["disabled"] is False and shown["health"] == "healthy"  # the credential was kept

    assert admin.post(f"/admin/scanners/{scanner_id}/delete", {}).status_code == 303
    assert "trivy" not in _registrations(server)
    assert "Default" in _row(admin.get("/admin/scanners").text, "Portside")


def test_a_bad_form_comes_back_with_the_reason(server: Portside, admin: Browser) -> None:
    refused = admin.post("/admin/scanners", {"name": "x", "url": "not a url", "auth": ""})
    assert refused.status_code == 400
    assert 'aria-invalid="true"' in refused.text and 'value="x"' in refused.text
    unknown = admin.post("/admin/scanners", {"name": "y", "url": f"http://127.0.0.1:{free_port()}", "auth": "Magic"})
    assert unknown.status_code == 400 and "unknown authentication scheme" in unknown.text


def test_only_administrators_see_or_change_scanners(server: Portside, admin: Browser, adapter: str) -> None:
    made = api(
        server,
        "POST",
        "/scanners",
        json={"name": "kept", "url": adapter + "/kept", "auth": "X-ScannerAdapter-API-Key", "access_credential": KEY},
    )
    assert made.status_code == 201, made.text
    scanner_id = made.headers["Location"].rsplit("/", 1)[-1]
    user = Browser(server, new_user(server))
    assert user.get("/admin/scanners").status_code == 403
    for action in ("default", "disable", "delete"):
        assert user.post(f"/admin/scanners/{scanner_id}/{action}", {}).status_code == 403
    assert user.post("/admin/scanners", {"name": "z", "url": adapter + "/z", "auth": ""}).status_code == 403
    kept = _registrations(server)["kept"]
    assert kept["disabled"] is False and kept["is_default"] is False
    assert "z" not in _registrations(server)
    # A forged form without the page's token changes nothing, for an administrator too.
    forged = admin.client.post(f"/admin/scanners/{scanner_id}/delete", data={})
    assert forged.status_code in (400, 403)
    assert "kept" in _registrations(server)


def test_a_project_chooses_its_scanner_on_its_settings_tab(server: Portside, admin: Browser, adapter: str) -> None:
    made = api(
        server,
        "POST",
        "/scanners",
        json={
            "name": "chosen",
            "url": adapter + "/chosen",
            "auth": "X-ScannerAdapter-API-Key",
            "access_credential": KEY,
        },
    )
    assert made.status_code == 201, made.text
    scanner_id = made.headers["Location"].rsplit("/", 1)[-1]
    project = f"sc{uuid.uuid4().hex[:8]}"
    assert api(server, "POST", "/projects", json={"project_name": project}).status_code == 201

    settings = admin.get(f"/projects/{project}/settings").text
    assert f'<option value="{scanner_id}"' in settings
    assert re.search(r'<option value="portside-builtin" selected>Portside \(default\)', settings)
    saved = admin.post(f"/projects/{project}/settings", {"part": "scanner", "scanner": scanner_id})
    assert saved.status_code == 303
    assert api(server, "GET", f"/projects/{project}/scanner").json()["uuid"] == scanner_id
    assert f'<option value="{scanner_id}" selected>' in admin.get(f"/projects/{project}/settings").text
    missing = admin.post(f"/projects/{project}/settings", {"part": "scanner", "scanner": "no-such"})
    assert missing.status_code == 404 and 'id="scanner-error"' in missing.text

    # A guest sees which scanner the project uses, and may not change it.
    guest = new_user(server)
    member = {"role_id": 3, "member_user": {"username": guest[0]}}
    assert api(server, "POST", f"/projects/{project}/members", json=member).status_code == 201
    as_guest = Browser(server, guest)
    assert "Scanned with chosen." in as_guest.get(f"/projects/{project}/settings").text
    refused = as_guest.post(f"/projects/{project}/settings", {"part": "scanner", "scanner": "portside-builtin"})
    assert refused.status_code == 403
    assert api(server, "GET", f"/projects/{project}/scanner").json()["uuid"] == scanner_id
