"""Who sees what, in Chromium: a guest member of a private project sees it, its
repositories, its artifact pages, its members and robots, but none of the controls that
change them, and a change the guest forges with their own session and CSRF token is
refused with a 403 page, changing nothing; a signed-in stranger sees nothing of the
project anywhere: not in the list, not by URL (the very 404 page of a project that does
not exist), not in the header's search by name, repository, tag or digest."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.api import oci
from tests.browser.conftest import (
    Watcher,
    add_member,
    api,
    forged_post,
    new_project,
    new_robot,
    new_user,
    open_context,
    push_built_image,
    sign_in,
    unique,
)
from tests.servers import Portside

GUEST = 3
CSRF_REFUSAL = "did not come from Portside"
SEARCH_LABEL = "Search repositories, tags and digests"


@dataclass(frozen=True)
class World:
    project: str
    repository: str  # relative to the project
    tag: str
    image: oci.Manifest
    guest: tuple[str, str]
    stranger: tuple[str, str]
    robot: dict[str, Any]

    @property
    def repository_url(self) -> str:
        return f"/projects/{self.project}/repositories/{self.repository}"

    @property
    def artifact_url(self) -> str:
        return f"{self.repository_url}/-/artifacts/{self.image.digest}"


@pytest.fixture(scope="module")
def world(server: Portside) -> World:
    project = new_project(server)
    repository, tag = unique("hidden-"), unique("t")
    image = push_built_image(server, f"{project}/{repository}", tag)
    guest, stranger = new_user(server), new_user(server)
    add_member(server, project, guest[0], GUEST)
    robot = new_robot(server, project, "pull")
    return World(project, repository, tag, image, guest, stranger, robot)


@pytest.fixture
def as_guest(page: Page, world: World) -> Page:
    sign_in(page, *world.guest)
    expect(page).to_have_url(re.compile(r"/projects$"))
    return page


@pytest.fixture
def as_stranger(browser: Browser, server: Portside, world: World) -> Iterator[Page]:
    watcher = Watcher()
    context = open_context(browser, server, watcher)
    page = context.new_page()
    sign_in(page, *world.stranger)
    expect(page).to_have_url(re.compile(r"/projects$"))
    yield page
    context.close()
    assert not watcher.problems(), watcher.problems()


def opened(page: Page, path: str, status: int = 200) -> Page:
    response = page.goto(path)
    assert response is not None and response.status == status, (path, response and response.status)
    return page


# --- the state the forgeries must leave alone --------------------------------------------------


def state(server: Portside, world: World) -> dict[str, Any]:
    project, repository = world.project, world.repository
    base = f"/projects/{project}/repositories/{repository}"
    artifacts = api(server, "GET", f"{base}/artifacts", params={"with_tag": "true"}).json()
    members = api(server, "GET", f"/projects/{project}/members").json()
    robots = api(server, "GET", "/robots", params={"q": f"ProjectID={project_id(server, project)}"}).json()
    return {
        "repository": api(server, "GET", base).json().get("description"),
        "artifacts": sorted((a["digest"], sorted(t["name"] for t in a.get("tags") or [])) for a in artifacts),
        "members": sorted((m["entity_name"], m["role_id"]) for m in members),
        "robots": sorted((r["name"], r["disable"]) for r in robots),
    }


def project_id(server: Portside, project: str) -> int:
    return int(api(server, "GET", f"/projects/{project}").json()["project_id"])


def robot_signs_in(server: Portside, robot: dict[str, Any], repository: str) -> int:
    """What the registry answers the robot with its secret of when it was made."""
    with httpx.Client(base_url=server.url, auth=(robot["name"], robot["secret"]), timeout=30) as client:
        return client.get(f"/v2/{repository}/tags/list").status_code


# --- a guest ---------------------------------------------------------------------------------


def test_a_guest_sees_the_project_and_its_artifacts_but_no_control_that_changes_them(
    as_guest: Page, world: World
) -> None:
    page = as_guest
    expect(page.get_by_role("link", name=world.project, exact=True)).to_be_visible()
    page.get_by_role("link", name=world.project, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(world.project)
    tabs = page.get_by_role("navigation", name=f"Project {world.project}")
    tabs.get_by_role("link", name="Repositories", exact=True).click()
    page.get_by_role("link", name=f"{world.project}/{world.repository}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{world.project}/{world.repository}")
    expect(page.locator(".tag-name", has_text=world.tag)).to_be_visible()
    assert_no_controls(page, "Delete repository", "Edit the description")

    opened(page, f"{world.repository_url}/-/tags")
    expect(page.get_by_role("table", name=re.compile("^Tags of"))).to_contain_text(world.tag)
    assert_no_controls(page)

    page.goto(world.repository_url)
    page.locator("a.digest").first.click()
    expect(page).to_have_url(re.compile(re.escape(world.artifact_url) + "$"))
    expect(page.get_by_role("table", name=re.compile("^The steps that built the image"))).to_contain_text("COPY rootfs")
    expect(page.get_by_role("heading", name="Configuration", exact=True)).to_be_visible()
    assert_no_controls(page, "Delete artifact", "Add tag", "New tag")

    opened(page, f"/projects/{world.project}/members")
    expect(page.get_by_role("cell", name=world.guest[0], exact=True)).to_be_visible()
    assert_no_controls(page, "Add a member", "Change role", "Remove")
    expect(page.locator("select")).to_have_count(0)

    opened(page, f"/projects/{world.project}/robots")
    expect(page.get_by_role("cell", name=world.robot["name"], exact=True)).to_be_visible()
    assert_no_controls(page, "New robot account", "Refresh secret", "Disable", "Enable")
    expect(page.locator('input[name="access"]')).to_have_count(0)


def assert_no_controls(page: Page, *words: str) -> None:
    """No form that changes this project on the page (copying an artifact out of it, which
    needs only pull here, aside), no delete button, and none of `words` on a button, summary,
    link or heading."""
    changes = page.locator('main form[method="post"]:not([action$="/copy"])')
    expect(changes).to_have_count(0)
    expect(page.locator("main summary.danger, main button.danger, main .tag-delete")).to_have_count(0)
    for word in words:
        for role in ("button", "heading", "link"):
            expect(page.get_by_role(role, name=word)).to_have_count(0)
        expect(page.locator("summary", has_text=word)).to_have_count(0)


def test_changes_a_guest_forges_are_refused_with_a_403_page_and_change_nothing(
    server: Portside, as_guest: Page, world: World
) -> None:
    page = as_guest
    before = state(server, world)
    assert before["artifacts"] == [(world.image.digest, [world.tag])]
    assert (world.guest[0], GUEST) in before["members"]
    assert before["robots"] == [(world.robot["name"], False)]
    members = api(server, "GET", f"/projects/{world.project}/members").json()
    own = next(m["id"] for m in members if m["entity_name"] == world.guest[0])
    robot = f"/projects/{world.project}/robots/{world.robot['id']}"
    artifact = world.artifact_url
    forged = [
        (f"{artifact}/tags/{world.tag}/delete", {"back": "repository"}),
        (f"{artifact}/tags", {"tag": "forged"}),
        (f"{artifact}/delete", {}),
        (f"{world.repository_url}/-/description", {"description": "forged"}),
        (f"{world.repository_url}/-/delete", {}),
        (f"/projects/{world.project}/members", {"username": world.stranger[0], "role_id": "1"}),
        (f"/projects/{world.project}/members/{own}/role", {"role_id": "1"}),
        (f"/projects/{world.project}/members/{own}/remove", {}),
        (f"/projects/{world.project}/robots", {"name": "sneaky", "duration": "30", "access": "repository:pull"}),
        (f"{robot}/refresh", {}),
        (f"{robot}/disable", {}),
        (f"{robot}/delete", {}),
        (f"/projects/{world.project}/settings", {"public": "on"}),
        (f"/projects/{world.project}/delete", {}),
    ]
    opened(page, artifact)
    for path, form in forged:
        refused = forged_post(page, path, form)
        body = refused.text()
        assert refused.status == 403, (path, refused.status, body[:500])
        assert '<h1 id="error-title">Not allowed</h1>' in body and "HTTP 403" in body, path
        # Refused for what a guest may do, in the services' words, not for the token.
        message = re.search(r'<p class="message">(.*?)</p>', body, re.S)
        refusal = rf"{world.guest[0]} may not \w+ \w+ in project {world.project}"
        assert message and re.fullmatch(refusal, message[1]), (path, message)
        assert CSRF_REFUSAL not in body, path
        assert 'id="robot-secret"' not in body, path

    # And the form an administrator's page has, put into the guest's page and sent by the browser.
    with page.expect_navigation() as navigation:
        page.evaluate(
            """([action, token]) => {
                const form = Object.assign(document.createElement("form"), {method: "post", action});
                const field = {type: "hidden", name: "csrf_token", value: token};
                form.append(Object.assign(document.createElement("input"), field));
                document.body.append(form);
                form.submit();
            }""",
            [f"{artifact}/delete", page.locator('input[name="csrf_token"]').first.input_value()],
        )
    response = navigation.value
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    expect(page.locator("main .message")).to_contain_text("may not")

    assert state(server, world) == before
    assert api(server, "GET", f"/projects/{world.project}").json()["metadata"]["public"] == "false"
    assert (
        robot_signs_in(server, world.robot, f"{world.project}/{world.repository}") == 200
    )  # the secret was not refreshed


# --- a stranger ------------------------------------------------------------------------------


def shown(page: Page, *names: str) -> tuple[str, str]:
    """The page's title and main text, with `names` written as NAME: what two pages that
    differ in those names alone have in common."""
    title, text = page.title(), page.locator("main").inner_text()
    for name in names:
        title, text = title.replace(name, "NAME"), text.replace(name, "NAME")
    return title, text


def test_a_stranger_sees_nothing_of_a_private_project(as_stranger: Page, world: World) -> None:
    page = as_stranger
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    expect(page.get_by_role("link", name=world.project, exact=True)).to_have_count(0)
    assert world.project not in page.locator("main").inner_text()
    missing = unique("p")
    for tail in (
        "",
        "/repositories",
        "/members",
        "/robots",
        "/logs",
        "/settings",
        f"/repositories/{world.repository}",
        f"/repositories/{world.repository}/-/tags",
        f"/repositories/{world.repository}/-/artifacts/{world.tag}",
        f"/repositories/{world.repository}/-/artifacts/{world.image.digest}",
    ):
        hidden = shown(opened(page, f"/projects/{world.project}{tail}", 404), world.project)
        absent = shown(opened(page, f"/projects/{missing}{tail}", 404), missing)
        assert hidden == absent, tail
        assert hidden[0].startswith("Not found"), hidden
    for query in (
        world.project,
        world.repository,
        f"{world.project}/{world.repository}",
        world.tag,
        f"{world.repository}:{world.tag}",
        world.image.digest,
        world.image.digest[:19],
        world.image.blobs[1].digest,
    ):
        box = page.get_by_role("searchbox", name=SEARCH_LABEL)
        box.fill(query)
        box.press("Enter")
        expect(page).to_have_url(re.compile(r"/search\?q="))
        expect(page.locator("#results")).to_have_text(f"Nothing you may see matches “{query}”.")
        expect(page.locator("#results a")).to_have_count(0)
