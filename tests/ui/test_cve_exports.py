"""CVE exports on a live server, over the scanned project the hub's API tests use
(tests/scan/scanning.py): a developer starts one from the project's summary, finds it in
"My CVE exports", polled until it ends, and downloads Harbor's CSV with the rows asked for;
a pattern the service refuses comes back as the form's error; a guest is not offered the
form and is refused when sending it anyway; nobody else lists or downloads the export; a
stranger to the private project learns nothing of it."""

from __future__ import annotations

import csv
import html
import io
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.scan.scanning import new_user, scanned_project, scanning_server
from tests.servers import Portside
from tests.ui.test_admin import Browser

MY_EXPORTS = "/account/cve-exports"
HEADER = [
    "Repository",
    "Artifact Digest",
    "CVE",
    "Package",
    "Current Version",
    "Fixed in version",
    "Severity",
    "CWE Ids",
    "Additional Data",
    "Scanner",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    with scanning_server(tmp_path_factory.mktemp("ui-exports") / "data") as started:
        yield started


@pytest.fixture(scope="module")
def project(server: Portside) -> dict[str, Any]:
    return scanned_project(server)


@pytest.fixture(scope="module")
def developer(server: Portside, project: dict[str, Any]) -> Iterator[Browser]:
    browser = Browser(server, project["developer"])
    yield browser
    browser.close()


def _export_rows(page: str) -> dict[int, str]:
    """Each listed export's id and its table row."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0] if "<tbody>" in page else ""
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", body, re.S):
        first = re.search(r"<td>(\d+)", row)
        assert first, row
        found[int(first.group(1))] = row
    return found


def _finished(browser: Browser, execution_id: int) -> str:
    deadline = time.monotonic() + 60
    while True:
        # As the page's htmx polling asks: the list block alone.
        block = browser.get(MY_EXPORTS, headers={"HX-Request": "true", "HX-Target": "exports"})
        assert block.status_code == 200 and "<html" not in block.text
        row = _export_rows(block.text)[execution_id]
        if "Queued" not in row and "Running" not in row:
            assert 'hx-trigger="every' not in block.text  # one export at a time: none runs now
            return row
        assert 'hx-trigger="every 3s"' in block.text  # still polling while it runs
        assert time.monotonic() < deadline, row
        time.sleep(0.3)


def _start(browser: Browser, project: str, **fields: str) -> int:
    sent = browser.post(f"/projects/{project}/cve-exports", fields)
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == MY_EXPORTS
    listed = browser.get(MY_EXPORTS).text
    started = re.search(r"CVE export (\d+) of " + re.escape(project) + " started.", html.unescape(listed))
    assert started, listed
    return int(started.group(1))


def _csv(browser: Browser, execution_id: int) -> list[dict[str, str]]:
    got = browser.get(f"{MY_EXPORTS}/{execution_id}/download")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"].startswith("text/csv")
    assert got.headers["content-disposition"] == f'attachment; filename="scandata_export_{execution_id}.csv"'
    reader = csv.reader(io.StringIO(got.text))
    assert next(reader) == HEADER
    return list(csv.DictReader(io.StringIO(got.text)))


def test_a_developer_exports_from_the_project_page_and_downloads_the_csv(
    server: Portside, project: dict[str, Any], developer: Browser
) -> None:
    name = project["name"]
    summary = developer.get(f"/projects/{name}").text
    assert f'action="/projects/{name}/cve-exports"' in summary and 'href="/account/cve-exports"' in summary

    narrowed = _start(
        developer, name, repositories="{app,nothing}", tags="v*", cve_ids="CVE-2018-18074", job_name="one"
    )
    row = _finished(developer, narrowed)
    assert "Finished" in row and "1 findings of 1 repositories" in row and "one" in row
    assert f'href="/projects/{name}"' in row and f'href="{MY_EXPORTS}/{narrowed}/download"' in row
    assert [(r["Repository"], r["CVE"], r["Fixed in version"]) for r in _csv(developer, narrowed)] == [
        (f"{name}/app", "CVE-2018-18074", "2.20.0")
    ]

    everything = _start(developer, name)
    assert "Finished" in _finished(developer, everything)
    rows = _csv(developer, everything)
    found = {(r["Repository"], r["CVE"]) for r in rows if r["Package"] == "requests"}
    assert {
        (f"{name}/app", "CVE-2018-18074"),
        (f"{name}/app", "CVE-2023-32681"),
        (f"{name}/other", "CVE-2018-18074"),
        (f"{name}/other", "CVE-2023-32681"),
    } == found
    assert all(r["Artifact Digest"] == project["vulnerable"] for r in rows if r["Package"] == "requests")
    listed = developer.get(MY_EXPORTS).text
    assert list(_export_rows(listed)) == [everything, narrowed]  # newest first
    assert 'hx-trigger="every' not in listed  # nothing runs: no polling
    assert 'href="/account/cve-exports"' in listed  # the reload link without JavaScript


def test_a_refused_export_is_the_forms_error(project: dict[str, Any], developer: Browser) -> None:
    name = project["name"]
    for fields, field, words in (
        ({"repositories": "{}"}, "repositories", "repositories: an empty pattern matches nothing"),
        ({"tags": "x" * 1100}, "tags", "tags is longer than 1024 characters"),
        ({"job_name": "n" * 300}, "job_name", "job_name is longer than 255 characters"),
    ):
        refused = developer.post(f"/projects/{name}/cve-exports", fields)
        assert refused.status_code == 400, refused.text
        text = html.unescape(refused.text)
        assert f'id="{field}-error"' in text and words in text
        assert f'id="export-{field}"' in text and 'aria-invalid="true"' in text
        assert f'value="{fields[field]}"' in text  # the form keeps what was typed
    # Without the session's CSRF token, nothing starts.
    forged = developer.client.post(f"/projects/{name}/cve-exports", data={"repositories": "**"})
    assert forged.status_code == 403


def test_a_guest_is_not_offered_the_form_and_is_refused(server: Portside, project: dict[str, Any]) -> None:
    name = project["name"]
    guest = Browser(server, project["guest"])
    try:
        summary = guest.get(f"/projects/{name}")
        assert summary.status_code == 200 and "cve-exports" not in summary.text.split("<main", 1)[1].split("</main>")[0]
        refused = guest.post(f"/projects/{name}/cve-exports", {"repositories": "**"})
        assert refused.status_code == 403, refused.text
        assert (
            'id="export-error" role="alert"' in refused.text
            and '<form method="post" action="/projects' not in refused.text
        )
        assert _export_rows(guest.get(MY_EXPORTS).text) == {}
    finally:
        guest.close()


def test_nobody_else_sees_or_downloads_an_export(server: Portside, project: dict[str, Any], developer: Browser) -> None:
    name = project["name"]
    mine = _start(developer, name, repositories="app")
    _finished(developer, mine)
    for who in (project["guest"], new_user(server, f"o{uuid.uuid4().hex[:8]}")):
        other = Browser(server, who)
        try:
            listed = other.get(MY_EXPORTS)
            assert listed.status_code == 200 and _export_rows(listed.text) == {}
            assert f'href="/projects/{name}"' not in listed.text
            refused = other.get(f"{MY_EXPORTS}/{mine}/download")
            assert refused.status_code == 403 and "Repository,Artifact Digest" not in refused.text
        finally:
            other.close()
    # A stranger to the private project: the page and the form are a missing project's.
    stranger = Browser(server, new_user(server, f"s{uuid.uuid4().hex[:8]}"))
    try:
        refused = stranger.post(f"/projects/{name}/cve-exports", {"repositories": "**"})
        assert refused.status_code == 404
        assert stranger.get(f"{MY_EXPORTS}/999999/download").status_code == 404
    finally:
        stranger.close()
