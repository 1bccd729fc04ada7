"""The README's management flow against a live server over HTTP: create a project, a
member and a robot through /api/v2.0, then push as the robot with skopeo and pull as the
member with docker, and find both in the artifacts API and the audit log."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.access.accounts import ADMIN
from tests.access.conftest import AclServer
from tests.e2e.clients import DockerDaemon, require, skopeo
from tests.e2e.images import busybox_layout

pytestmark = pytest.mark.e2e

API = "/api/v2.0"


def test_project_member_robot_through_the_api(acl: AclServer, docker_daemon: DockerDaemon, tmp_path: Path) -> None:
    admin = httpx.Client(base_url=acl.url, auth=(ADMIN.username or "", ADMIN.password or ""), timeout=60)
    r = admin.post(f"{API}/projects", json={"project_name": "readme", "metadata": {"public": "false"}})
    assert r.status_code == 201, r.text
    assert r.headers["location"].startswith(f"{API}/projects/")
    r = admin.post(
        f"{API}/users",
        json={"username": "reader", "password": "Reader-pass-1", "email": "reader@example.com", "realname": "R"},
    )
    assert r.status_code == 201, r.text
    r = admin.post(f"{API}/projects/readme/members", json={"role_id": 3, "member_user": {"username": "reader"}})
    assert r.status_code == 201, r.text
    r = admin.post(
        f"{API}/robots",
        json={
            "name": "ci",
            "level": "project",
            "duration": -1,
            "permissions": [
                {
                    "kind": "project",
                    "namespace": "readme",
                    "access": [
                        {"resource": "repository", "action": "pull"},
                        {"resource": "repository", "action": "push"},
                    ],
                }
            ],
        },
    )
    assert r.status_code == 201, r.text
    robot = r.json()
    assert robot["name"] == "robot$readme+ci" and robot["secret"]

    layout, image = busybox_layout(tmp_path / "layout", tag="v1", marker="readme")
    skopeo(
        "copy",
        "--dest-tls-verify=false",
        "--dest-creds",
        f"{robot['name']}:{robot['secret']}",
        f"oci:{layout.root}:v1",
        f"docker://{acl.host}/readme/app:v1",
    )

    # The guest member pulls with docker; as a guest it may not push.
    config = tmp_path / "docker-config"
    env = {**docker_daemon.env}

    def docker(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [require("docker"), "--config", str(config), *args],
            env={**os.environ, **env},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
        )

    login = docker("login", acl.host, "-u", "reader", "--password-stdin", stdin="Reader-pass-1\n")
    assert login.returncode == 0, login.stderr
    pulled = docker("pull", f"{acl.host}/readme/app:v1")
    assert pulled.returncode == 0, pulled.stderr
    docker("tag", f"{acl.host}/readme/app:v1", f"{acl.host}/readme/other:v1")
    pushed = docker("push", f"{acl.host}/readme/other:v1")
    assert pushed.returncode != 0 and "denied" in (pushed.stdout + pushed.stderr).lower()
    docker("rmi", f"{acl.host}/readme/app:v1", f"{acl.host}/readme/other:v1")

    r = admin.get(f"{API}/projects/readme/repositories/app/artifacts", params={"with_tag": "true"})
    assert r.status_code == 200, r.text
    [artifact] = r.json()
    assert [t["name"] for t in artifact["tags"]] == ["v1"]
    assert artifact["digest"] == image.manifest.digest

    seen: set[tuple[str, str]] = set()
    for _ in range(50):  # the registry's audit trail is written about once a second
        logs = admin.get(f"{API}/projects/readme/logs", params={"page_size": 100}).json()
        seen = {(entry["username"], entry["operation"]) for entry in logs}
        if ("robot$readme+ci", "create") in seen and ("reader", "pull") in seen:
            break
        time.sleep(0.2)
    assert ("robot$readme+ci", "create") in seen and ("reader", "pull") in seen, seen
    # The reader sees the project's log; an outsider does not.
    reader = httpx.Client(base_url=acl.url, auth=("reader", "Reader-pass-1"), timeout=60)
    assert reader.get(f"{API}/projects/readme/logs").status_code == 200
    admin.post(f"{API}/users", json={"username": "nosy", "password": "Nosy-pass-1", "email": "n@example.com"})
    nosy = httpx.Client(base_url=acl.url, auth=("nosy", "Nosy-pass-1"), timeout=60)
    # A private project the outsider may not see is, to it, a project that does not exist.
    assert nosy.get(f"{API}/projects/readme/logs").status_code == 404
    assert "readme" not in {p["name"] for p in nosy.get(f"{API}/projects").json()}
