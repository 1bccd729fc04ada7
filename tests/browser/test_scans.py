"""The scanning tabs in a real browser: a scanned Debian 12 image (the vulnerability database
imported from the fixtures) opened from its artifact page, the findings filtered to the
fixable ones by htmx without a page load, the CSV downloaded as the filter stands, and
axe-core over the Vulnerabilities and SBOM tabs, the repository's badges, the
administration's scanning and scanners pages and a project's settings, in the light and the
dark theme; an adapter registered, tested and made the default from the scanners page, and
chosen on a project's settings."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.api import oci
from tests.browser.conftest import ADMIN, Watcher, new_project, open_context, registry, sign_in
from tests.browser.test_accessibility import blocking_violations
from tests.scan.scanning import REPORT_MIME, scanning_server, vulnerable_image, wait_for_scan
from tests.scan.stub_adapters import running
from tests.scan.test_api_scanning import api as api_client
from tests.servers import Portside
from tests.ui.test_admin_scanners import KEY
from tests.ui.test_admin_scanners import _Adapter as MetadataAdapter


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    data_dir = tmp_path_factory.mktemp("browser-scans") / "data"
    with scanning_server(data_dir, {"PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"}) as started:
        yield started


@pytest.fixture(scope="module")
def scanned(server: Portside) -> dict[str, Any]:
    project = new_project(server)
    image = vulnerable_image()
    with registry(server) as client:
        oci.push_manifest(client, f"{project}/app", image, "v1")
    path = f"/projects/{project}/repositories/app/artifacts/{image.digest}"
    with api_client(server) as client:
        assert client.post(f"{path}/scan", json={"scan_type": "sbom"}).status_code == 202
        artifact = wait_for_scan(client, path, "sbom_overview")
        report = client.get(f"{path}/additions/vulnerabilities").json()[REPORT_MIME]
    assert artifact["sbom_overview"]["scan_status"] == "Success", artifact
    return {
        "repository": f"/projects/{project}/repositories/app",
        "artifact": f"/projects/{project}/repositories/app/-/artifacts/{image.digest}",
        "vulnerabilities": report["vulnerabilities"],
        "project": project,
    }


def finding_ids(page: Page) -> list[str]:
    return sorted(page.locator("table.findings tbody tr td.vulnerability-id").all_inner_texts())


def test_the_tab_filters_to_the_fixable_and_downloads_them(signed_in: Page, scanned: dict[str, Any]) -> None:
    page = signed_in
    page.goto(scanned["artifact"])
    page.get_by_role("navigation", name="Views of this artifact").get_by_role("link", name="Vulnerabilities").click()
    expect(page).to_have_url(re.compile(r"/vulnerabilities$"))
    everything = scanned["vulnerabilities"]
    fixable = sorted(v["id"] for v in everything if v["fix_version"])
    assert fixable, "the image holds fixable findings"
    expect(page.locator("table.findings tbody tr")).to_have_count(len(everything))

    # htmx swaps the findings in place: the histogram stays the element it was.
    page.locator("table.severity-histogram").evaluate("table => { table.dataset.kept = 'yes'; }")
    page.get_by_label("Fixable only").check()
    expect(page.locator("table.findings tbody tr")).to_have_count(len(fixable))
    expect(page).to_have_url(re.compile(r"fixable=on"))
    assert page.locator("table.severity-histogram").get_attribute("data-kept") == "yes"
    assert finding_ids(page) == fixable
    expect(page.locator("table.findings tbody", has_text="not fixed")).to_have_count(0)

    with page.expect_download() as started:
        page.get_by_role("link", name="Download as CSV").click()
    download = started.value
    assert download.suggested_filename.endswith("-vulnerabilities.csv")
    with open(download.path(), newline="", encoding="utf-8") as exported:
        rows = list(csv.reader(exported))
    assert rows[0][0] == "Vulnerability"
    assert sorted(r[0] for r in rows[1:]) == fixable


@pytest.fixture(params=["light", "dark"])
def axe_context(request: pytest.FixtureRequest, browser: Browser, server: Portside) -> Iterator[BrowserContext]:
    # As in test_accessibility: axe is a script of its own, which the pages' CSP refuses.
    opened = open_context(browser, server, Watcher(), bypass_csp=True, color_scheme=request.param)
    yield opened
    opened.close()


def test_axe_finds_nothing_on_the_scanning_pages(axe_context: BrowserContext, scanned: dict[str, Any]) -> None:
    page = axe_context.new_page()
    sign_in(page, *ADMIN)
    problems = []
    for path in (
        f"{scanned['artifact']}/vulnerabilities",
        f"{scanned['artifact']}/vulnerabilities?fixable=on",
        f"{scanned['artifact']}/sbom",
        scanned["repository"],
        "/admin/scanning",
        "/admin/scanners",
        f"/projects/{scanned['project']}/settings",
    ):
        page.goto(path)
        page.wait_for_load_state("load")
        problems += [f"{path}: {v}" for v in blocking_violations(page)]
    # After a filter htmx applied.
    page.goto(f"{scanned['artifact']}/vulnerabilities")
    page.get_by_label("Severity", exact=True).select_option(scanned["vulnerabilities"][0]["severity"])
    expect(page).to_have_url(re.compile(r"severity="))
    problems += [f"{page.url} (filtered): {v}" for v in blocking_violations(page)]
    assert problems == [], "\n".join(problems)


def test_an_adapter_is_registered_from_the_scanners_page(signed_in: Page, scanned: dict[str, Any]) -> None:
    page = signed_in
    with running(MetadataAdapter) as url:
        page.goto("/admin/scanners")
        page.locator("summary", has_text="Register a scanner").click()
        page.get_by_label("Name", exact=True).fill("trivy-ui")
        page.get_by_label("Adapter URL").fill(url)
        page.get_by_label("Authentication").select_option("X-ScannerAdapter-API-Key")
        page.get_by_label("Credential").fill(KEY)
        page.get_by_role("button", name="Test connection").click()
        expect(page.get_by_role("status")).to_contain_text("answers: Trivy 0.50.1 by Aqua Security")
        page.get_by_label("Credential").fill(KEY)  # never sent back to the page
        page.get_by_role("button", name="Register", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text("Scanner trivy-ui registered.")
        row = page.get_by_role("row").filter(has_text="trivy-ui")
        expect(row).to_contain_text("Healthy")
        row.get_by_role("button", name="Make default").click()
        expect(page.get_by_role("row").filter(has_text="trivy-ui")).to_contain_text("Default")

        # The project's settings offer it; choosing it is saved.
        page.goto(f"/projects/{scanned['project']}/settings")
        page.get_by_label("Vulnerability scanner").select_option(label="trivy-ui (default)")
        page.get_by_role("button", name="Save scanner").click()
        expect(page.get_by_role("status")).to_contain_text("Scanner saved.")
        expect(page.get_by_label("Vulnerability scanner")).to_have_value(re.compile(r"^(?!portside-builtin$)"))

        # Back to the built-in scanner as the default, so the other tests scan as before.
        page.goto("/admin/scanners")
        page.get_by_role("row").filter(has_text="Portside").get_by_role("button", name="Make default").click()
        expect(page.get_by_role("row").filter(has_text="Portside")).to_contain_text("Default")
        page.goto(f"/projects/{scanned['project']}/settings")
        page.get_by_label("Vulnerability scanner").select_option("portside-builtin")
        page.get_by_role("button", name="Save scanner").click()
        expect(page.get_by_role("status")).to_contain_text("Scanner saved.")
