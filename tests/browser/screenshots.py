"""Screenshots of the main pages for the documentation (`scripts/screenshots`).

Starts Portside on a temporary data directory, seeds two projects with a few pushed
images, signs in through the sign-in page in Chromium and saves each page at 1280x800 as
docs/screenshots/NAME.png. A page that answers 404 (one not built yet) is skipped with a
line that says so.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
from playwright.sync_api import Page, sync_playwright

from tests.api import oci
from tests.browser.conftest import ADMIN, API, CHROMIUM, STEP_TIMEOUT_MS, VIEWPORT, sign_in
from tests.servers import Portside

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
PROJECT = "acme"
# (repository in PROJECT, tags); each gets an image of its own, the first two share a layer.
IMAGES = [
    ("web-frontend", ["v1.4.2", "latest"]),
    ("api", ["2024.06.1", "stable"]),
    ("tools/migrate", ["v0.9.0"]),
    ("docs", ["main"]),
]


def seed(server: Portside) -> dict[str, str]:
    """The projects, users and images the pages show; returns what the page URLs need."""
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as client:
        for name, public in ((PROJECT, True), ("platform", False), ("ml-models", False)):
            r = client.post(f"{API}/projects", json={"project_name": name, "metadata": {"public": str(public).lower()}})
            r.raise_for_status()
        for user in ("ada", "grace", "linus"):
            client.post(
                f"{API}/users",
                json={"username": user, "password": "Screenshot-Pass-1", "email": f"{user}@example.com"},
            ).raise_for_status()
        client.post(
            f"{API}/projects/{PROJECT}/members", json={"role_id": 2, "member_user": {"username": "ada"}}
        ).raise_for_status()
        shared = oci.layer(4096)
        pushed: dict[str, oci.Manifest] = {}
        for index, (repository, tags) in enumerate(IMAGES):
            layers = [shared, oci.layer(2048 * (index + 1))] if index < 2 else [oci.layer(8192)]
            image = oci.image_manifest(layers=layers)
            for tag in tags:
                oci.push_manifest(client, f"{PROJECT}/{repository}", image, tag)
            pushed[repository] = image
        oci.push_image(client, "platform/base-image", "bookworm")
    first = IMAGES[0]
    return {"repository": first[0], "tag": first[1][0], "digest": pushed[first[0]].digest, "layer": shared.digest}


def pages(seeded: dict[str, str]) -> list[tuple[str, str]]:
    project = f"/projects/{PROJECT}"
    repository = f"{project}/repositories/{seeded['repository']}"
    return [
        ("projects", "/projects"),
        ("project-summary", project),
        ("project-repositories", f"{project}/repositories"),
        ("project-members", f"{project}/members"),
        ("repository", repository),
        ("artifact", f"{repository}/-/artifacts/{seeded['tag']}"),
        ("search", f"/search?q={PROJECT}"),
        ("search-digest", f"/search?q={seeded['layer'][:19]}"),
        ("admin-users", "/admin/users"),
        ("account", "/account"),
    ]


def shoot(page: Page, out: Path, name: str, path: str) -> bool:
    response = page.goto(path)
    status = response.status if response is not None else 0
    if status == 404:
        print(f"skipped {name}: {path} answers 404 (no such page yet)")
        return False
    if status >= 400:
        raise RuntimeError(f"{path} answered {status}")
    page.wait_for_load_state("load")
    page.screenshot(path=str(out / f"{name}.png"))
    print(f"saved {out / f'{name}.png'}  ({path})")
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=REPOSITORY_ROOT / "docs" / "screenshots")
    parser.add_argument("--scheme", choices=("light", "dark"), default="light", help="the colour scheme to show")
    options = parser.parse_args(argv)
    out: Path = options.out
    out.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="portside-screenshots-"))
    server = Portside(data_dir=scratch / "data", open_registry=False)
    server.start()
    saved = 0
    try:
        seeded = seed(server)
        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
            context = browser.new_context(base_url=server.url, viewport=VIEWPORT, color_scheme=options.scheme)
            context.set_default_timeout(STEP_TIMEOUT_MS)
            page = context.new_page()
            saved += shoot(page, out, "sign-in", "/sign-in")
            sign_in(page, *ADMIN)
            for name, path in pages(seeded):
                saved += shoot(page, out, name, path)
            browser.close()
    finally:
        server.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"{saved} screenshots in {out}")
    return 0 if saved else 1


if __name__ == "__main__":
    sys.exit(main())
