"""`portside preheat ls|run` against a live server and the Dragonfly manager stand-in: a run
followed to its end prints each image's outcome, a failing one exits 1, and ls shows the
policies with their last execution and the instances with their health."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.remote.dragonfly_server import DragonflyManager
from tests.servers import ADMIN_PASSWORD, Portside
from tests.ui.pages import api
from tests.ui.test_admin import new_project
from tests.ui.test_preheat import _push

TOKEN = "cli-dragonfly-token-0d3a"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    started = Portside(data_dir=tmp_path_factory.mktemp("cli-preheat") / "data", open_registry=False)
    started.start()
    yield started
    started.stop()


def _cli(server: Portside, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PORTSIDE_URL": server.url,
        "PORTSIDE_USERNAME": "admin",
        "PORTSIDE_PASSWORD": ADMIN_PASSWORD,
    }
    return subprocess.run(
        [sys.executable, "-m", "portside", "preheat", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_and_ls(server: Portside) -> None:
    with DragonflyManager(token=TOKEN, pending_polls=1) as dragonfly:
        body = {
            "name": "cli-df",
            "vendor": "dragonfly",
            "endpoint": dragonfly.url,
            "auth_mode": "OAUTH",
            "auth_info": {"token": TOKEN},
        }
        assert api(server, "POST", "/p2p/preheat/instances", json=body).status_code == 201
        provider = api(server, "GET", "/p2p/preheat/instances/cli-df").json()["id"]
        project, _ = new_project(server)
        _push(server, f"{project}/app", "v1")
        policy = {
            "name": "deploy",
            "provider_id": provider,
            "filters": json.dumps([{"type": "tag", "value": "v1"}]),
            "trigger": json.dumps({"type": "manual"}),
        }
        assert api(server, "POST", f"/projects/{project}/preheat/policies", json=policy).status_code == 201

        ran = _cli(server, "run", project, "deploy", "--wait")
        assert ran.returncode == 0, ran.stderr
        assert f"{project}/app:v1\tSuccess\tpreheated" in ran.stdout and "Success: 1 preheated" in ran.stdout
        assert dragonfly.jobs and dragonfly.rejected == []

        listed = _cli(server, "ls", project)
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.startswith("deploy\tcli-df\t") and "Success (MANUAL" in listed.stdout
        instances = _cli(server, "ls", "--instances")
        assert instances.returncode == 0 and instances.stdout.startswith("cli-df\tdragonfly\t")

        dragonfly.fail_when = f"{project}/app"
        failed = _cli(server, "run", project, "deploy", "--wait")
        assert failed.returncode == 1 and "Error" in failed.stdout
    missing = _cli(server, "run", project, "nothing")
    assert missing.returncode == 1 and "404" in missing.stderr
