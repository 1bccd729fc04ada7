"""The security hub and CVE exports in a real browser, over the scanned project of the hub's
API tests (tests/scan/scanning.py): the administration's Security page filtered by severity
through its form, htmx swapping the results alone; a developer's export started from the
project's summary, shown in My CVE exports, its row updated by htmx's polling until the
CSV can be downloaded; and axe-core over both pages and the project's form, in the light
and the dark theme. Every page is watched for CSP violations (conftest.py)."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import ADMIN, Watcher, open_context, sign_in
from tests.browser.test_accessibility import blocking_violations
from tests.scan.scanning import scanned_project, scanning_server
from tests.servers import Portside
from tests.ui.test_cve_exports import HEADER

EXPORT_TIMEOUT_MS = 30_000
ORDER = ("Critical", "High", "Medium", "Low", "Negligible", "Unknown")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    data_dir = tmp_path_factory.mktemp("browser-security") / "data"
    with scanning_server(data_dir, {"PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"}) as started:
        yield started


@pytest.fixture(scope="module")
def project(server: Portside) -> dict[str, Any]:
    return scanned_project(server)


def severities(page: Page) -> set[str]:
    return set(page.locator("table.hub-findings tbody tr td:nth-child(2)").all_inner_texts())


def test_the_hub_filters_by_severity_in_place(signed_in: Page, project: dict[str, Any]) -> None:
    page = signed_in
    page.goto("/admin/users")
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Security").click()
    expect(page).to_have_url(re.compile(r"/admin/security$"))
    expect(page.get_by_role("heading", name="Security", level=1)).to_be_visible()
    page.get_by_label("Project", exact=True).fill(project["name"])
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page).to_have_url(re.compile(r"project=" + project["name"]))
    rows = page.locator("table.hub-findings tbody tr")
    expect(rows.first).to_be_visible()
    everything = severities(page)
    assert everything, "the project holds findings"
    chosen = sorted(everything)[0]

    # htmx swaps the results in place: the form stays the element it was.
    page.locator("form.hub-filters").evaluate("form => { form.dataset.kept = 'yes'; }")
    absent = next(label for label in ORDER if label not in everything)
    page.get_by_label("Severity").select_option(absent)
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page).to_have_url(re.compile(r"severity=" + absent))
    expect(page.get_by_text("No finding matches these filters.")).to_be_visible()
    expect(rows).to_have_count(0)
    page.get_by_label("Severity").select_option(chosen)
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page).to_have_url(re.compile(r"severity=" + chosen))
    expect(page.locator("table.hub-findings tbody tr td:nth-child(2)").filter(has_not_text=chosen)).to_have_count(0)
    assert severities(page) == {chosen}
    assert page.locator("form.hub-filters").get_attribute("data-kept") == "yes"

    # Each finding's artifact links to its page.
    first = page.locator("table.hub-findings tbody tr").first
    first.locator("td.hub-artifact a").first.click()
    expect(page).to_have_url(re.compile(r"/-/artifacts/sha256:"))


def test_an_export_started_from_the_project_is_downloaded(
    page: Page, server: Portside, project: dict[str, Any]
) -> None:
    sign_in(page, *project["developer"])
    page.goto(f"/projects/{project['name']}")
    form = page.get_by_role("region", name="Export CVEs")
    form.get_by_label("Repositories").fill("app")
    form.get_by_label("CVE ids").fill("CVE-2018-18074, CVE-2023-32681")
    form.get_by_role("button", name="Export CVEs").click()
    expect(page).to_have_url(re.compile(r"/account/cve-exports$"))
    expect(page.get_by_role("status").filter(has_text="started")).to_contain_text(f"of {project['name']} started.")
    row = page.locator("table.cve-exports tbody tr").first
    # The row turns to finished without a reload (htmx polls the list while it runs).
    expect(row).to_contain_text("Finished", timeout=EXPORT_TIMEOUT_MS)
    expect(row).to_contain_text("2 findings of 1 repositories")
    with page.expect_download() as started:
        row.get_by_role("link", name=re.compile("Download")).click()
    download = started.value
    assert re.fullmatch(r"scandata_export_\d+\.csv", download.suggested_filename)
    with open(download.path(), newline="", encoding="utf-8") as exported:
        rows = list(csv.reader(exported))
    assert rows[0] == HEADER
    assert sorted((r[0], r[2]) for r in rows[1:]) == [
        (f"{project['name']}/app", "CVE-2018-18074"),
        (f"{project['name']}/app", "CVE-2023-32681"),
    ]


@pytest.fixture(params=["light", "dark"])
def axe_context(request: pytest.FixtureRequest, browser: Browser, server: Portside) -> Iterator[BrowserContext]:
    # As in test_accessibility: axe is a script of its own, which the pages' CSP refuses.
    opened = open_context(browser, server, Watcher(), bypass_csp=True, color_scheme=request.param)
    yield opened
    opened.close()


def test_axe_finds_nothing_on_the_security_pages(axe_context: BrowserContext, project: dict[str, Any]) -> None:
    page = axe_context.new_page()
    sign_in(page, *ADMIN)
    problems = []
    name = project["name"]
    for path in (
        "/admin/security",
        f"/admin/security?project={name}&page_size=5",
        "/admin/security?cvss_from=eleven",  # with the form's error
        f"/projects/{name}",
        "/account/cve-exports",
    ):
        page.goto(path)
        page.wait_for_load_state("load")
        problems += [f"{path}: {v}" for v in blocking_violations(page)]
    # After htmx filtered the results.
    page.goto("/admin/security")
    page.get_by_label("Severity").select_option("High")
    page.get_by_role("button", name="Filter", exact=True).click()
    expect(page).to_have_url(re.compile(r"severity=High"))
    problems += [f"{page.url} (filtered): {v}" for v in blocking_violations(page)]
    # My CVE exports with an export listed, as its owner sees it.
    axe_context.clear_cookies()  # signed out: the same browser signs in as the developer
    developer = axe_context.new_page()
    sign_in(developer, *project["developer"])
    developer.goto(f"/projects/{name}")
    # The POST answers with a page (My CVE exports, or the form saying the last export still
    # runs): waited for, so the navigation below cannot cancel the submission.
    with developer.expect_navigation():
        developer.get_by_role("region", name="Export CVEs").get_by_role("button", name="Export CVEs").click()
    developer.goto("/account/cve-exports")  # also when the last export still ran (the form said so)
    expect(developer.locator("table.cve-exports tbody tr").first).to_contain_text("Finished", timeout=EXPORT_TIMEOUT_MS)
    problems += [f"{developer.url} (listed): {v}" for v in blocking_violations(developer)]
    assert problems == [], "\n".join(problems)
