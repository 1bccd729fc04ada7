"""The replication pages in Chromium: a push policy to a CNCF Distribution (htpasswd) added
through the form, its dry run, run from its page, the execution with its tasks and a task's
log; the pages under the strict CSP (the watcher fails on any violation) and axe's
accessibility check, light and dark."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import Watcher, api, open_context, push_image, sign_in
from tests.browser.test_accessibility import blocking_violations
from tests.servers import ADMIN_PASSWORD, Distribution, Portside
from tests.ui.test_admin_registries import SECRET, USER
from tests.ui.test_admin_registries import distribution as distribution  # noqa: PLC0414 (the fixture)

# Where to keep screenshots of the pages, for a person to look at (unset: none are kept).
SHOTS = os.environ.get("PORTSIDE_SCREENSHOTS")


def _shot(page: Page, name: str) -> None:
    if SHOTS:
        # caret="initial": hiding the caret injects a style, which the strict CSP refuses.
        page.screenshot(path=f"{SHOTS}/{name}.png", full_page=True, caret="initial")


def _registry(server: Portside, distribution: Distribution) -> str:
    made = api(
        server,
        "POST",
        "/registries",
        json={
            "name": "dist-replication",
            "type": "docker-registry",
            "url": distribution.url,
            "credential": {"type": "basic", "access_key": USER, "access_secret": SECRET},
        },
    )
    assert made.status_code in (201, 409), made.text
    return str(api(server, "GET", "/registries", params={"q": "name=dist-replication"}).json()[0]["id"])


def test_a_policy_is_added_dry_run_run_and_its_log_read(
    signed_in: Page, server: Portside, distribution: Distribution
) -> None:
    registry_id = _registry(server, distribution)
    for n in range(2):
        push_image(server, f"library/browser-repl-{n}", "v1")
    page = signed_in
    page.goto("/admin/replication")
    page.locator("summary", has_text="Add a policy").click()
    page.get_by_label("Name", exact=True).fill("browser-push")
    page.get_by_label("Registry", exact=True).select_option(registry_id)
    page.get_by_label("Repositories", exact=True).fill("library/browser-repl-*")
    page.get_by_label("Destination namespace").fill("browser")
    page.get_by_label("Components replaced").fill("1")
    _shot(page, "replication-form")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("Replication policy browser-push added")
    _shot(page, "replication-policy")
    page.get_by_role("link", name="Dry run").click()
    expect(page.get_by_role("status")).to_contain_text("2 artifacts would be copied")
    _shot(page, "replication-dry-run")
    page.go_back()
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("status")).to_contain_text("Execution started.")
    for _ in range(60):
        if "Succeed" in page.locator(".admin-facts").inner_text():
            break
        page.wait_for_timeout(500)
        page.reload()
    expect(page.locator(".admin-facts")).to_contain_text("2 total · 2 succeeded · 0 failed")
    _shot(page, "replication-execution")
    page.locator("table.replication-tasks").get_by_role("link", name="Log of task").first.click()
    expect(page.locator("pre")).to_contain_text("copied library/browser-repl-")
    _shot(page, "replication-log")
    page.goto("/admin/replication")
    expect(page.get_by_role("row").filter(has_text="browser-push")).to_contain_text("push to dist-replication")
    _shot(page, "replication-list")


@pytest.fixture(params=["light", "dark"])
def axe_context(request: pytest.FixtureRequest, browser: Browser, server: object) -> Iterator[BrowserContext]:
    opened = open_context(browser, server, Watcher(), bypass_csp=True, color_scheme=request.param)  # type: ignore[arg-type]
    yield opened
    opened.close()


def test_axe_finds_nothing_on_the_replication_pages(
    axe_context: BrowserContext, server: Portside, distribution: Distribution
) -> None:
    registry_id = _registry(server, distribution)
    push_image(server, "library/axe-repl", "v1")
    made = api(
        server,
        "POST",
        "/replication/policies",
        json={
            "name": "axe-replication",
            "dest_registry": {"id": int(registry_id)},
            "filters": [{"type": "name", "value": "library/axe-repl"}],
        },
    )
    assert made.status_code in (201, 409), made.text
    policy_id = api(server, "GET", "/replication/policies", params={"name": "axe-replication"}).json()[0]["id"]
    started = api(server, "POST", "/replication/executions", json={"policy_id": policy_id})
    execution_id = started.headers["Location"].rsplit("/", 1)[1]
    page = axe_context.new_page()
    sign_in(page, "admin", ADMIN_PASSWORD)
    problems = []
    paths = [
        "/admin/replication",
        f"/admin/replication/{policy_id}",
        f"/admin/replication/{policy_id}/dry-run",
        f"/admin/replication/executions/{execution_id}",
    ]
    for path in paths:
        page.goto(path)
        page.wait_for_load_state("load")
        problems += [f"{path}: {v}" for v in blocking_violations(page)]
    page.goto("/admin/replication")
    page.locator("summary", has_text="Add a policy").click()
    page.get_by_label("Name", exact=True).fill("bad")
    page.get_by_label("Trigger", exact=True).select_option("scheduled")
    page.get_by_label("Cron (scheduled)").fill("nightly")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.locator("#cron-error")).to_contain_text("invalid cron")
    problems += [f"/admin/replication (refused): {v}" for v in blocking_violations(page)]
    assert problems == [], "\n".join(problems)
