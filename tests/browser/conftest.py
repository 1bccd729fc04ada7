"""The web UI in a real browser: Debian's Chromium driven by Playwright, headless, against a
live Portside (one per test module).

Every page a test opens is watched: a Content-Security-Policy violation (reported by the
page's `securitypolicyviolation` event and by Chromium's console) or an uncaught script
error fails the test that caused it. `signed_in` is a page whose browser signed in as the
administrator through the sign-in form; `sign_in` does the same for any account, and
`forged_post` sends a change with a page's own session and CSRF token, as a form the page
does not offer would.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import (
    APIResponse,
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Playwright,
    sync_playwright,
)

from tests.api import oci
from tests.servers import ADMIN_PASSWORD, Portside

CHROMIUM = "/usr/bin/chromium"
API = "/api/v2.0"
ADMIN = ("admin", ADMIN_PASSWORD)
PASSWORD = "Passw0rd-browser"
VIEWPORT = {"width": 1280, "height": 800}
# Pages answer in milliseconds; a step that waits longer than this has failed.
STEP_TIMEOUT_MS = 10_000

# Reports the page's CSP violations on the console, where the watcher hears them. It runs
# through the DevTools protocol, as the browser's own code: the CSP does not apply to it.
_REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@dataclass
class Watcher:
    """What went wrong in a context's pages: CSP violations and uncaught errors."""

    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or text.startswith("CSP violation"):
            self.violations.append(f"{message.page.url if message.page else '?'}: {text}")

    def page_error(self, error: Any) -> None:
        self.errors.append(str(error))

    def watch(self, page: Page) -> None:
        page.on("console", self.console)
        page.on("pageerror", self.page_error)

    def problems(self) -> list[str]:
        return [*self.violations, *self.errors]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    running = Portside(
        data_dir=tmp_path_factory.mktemp("browser") / "data",
        env={"PORTSIDE_LOGIN_FAILURE_LIMIT": "100000"},
        open_registry=False,
    )
    running.start()
    yield running
    running.stop()


# Per module, not per session: while the sync driver runs, its event loop is the running
# loop of the main thread, and the suite's async tests (in the modules after these) cannot
# start one of their own.
@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    # Debian's build, never a downloaded one; --no-sandbox because tests run as root.
    launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
    yield launched
    launched.close()


def open_context(browser: Browser, server: Portside, watcher: Watcher, **options: Any) -> BrowserContext:
    context = browser.new_context(base_url=server.url, **{"viewport": VIEWPORT, **options})
    context.set_default_timeout(STEP_TIMEOUT_MS)
    context.add_init_script(_REPORT_VIOLATIONS)
    context.on("page", watcher.watch)
    return context


@pytest.fixture
def watcher() -> Watcher:
    return Watcher()


@pytest.fixture
def context(browser: Browser, server: Portside, watcher: Watcher) -> Iterator[BrowserContext]:
    opened = open_context(browser, server, watcher)
    yield opened
    opened.close()


@pytest.fixture
def page(context: BrowserContext, watcher: Watcher) -> Iterator[Page]:
    opened = context.new_page()
    yield opened
    assert not watcher.problems(), watcher.problems()


def sign_in(page: Page, username: str, password: str, code: str | None = None) -> None:
    """Sign in through the sign-in form, as a person would."""
    page.goto("/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    if code is not None:
        page.get_by_label("Authentication code").fill(code)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def csrf_token(page: Page) -> str:
    """The CSRF token of the page's session, as its forms carry it."""
    return page.locator('input[name="csrf_token"]').first.input_value()


def forged_post(page: Page, path: str, form: dict[str, str]) -> APIResponse:
    """A POST the page offers no form for, with its session cookie and CSRF token: what a
    visitor who writes the form themselves sends. Redirects are not followed."""
    return page.request.post(path, form={**form, "csrf_token": csrf_token(page)}, max_redirects=0)


@pytest.fixture
def signed_in(page: Page) -> Page:
    sign_in(page, *ADMIN)
    assert page.url.endswith("/projects"), page.url
    return page


# --- set-up through the API --------------------------------------------------------------


def api(server: Portside, method: str, path: str, who: tuple[str, str] = ADMIN, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=server.url, auth=who, timeout=60) as client:
        return client.request(method, API + path, **kwargs)


def new_user(server: Portside) -> tuple[str, str]:
    name = unique("u")
    r = api(server, "POST", "/users", json={"username": name, "password": PASSWORD, "email": f"{name}@example.com"})
    assert r.status_code == 201, r.text
    return name, PASSWORD


def new_project(server: Portside, public: bool = False) -> str:
    name = unique("p")
    r = api(server, "POST", "/projects", json={"project_name": name, "metadata": {"public": str(public).lower()}})
    assert r.status_code == 201, r.text
    return name


def user_id(server: Portside, name: str) -> int:
    found = api(server, "GET", "/users", params={"q": f"username={name}"}).json()
    assert len(found) == 1, found
    return int(found[0]["user_id"])


def add_member(server: Portside, project: str, name: str, role_id: int) -> None:
    r = api(
        server, "POST", f"/projects/{project}/members", json={"role_id": role_id, "member_user": {"username": name}}
    )
    assert r.status_code == 201, r.text


def new_robot(server: Portside, project: str, *actions: str) -> dict[str, Any]:
    """A robot of `project` holding `repository:ACTION` for each action: the API's answer
    (`id`, `name`, `secret`)."""
    body = {
        "name": unique("r"),
        "level": "project",
        "duration": 30,
        "permissions": [
            {
                "kind": "project",
                "namespace": project,
                "access": [{"resource": "repository", "action": action} for action in actions],
            }
        ],
    }
    r = api(server, "POST", "/robots", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def turn_on_two_factor(server: Portside, who: tuple[str, str]) -> str:
    """Two-factor sign-in turned on through the API (its page has a test of its own); the secret."""
    started = api(server, "POST", "/users/current/totp", who=who)
    assert started.status_code == 200, started.text
    secret = str(started.json()["secret"])
    # The code of the step before: the one of now stays unused, for signing in with.
    confirmed = api(
        server, "PUT", "/users/current/totp", who=who, json={"code": pyotp.TOTP(secret).at(time.time() - 30)}
    )
    assert confirmed.status_code in (200, 204), confirmed.text
    return secret


def registry(server: Portside) -> httpx.Client:
    return httpx.Client(base_url=server.url, auth=ADMIN, timeout=60)


def push_image(server: Portside, repository: str, tag: str) -> oci.Manifest:
    with registry(server) as client:
        return oci.push_image(client, repository, tag)


def built_image_config(env: list[str], entrypoint: list[str], cmd: list[str]) -> dict[str, Any]:
    """An image config that says how the image runs and how it was built: a step that made
    its one layer, then one that made none."""
    return {
        "created": "2024-06-01T12:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env, "Entrypoint": entrypoint, "Cmd": cmd},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [
            {"created": "2024-06-01T11:59:00Z", "created_by": "COPY rootfs / # the whole image"},
            {"created": "2024-06-01T12:00:00Z", "created_by": f"ENV {env[-1]}", "empty_layer": True},
        ],
    }


def push_built_image(server: Portside, repository: str, tag: str) -> oci.Manifest:
    """An image whose config and history the artifact page shows."""
    config = built_image_config(["PATH=/bin", f"NONCE={uuid.uuid4().hex}"], ["/bin/sh", "-c"], ["echo hello"])
    image = oci.image_manifest(oci.Blob(json.dumps(config).encode(), oci.OCI_CONFIG), [oci.layer(900)])
    with registry(server) as client:
        oci.push_manifest(client, repository, image, tag)
    return image


def push_index(server: Portside, repository: str, tag: str) -> oci.Manifest:
    """A two-platform index, its children pushed first."""
    children = [
        oci.image_manifest(config=oci.config_blob(platform=p)) for p in (("linux", "amd64"), ("linux", "arm64"))
    ]
    index = oci.index_manifest(children)
    with registry(server) as client:
        oci.push_manifest(client, repository, index, tag)
    return index


def axe_script() -> Path:
    """axe-core's browser build, as scripts/install-test-deps installs it."""
    path = Path(os.environ.get("PORTSIDE_AXE_JS", "/opt/portside-test-assets/node_modules/axe-core/axe.min.js"))
    if not path.is_file():
        pytest.fail(f"axe-core is not installed at {path}: run scripts/install-test-deps (or set PORTSIDE_AXE_JS)")
    return path


def no_horizontal_scroll(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth"))
