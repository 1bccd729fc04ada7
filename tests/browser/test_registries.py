"""The registries page in Chromium: a CNCF Distribution (htpasswd) added through the form after
a connection test, tested from the list, edited with its secret kept, removed after the
question; the pages under the strict CSP (the watcher fails on any violation) and axe's
accessibility check, light and dark."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import Watcher, api, open_context, sign_in
from tests.browser.test_accessibility import blocking_violations
from tests.servers import ADMIN_PASSWORD, Distribution
from tests.ui.test_admin_registries import SECRET, USER
from tests.ui.test_admin_registries import distribution as distribution  # noqa: PLC0414 (the fixture)


def test_a_registry_is_added_tested_edited_and_removed(signed_in: Page, distribution: Distribution) -> None:
    page = signed_in
    page.goto("/admin/registries")
    page.locator("summary", has_text="Add a registry").click()
    page.get_by_label("Name", exact=True).fill("dist-ui")
    page.get_by_label("URL", exact=True).fill(distribution.url)
    page.get_by_label("Type", exact=True).select_option("docker-registry")
    page.get_by_label("Access key").fill(USER)
    page.get_by_label("Access secret").fill(SECRET)
    page.get_by_role("button", name="Test connection").click()
    expect(page.get_by_role("status")).to_contain_text(f"{distribution.url} answers.")
    page.get_by_label("Access secret").fill(SECRET)  # never sent back to the page
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Registry dist-ui added")
    row = page.get_by_role("row").filter(has_text="dist-ui")
    row.get_by_role("button", name="Test").click()
    expect(page.get_by_role("status")).to_contain_text("dist-ui is healthy.")
    expect(page.get_by_role("row").filter(has_text="dist-ui")).to_contain_text("Healthy")

    page.get_by_role("row").filter(has_text="dist-ui").get_by_role("link", name="Edit").click()
    page.get_by_label("Description").fill("Distribution on loopback")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Registry dist-ui changed")
    page.get_by_role("row").filter(has_text="dist-ui").get_by_role("button", name="Test").click()
    expect(page.get_by_role("status")).to_contain_text("dist-ui is healthy.")  # the secret was kept

    row = page.get_by_role("row").filter(has_text="dist-ui")
    row.locator("summary", has_text="Remove").click()
    row.get_by_role("button", name="Remove").click()
    expect(page.get_by_role("status")).to_contain_text("Registry dist-ui removed.")
    assert SECRET not in page.content()


@pytest.fixture(params=["light", "dark"])
def axe_context(request: pytest.FixtureRequest, browser: Browser, server: object) -> Iterator[BrowserContext]:
    opened = open_context(browser, server, Watcher(), bypass_csp=True, color_scheme=request.param)  # type: ignore[arg-type]
    yield opened
    opened.close()


def test_axe_finds_nothing_on_the_registries_pages(axe_context: BrowserContext, server: object) -> None:
    made = api(server, "POST", "/registries", json={"name": "axe", "type": "harbor", "url": "https://axe.example"})  # type: ignore[arg-type]
    assert made.status_code in (201, 409), made.text
    registry_id = api(server, "GET", "/registries", params={"q": "name=axe"}).json()[0]["id"]  # type: ignore[arg-type]
    page = axe_context.new_page()
    sign_in(page, "admin", ADMIN_PASSWORD)
    problems = []
    for path in ("/admin/registries", f"/admin/registries/{registry_id}"):
        page.goto(path)
        page.wait_for_load_state("load")
        problems += [f"{path}: {v}" for v in blocking_violations(page)]
    page.goto("/admin/registries")
    page.locator("summary", has_text="Add a registry").click()
    page.get_by_label("Name", exact=True).fill("bad")
    page.get_by_label("URL", exact=True).fill("ftp://registry.example")  # a URL, but not http(s)
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#url-error")).to_contain_text("url: must be an http:// or https:// URL")
    problems += [f"/admin/registries (refused): {v}" for v in blocking_violations(page)]
    assert problems == [], "\n".join(problems)
