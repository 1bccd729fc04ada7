"""The administration's replication pages on a live server, against a real CNCF Distribution
behind htpasswd: a policy added through the form (a bad one comes back with the field
marked), its dry run ("N artifacts would be copied"), run from its page, the execution with
its tasks and a task's log, the policy changed; the pages carry no inline script, and anyone
but a system administrator is refused them and every form."""

from __future__ import annotations

import asyncio
import base64
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from portside.remote.client import RemoteRegistry
from portside.remote.transfer import list_tags
from tests.e2e.images import busybox_layout
from tests.e2e.test_copy import Peer, push_layout
from tests.servers import ADMIN_PASSWORD, Distribution, Portside
from tests.ui.pages import api
from tests.ui.test_admin import Browser, new_user

USER, SECRET = "replicator", "Ui-Replication-Secret-42"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    started = Portside(data_dir=tmp_path_factory.mktemp("ui-replication") / "data", open_registry=False)
    started.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def distribution(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Distribution]:
    root = tmp_path_factory.mktemp("ui-replication-distribution")
    made = subprocess.run(["htpasswd", "-Bbn", USER, SECRET], check=True, capture_output=True, text=True)
    (root / "htpasswd").write_text(made.stdout)
    started = Distribution(data_dir=root / "data", htpasswd=root / "htpasswd")
    started.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def admin(server: Portside) -> Iterator[Browser]:
    browser = Browser(server, ("admin", ADMIN_PASSWORD))
    yield browser
    browser.close()


def _no_inline_script(page: str) -> None:
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page), "an inline script"
    assert not re.search(r"\son[a-z]+=", page), "an inline event handler"


def test_policy_pages(server: Portside, admin: Browser, distribution: Distribution, tmp_path: Path) -> None:
    made = api(
        server,
        "POST",
        "/registries",
        json={
            "name": "dist",
            "type": "docker-registry",
            "url": distribution.url,
            "credential": {"type": "basic", "access_key": USER, "access_secret": SECRET},
        },
    )
    assert made.status_code == 201, made.text
    registry_id = made.headers["Location"].rsplit("/", 1)[1]
    central = Peer("portside", server.host, server.port, "admin", ADMIN_PASSWORD, "library")
    for n in range(3):
        layout, image = busybox_layout(tmp_path / str(n), tag="v1", marker=f"ui {n}")
        asyncio.run(push_layout(central, f"library/ui-{n}", layout.root, {image.manifest.digest: ["latest"]}))

    listed = admin.get("/admin/replication")
    assert listed.status_code == 200 and "No replication policies yet." in listed.text
    assert 'href="/admin/replication"' in admin.get("/admin/users").text  # in the navigation
    _no_inline_script(listed.text)

    form = {
        "name": "ui-push",
        "direction": "push",
        "registry": registry_id,
        "name_filter": "library/ui-*",
        "dest_namespace": "copies",
        "replace_count": "1",
        "trigger": "manual",
        "speed": "-1",
        "override": "on",
        "enabled": "on",
    }
    bad = admin.post("/admin/replication", {**form, "trigger": "scheduled", "cron": "every day"})
    assert bad.status_code == 400 and 'cron-error"' in bad.text and 'aria-invalid="true"' in bad.text
    assert 'id="cron-error"' in bad.text and 'value="ui-push"' in bad.text
    added = admin.post("/admin/replication", form)
    assert added.status_code == 303, added.text
    policy_url = added.headers["Location"].split("?", 1)[0]
    shown = admin.get(policy_url)
    assert shown.status_code == 200 and "push to dist" in shown.text
    _no_inline_script(shown.text)

    dry = admin.get(f"{policy_url}/dry-run")
    assert dry.status_code == 200 and "3 artifacts would be copied" in dry.text
    assert "<code>copies/ui-0</code>" in dry.text and "latest, v1" in dry.text

    ran = admin.post(f"{policy_url}/run", {})
    assert ran.status_code == 303
    execution_url = ran.headers["Location"].split("?", 1)[0]
    deadline = time.monotonic() + 60
    while "Succeed</span>" not in (page := admin.get(execution_url).text):
        assert time.monotonic() < deadline and "Failed</span>" not in page, page
        time.sleep(0.3)
    assert "3 total · 3 succeeded · 0 failed" in page
    _no_inline_script(page)
    log_url = re.findall(r'href="(/admin/replication/executions/\d+/tasks/\d+/log)"', page)[0]
    log = admin.get(log_url)
    assert log.status_code == 200 and "copied library/ui-" in log.text

    async def tags() -> list[str]:
        basic = "Basic " + base64.b64encode(f"{USER}:{SECRET}".encode()).decode()
        async with RemoteRegistry(distribution.url, basic) as registry:
            return sorted(await list_tags(registry, "copies/ui-1"))

    assert asyncio.run(tags()) == ["latest", "v1"]

    changed = admin.post(policy_url, {**form, "name": "ui-push-2", "enabled": ""})
    assert changed.status_code == 303
    assert "Disabled" in admin.get(policy_url).text
    refused = admin.post(f"{policy_url}/run", {})
    assert "is disabled" in admin.get(refused.headers["Location"]).text or refused.status_code == 303


def test_only_administrators(server: Portside) -> None:
    user = Browser(server, new_user(server))
    try:
        assert user.get("/admin/replication").status_code == 403
        assert user.get("/admin/replication/1").status_code == 403
        assert user.get("/admin/replication/1/dry-run").status_code == 403
        assert user.post("/admin/replication", {"name": "x"}).status_code == 403
        assert user.post("/admin/replication/1/run", {}).status_code == 403
        assert user.post("/admin/replication/executions/1/stop", {}).status_code == 403
    finally:
        user.close()
