"""The whole way through, in Chromium, as one person (and a colleague) would go: the
administrator signs in, creates a user on the users page, a project through its form,
makes the user a member and a robot with push and pull on the Robots tab, reading its
secret once; skopeo pushes an image with the robot's name and secret; the header's search
finds the repository, whose artifact page shows the layers beside their history lines and
the config; the page's podman pull command, copied with its button, pulls the image into a
real podman; the colleague signs in with a TOTP code and sees it; a tag is deleted through
its confirmation; garbage collection runs as a dry run and for real from /admin/gc, and
both runs are in the history with their logs.

The images are made here from Debian's busybox-static, as tests/e2e makes theirs: nothing
comes from the internet.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyotp
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import (
    ADMIN,
    PASSWORD,
    Watcher,
    api,
    built_image_config,
    open_context,
    sign_in,
    turn_on_two_factor,
    unique,
)
from tests.e2e.clients import Podman, run, skopeo
from tests.e2e.images import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    OciLayout,
    busybox_rootfs_bytes,
    canonical_json,
    gzip_bytes,
    sha256_digest,
)
from tests.servers import Portside

pytestmark = pytest.mark.e2e

# Steps that finish in the background (a GC run) are waited for this long at most.
JOB_TIMEOUT_MS = 20_000
SEARCH_LABEL = "Search repositories, tags and digests"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    # No grace period: the untagged artifact pushed a moment ago is what GC is to delete.
    running = Portside(
        data_dir=tmp_path_factory.mktemp("journey") / "data",
        env={"PORTSIDE_LOGIN_FAILURE_LIMIT": "100000", "PORTSIDE_GC_GRACE_SECONDS": "0"},
        open_registry=False,
    )
    running.start()
    yield running
    running.stop()


@dataclass
class Built:
    layout: Path
    digest: str  # the manifest's, as the registry must answer
    layer: str


def build_images(root: Path) -> tuple[Built, Built]:
    """An OCI layout with two busybox images on one layer: `v1` and `old`, which differ in
    their config alone."""
    layout = OciLayout(root)
    rootfs = busybox_rootfs_bytes({"etc/journey": b"ahoy\n"})
    layer = layout.add_blob(gzip_bytes(rootfs), OCI_LAYER_GZIP)
    built = []
    for tag, greeting in (("v1", "ahoy"), ("old", "farewell")):
        config: dict[str, Any] = built_image_config(
            ["PATH=/bin", f"GREETING={greeting}"], ["/bin/sh", "-c"], ["echo $GREETING"]
        )
        config["rootfs"]["diff_ids"] = [sha256_digest(rootfs)]
        config_desc = layout.add_blob(canonical_json(config), OCI_CONFIG)
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_desc.to_json(),
            "layers": [layer.to_json()],
        }
        desc = layout.add_blob(canonical_json(manifest), OCI_MANIFEST)
        layout.tag(desc, tag)
        built.append(Built(root, desc.digest, layer.digest))
    return built[0], built[1]


def artifact(server: Portside, project: str, repository: str, reference: str) -> int:
    """The status the API answers for an artifact (by tag or digest)."""
    return api(server, "GET", f"/projects/{project}/repositories/{repository}/artifacts/{reference}").status_code


def tags_of(server: Portside, project: str, repository: str) -> set[str]:
    found = api(server, "GET", f"/projects/{project}/repositories/{repository}/artifacts", params={"with_tag": "true"})
    assert found.status_code == 200, found.text
    return {tag["name"] for a in found.json() for tag in a.get("tags") or []}


def create_user_on_the_users_page(page: Page, name: str) -> None:
    page.get_by_role("link", name="Administration").click()
    expect(page).to_have_url(re.compile(r"/admin/users$"))
    page.locator("summary", has_text="New user").click()
    page.get_by_label("Username", exact=True).fill(name)
    page.get_by_label("Email", exact=True).fill(f"{name}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Password again", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Create user").click()
    expect(page.get_by_role("status")).to_have_text(f"User {name} created.")
    expect(page).to_have_url(re.compile(r"/admin/users/\d+$"))


def create_project_through_its_form(page: Page, project: str) -> None:
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Projects").click()
    page.locator("summary", has_text="New project").click()
    page.get_by_label("Name", exact=True).fill(project)
    page.get_by_role("button", name="Create project").click()
    expect(page.get_by_role("status")).to_have_text(f"Project {project} created.")
    expect(page.get_by_role("heading", level=1)).to_have_text(project)


def tab(page: Page, project: str, title: str) -> None:
    page.get_by_role("navigation", name=f"Project {project}").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("navigation", name=f"Project {project}").locator('[aria-current="page"]')).to_have_text(
        title
    )


def add_member(page: Page, project: str, name: str) -> None:
    tab(page, project, "Members")
    page.get_by_label("Username", exact=True).fill(name)
    page.get_by_label("Role", exact=True).select_option(label="Developer")
    page.get_by_role("button", name="Add", exact=True).click()
    expect(page.get_by_role("status")).to_have_text(f"{name} added.")
    expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()


def create_robot(page: Page, project: str) -> tuple[str, str]:
    """A robot with push and pull, made on the Robots tab; its name and secret, read from
    the one page that shows the secret."""
    tab(page, project, "Robots")
    page.locator("summary", has_text="New robot account").click()
    page.get_by_label("Name", exact=True).fill("ci")
    page.get_by_label("Description", exact=True).fill("pushes from the journey")
    expect(page.get_by_label("pull repository")).to_be_checked()  # the form's default
    page.get_by_label("push repository").check()
    page.get_by_role("button", name="Create robot account").click()
    expect(page.get_by_role("heading", level=2, name=re.compile("^Robot account created"))).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("it will not be shown again")
    name = page.get_by_label("Username", exact=True).input_value()
    secret = page.get_by_label("Secret", exact=True).input_value()
    assert name == f"robot${project}+ci", name
    assert len(secret) >= 16, secret
    page.get_by_role("link", name="I have copied the secret").click()
    expect(page.get_by_role("cell", name=name, exact=True)).to_be_visible()
    expect(page.get_by_role("cell", name="repository: pull, push")).to_be_visible()
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content()
    return name, secret


def push_with_skopeo(server: Portside, project: str, repository: str, image: Built, tag: str, creds: str) -> None:
    skopeo(
        "copy",
        "--dest-creds",
        creds,
        "--dest-tls-verify=false",
        f"oci:{image.layout}:{tag}",
        f"docker://{server.host}/{project}/{repository}:{tag}",
    )


def open_the_artifact_from_the_header_search(page: Page, project: str, repository: str, image: Built) -> None:
    box = page.get_by_role("searchbox", name=SEARCH_LABEL)
    box.fill(repository)
    box.press("Enter")
    expect(page).to_have_url(re.compile(rf"/search\?q={repository}$"))
    page.get_by_role("link", name=f"{project}/{repository}", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{project}/{repository}")
    expect(page.get_by_role("table", name=re.compile("^Artifacts of")).locator("tbody tr")).to_have_count(2)
    row = page.locator("table.artifacts tbody tr", has=page.locator(".tag-name", has_text=re.compile("^v1$")))
    row.locator("a.digest").click()
    expect(page).to_have_url(re.compile(rf"/-/artifacts/{re.escape(image.digest)}$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Image {image.digest[:19]}")


def check_layers_and_config(page: Page, image: Built) -> None:
    layers = page.get_by_role("table", name=re.compile("^The steps that built the image"))
    rows = layers.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.nth(0)).to_contain_text("COPY rootfs / # the whole image")
    expect(rows.nth(0)).to_contain_text(image.layer[:19])
    expect(rows.nth(1)).to_contain_text("ENV GREETING=ahoy")
    expect(rows.nth(1)).to_contain_text("empty")
    config = page.locator("section", has=page.get_by_role("heading", name="Configuration", exact=True))
    expect(config.locator("dt", has_text="Entrypoint").locator("+ dd")).to_have_text('["/bin/sh", "-c"]')
    expect(config.locator("dt", has_text="Command").locator("+ dd")).to_have_text('["echo $GREETING"]')
    expect(config.locator("ul.env li")).to_have_text(["PATH=/bin", "GREETING=ahoy"])
    expect(config.locator("dt", has_text="Platform").locator("+ dd")).to_have_text("linux/amd64")


def copy_the_podman_command(page: Page, server: Portside, project: str, repository: str) -> str:
    by_tag = page.locator("#pull-tag")
    command = by_tag.get_by_label("Podman", exact=True).input_value()
    assert command == f"podman pull --tls-verify=false {server.host}/{project}/{repository}:v1", command
    button = by_tag.get_by_role("button", name="Copy: Podman")
    button.click()
    expect(button).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == command
    expect(button).to_have_text("Copy")  # and back, ready for the next one
    return command


def pull_with_podman(podman: Podman, server: Portside, command: str, auth: Path, image: Built) -> None:
    """Run the page's command with a real podman (on its own storage), signed in first."""
    env = {"REGISTRY_AUTH_FILE": str(auth)}
    login = [*podman.base(), "login", "--tls-verify=false", "--username", ADMIN[0], "--password-stdin", server.host]
    signed = subprocess.run(
        login, input=ADMIN[1], capture_output=True, text=True, timeout=60, env={**os.environ, **env}
    )
    assert signed.returncode == 0, signed.stderr
    words = shlex.split(command)
    assert words[:2] == ["podman", "pull"], words
    run([*podman.base(), *words[1:]], env=env)
    reference = words[-1]
    inspected = json.loads(run([*podman.base(), "image", "inspect", reference], env=env).stdout)[0]
    assert inspected["Digest"] == image.digest
    assert inspected["Config"]["Env"] == ["PATH=/bin", "GREETING=ahoy"]
    assert inspected["Config"]["Entrypoint"] == ["/bin/sh", "-c"]
    run([*podman.base(), "rmi", "--force", reference], env=env)


def colleague_signs_in_with_a_code(
    browser: Browser, server: Portside, watcher: Watcher, member: str, secret: str, project: str, repository: str
) -> None:
    context = open_context(browser, server, watcher)
    try:
        page = context.new_page()
        sign_in(page, member, PASSWORD)
        expect(page.get_by_role("alert")).to_contain_text("asks for an authentication code")
        sign_in(page, member, PASSWORD, code=pyotp.TOTP(secret).now())
        expect(page).to_have_url(re.compile(r"/projects$"))
        expect(page.get_by_label(f"Account menu of {member}")).to_be_visible()
        page.get_by_role("link", name=project, exact=True).click()
        tab(page, project, "Repositories")
        expect(page.get_by_role("link", name=f"{project}/{repository}")).to_be_visible()
    finally:
        context.close()


def delete_the_tag(page: Page, server: Portside, project: str, repository: str, tag: str) -> None:
    page.get_by_role("navigation", name="Breadcrumbs").get_by_role("link", name=repository).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{project}/{repository}")
    chip = page.locator(".tag-chip", has=page.locator(".tag-name", has_text=re.compile(f"^{tag}$")))
    chip.locator(f'summary[aria-label="Delete the tag {tag}"]').click()
    confirm = chip.get_by_role("button", name="Delete tag")
    expect(chip).to_contain_text(f"Delete the tag {tag}?")
    confirm.click()
    expect(page.get_by_role("status")).to_have_text(f"Tag {tag} deleted.")
    expect(page.locator(".tag-name", has_text=re.compile(f"^{tag}$"))).to_have_count(0)
    expect(page.locator(".tag-name", has_text=re.compile("^v1$"))).to_have_count(1)
    expect(page.get_by_text("untagged", exact=True)).to_be_visible()
    assert tags_of(server, project, repository) == {"v1"}
    assert artifact(server, project, repository, tag) == 404


def run_gc(page: Page, *options: str) -> int:
    """Run GC from /admin/gc with the options ticked; the run's number, once it succeeded."""
    page.get_by_role("navigation", name="Administration").get_by_role("link", name="Garbage collection").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Garbage collection")
    now = page.get_by_role("region", name="Run now")
    for option in options:
        now.get_by_label(option).check()
    now.get_by_role("button", name="Run garbage collection now").click()
    expect(page).to_have_url(re.compile(r"/admin/gc/\d+$"))
    run_id = int(page.url.rsplit("/", 1)[1])
    expect(page.get_by_role("status")).to_have_text(f"Garbage collection started (run {run_id}).")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Garbage collection: run {run_id}")
    # The page follows a run still going on by itself.
    expect(page.locator(".job-status")).to_have_text("Success", timeout=JOB_TIMEOUT_MS)
    expect(page.locator(".job-log")).to_contain_text(f"gc job {run_id} started", timeout=JOB_TIMEOUT_MS)
    return run_id


DRY_RUN = "Dry run: log what would be deleted, delete nothing"
UNTAGGED = "Delete untagged artifacts too"


def test_from_signing_in_to_pushing_pulling_and_collecting(
    server: Portside, browser: Browser, watcher: Watcher, page: Page, podman: Podman, tmp_path: Path
) -> None:
    project, repository, member = unique("journey"), unique("app-"), unique("colleague")
    v1, old = build_images(tmp_path / "layout")
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)

    sign_in(page, *ADMIN)
    expect(page).to_have_url(re.compile(r"/projects$"))
    create_user_on_the_users_page(page, member)
    secret_of_member = turn_on_two_factor(server, (member, PASSWORD))
    create_project_through_its_form(page, project)
    assert api(server, "GET", f"/projects/{project}").json()["metadata"]["public"] == "false"
    add_member(page, project, member)
    members = {m["entity_name"]: m["role_id"] for m in api(server, "GET", f"/projects/{project}/members").json()}
    assert members[member] == 2

    robot, secret = create_robot(page, project)
    held = api(server, "GET", "/robots", params={"q": f"name={robot}"}).json()
    assert [{(a["resource"], a["action"]) for a in r["permissions"][0]["access"]} for r in held] == [
        {("repository", "pull"), ("repository", "push")}
    ]
    for image, tag in ((v1, "v1"), (old, "old")):
        push_with_skopeo(server, project, repository, image, tag, f"{robot}:{secret}")
    assert tags_of(server, project, repository) == {"v1", "old"}
    pushed = api(server, "GET", f"/projects/{project}/repositories/{repository}/artifacts/v1").json()
    assert pushed["digest"] == v1.digest

    open_the_artifact_from_the_header_search(page, project, repository, v1)
    check_layers_and_config(page, v1)
    command = copy_the_podman_command(page, server, project, repository)
    pull_with_podman(podman, server, command, tmp_path / "auth.json", v1)
    colleague_signs_in_with_a_code(browser, server, watcher, member, secret_of_member, project, repository)

    delete_the_tag(page, server, project, repository, "old")
    assert artifact(server, project, repository, old.digest) == 200  # untagged, not gone

    page.get_by_role("link", name="Administration").click()
    dry = run_gc(page, DRY_RUN, UNTAGGED)
    expect(page.locator(".job-log")).to_contain_text(
        f"would remove untagged manifest {project}/{repository}@{old.digest}"
    )
    expect(page.locator("dt", has_text="Dry run").locator("+ dd")).to_have_text("Yes")
    assert artifact(server, project, repository, old.digest) == 200
    real = run_gc(page, UNTAGGED)
    log = page.locator(".job-log")
    expect(log).to_contain_text(f"remove untagged manifest {project}/{repository}@{old.digest}")
    expect(log).not_to_contain_text("would ")
    assert artifact(server, project, repository, old.digest) == 404
    assert artifact(server, project, repository, "v1") == 200
    assert api(server, "GET", f"/system/gc/{real}").json()["job_status"] == "Success"

    page.get_by_role("navigation", name="Breadcrumbs").get_by_role("link", name="Garbage collection").click()
    history = page.get_by_role("table", name=re.compile("^Runs of garbage collection"))
    dry_row = history.locator("tr", has=page.get_by_role("link", name=str(dry), exact=True))
    real_row = history.locator("tr", has=page.get_by_role("link", name=str(real), exact=True))
    expect(dry_row).to_contain_text("Success")
    expect(dry_row).to_contain_text("Dry run")
    expect(real_row).to_contain_text("Success")
    expect(real_row).to_contain_text("untagged deleted")
    expect(real_row).not_to_contain_text("Dry run")
    dry_row.get_by_role("link", name=str(dry), exact=True).click()
    expect(page).to_have_url(re.compile(rf"/admin/gc/{dry}$"))
    expect(page.locator(".job-log")).to_contain_text(f"gc job {dry} started")
    expect(page.locator(".job-log")).to_contain_text("dry run:")
