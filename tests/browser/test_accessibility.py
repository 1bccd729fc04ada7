"""axe-core on the main pages, in the light and the dark theme: no violation of serious or
critical impact (contrast, names of controls and links, labels, landmarks, ...)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.browser.conftest import ADMIN, Watcher, axe_script, new_project, open_context, push_image, sign_in, unique
from tests.servers import Portside

BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def seeded(server: Portside) -> dict[str, str]:
    project = new_project(server)
    repository = f"{project}/{unique('a11y-')}"
    manifest = push_image(server, repository, "v1")
    return {"project": project, "repository": repository, "digest": manifest.digest, "layer": manifest.blobs[1].digest}


@pytest.fixture(params=["light", "dark"])
def axe_context(request: pytest.FixtureRequest, browser: Browser, server: Portside) -> Iterator[BrowserContext]:
    # axe is injected as a script of its own, which the pages' CSP (script-src 'self')
    # refuses; this context alone sets the CSP aside, so that the checker can run. The
    # other tests keep it, and fail on any violation.
    opened = open_context(browser, server, Watcher(), bypass_csp=True, color_scheme=request.param)
    yield opened
    opened.close()


def blocking_violations(page: Page) -> list[str]:
    if not page.evaluate("typeof axe !== 'undefined'"):
        page.add_script_tag(path=str(axe_script()))
    results: dict[str, Any] = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = []
    for violation in results["violations"]:
        if violation["impact"] in BLOCKING:
            targets = [" ".join(map(str, node["target"])) for node in violation["nodes"][:5]]
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return found


def check(page: Page, path: str) -> list[str]:
    page.goto(path)
    page.wait_for_load_state("load")
    return [f"{path}: {v}" for v in blocking_violations(page)]


def test_the_pages_anyone_sees(axe_context: BrowserContext, seeded: dict[str, str]) -> None:
    page = axe_context.new_page()
    problems = []
    for path in ("/sign-in", "/projects", "/search", "/no/such/page"):
        problems += check(page, path)
    # The sign-in form with its error shown.
    sign_in(page, "nobody", "wrong")
    problems += [f"/sign-in (refused): {v}" for v in blocking_violations(page)]
    assert problems == [], "\n".join(problems)
    # And the check does find what it looks for: an image without a text alternative.
    page.evaluate("document.querySelector('main').append(document.createElement('img'))")
    assert any(v.startswith("image-alt (critical)") for v in blocking_violations(page))


def test_the_projects_and_a_project_s_tabs(axe_context: BrowserContext, seeded: dict[str, str]) -> None:
    page = axe_context.new_page()
    sign_in(page, *ADMIN)
    project = seeded["project"]
    problems = []
    for tab in ("", "/repositories", "/members", "/logs", "/settings"):
        problems += check(page, f"/projects/{project}{tab}")
    problems += check(page, "/projects")
    page.locator("summary", has_text="New project").click()
    problems += [f"/projects (form open): {v}" for v in blocking_violations(page)]
    assert problems == [], "\n".join(problems)


def test_the_search_and_the_account(axe_context: BrowserContext, seeded: dict[str, str]) -> None:
    page = axe_context.new_page()
    sign_in(page, *ADMIN)
    problems = []
    for path in (
        f"/search?q={seeded['project']}",
        "/search?q=v1",
        f"/search?q={seeded['digest']}",
        f"/search?q={seeded['layer']}",
        "/search?q=nothing-matches-this",
        "/account",
        "/account/password",
        "/account/two-factor",
    ):
        problems += check(page, path)
    assert problems == [], "\n".join(problems)
