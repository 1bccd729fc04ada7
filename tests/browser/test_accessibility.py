"""axe-core on the pages, in the light and the dark theme: no violation of serious or
critical impact (contrast, names of controls and links, labels, landmarks, ...). The pages
anyone sees, the projects and a project's tabs, the search and the account; a repository,
its tags and its artifacts (an image with its config and history, an index and its
children); the Robots tab with its form open and the page of a new robot's secret; and the
administration: users, a user, robots, quotas, garbage collection, a run of it, the scrub
and the audit log."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import (
    ADMIN,
    Watcher,
    api,
    axe_script,
    new_project,
    new_robot,
    new_user,
    open_context,
    push_built_image,
    push_image,
    push_index,
    sign_in,
    unique,
    user_id,
)
from tests.servers import Portside

BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def seeded(server: Portside) -> dict[str, str]:
    project = new_project(server)
    repository = f"{project}/{unique('a11y-')}"
    manifest = push_image(server, repository, "v1")
    built = unique("built-")
    push_built_image(server, f"{project}/{built}", "1.0")
    push_image(server, f"{project}/{built}", "2.0")
    index = push_index(server, f"{project}/{built}", "multi")
    new_robot(server, project, "pull", "push")
    user, _ = new_user(server)
    return {
        "project": project,
        "repository": repository,
        "digest": manifest.digest,
        "layer": manifest.blobs[1].digest,
        "built": built,
        "index": index.digest,
        "user": str(user_id(server, user)),
    }


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


def finished(server: Portside, run: int) -> None:
    deadline = time.monotonic() + 20
    while api(server, "GET", f"/system/gc/{run}").json()["job_status"] in ("Pending", "Running"):
        assert time.monotonic() < deadline, f"gc run {run} did not finish"
        time.sleep(0.1)


def check_here(page: Page, what: str) -> list[str]:
    """The page as it is now, after the test opened or sent something on it."""
    return [f"{page.url} ({what}): {v}" for v in blocking_violations(page)]


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
    for tab in ("", "/repositories", "/members", "/logs", "/preheat", "/settings"):
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


def test_a_repository_its_tags_and_its_artifacts(axe_context: BrowserContext, seeded: dict[str, str]) -> None:
    page = axe_context.new_page()
    sign_in(page, *ADMIN)
    repository = f"/projects/{seeded['project']}/repositories/{seeded['built']}"
    problems = []
    for path in (
        repository,
        f"{repository}/-/tags",
        f"{repository}/-/artifacts/1.0",  # an image with its config and history
        f"{repository}/-/artifacts/multi",  # an index with its platforms
    ):
        problems += check(page, path)
    # The questions the page asks before a change, opened.
    page.goto(repository)
    page.locator("summary", has_text="Edit the description").click()
    page.locator('summary[aria-label="Delete the tag 1.0"]').click()
    page.locator("summary", has_text="Delete repository").click()
    problems += check_here(page, "description form and delete questions open")
    page.goto(f"{repository}/-/artifacts/multi")
    page.locator("summary", has_text="Delete artifact").click()
    problems += check_here(page, "delete question open")
    assert problems == [], "\n".join(problems)


def test_the_robots_tab_its_form_and_a_new_robot_s_secret(axe_context: BrowserContext, seeded: dict[str, str]) -> None:
    page = axe_context.new_page()
    sign_in(page, *ADMIN)
    problems = check(page, f"/projects/{seeded['project']}/robots")
    page.locator("summary", has_text="New robot account").click()
    problems += check_here(page, "form open")
    page.get_by_label("Name", exact=True).fill(unique("a11y"))
    page.get_by_label("push repository").check()
    page.get_by_role("button", name="Create robot account").click()
    expect(page.get_by_label("Secret", exact=True)).not_to_have_value("")
    problems += check_here(page, "the secret")
    # The form sent back with the reason beside the field.
    page.goto(f"/projects/{seeded['project']}/robots")
    page.locator("summary", has_text="New robot account").click()
    page.get_by_label("Name", exact=True).fill("Not A Name!")
    page.get_by_role("button", name="Create robot account").click()
    expect(page.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
    problems += check_here(page, "refused")
    assert problems == [], "\n".join(problems)


def test_the_administration(axe_context: BrowserContext, server: Portside, seeded: dict[str, str]) -> None:
    page = axe_context.new_page()
    sign_in(page, *ADMIN)
    problems = []
    for path in (
        "/admin/users",
        f"/admin/users/{seeded['user']}",
        "/admin/robots",
        "/admin/quotas",
        "/admin/gc",
        "/admin/preheat",
        "/admin/audit-logs",
    ):
        problems += check(page, path)
    for path, summary in (
        ("/admin/users", "New user"),
        ("/admin/robots", "New robot account"),
        ("/admin/preheat", "Add an instance"),
    ):
        page.goto(path)
        page.locator("summary", has_text=summary).click()
        problems += check_here(page, "form open")
    page.goto("/admin/gc")
    now = page.get_by_role("region", name="Run now")
    now.get_by_label("Dry run: log what would be deleted, delete nothing").check()
    now.get_by_role("button", name="Run garbage collection now").click()
    expect(page).to_have_url(re.compile(r"/admin/gc/\d+$"))
    finished(server, int(page.url.rsplit("/", 1)[1]))
    page.reload()
    expect(page.locator(".job-log")).to_be_visible()
    problems += check_here(page, "a finished run with its log")
    problems += check(page, "/admin/gc")  # with the run in the history
    assert problems == [], "\n".join(problems)
