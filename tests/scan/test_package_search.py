"""`/packages/artifacts?purl=` on a live server: every stored inventory's packages are
indexed, so a package no advisory names is found too, with its version, path and layer;
a vulnerable one comes with its findings; and another user's private project is not listed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.api import oci
from tests.scan.scanning import PYTHON_PACKAGE, REPORT_MIME, scanning_server, vulnerable_image, wait_for_scan
from tests.scan.shared import VULNDB_FIXTURES
from tests.servers import ADMIN_PASSWORD, Portside

ADMIN = ("admin", ADMIN_PASSWORD)
API = "/api/v2.0"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    with scanning_server(tmp_path_factory.mktemp("packages") / "data") as started:
        yield started


def _dpkg_packages() -> dict[str, str]:
    """Name → version of the fixture's dpkg status (the image's Debian packages)."""
    found: dict[str, str] = {}
    for stanza in (VULNDB_FIXTURES / "debian12-minbase-status.txt").read_text().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if "Package" in fields and "Version" in fields:
            found[fields["Package"]] = fields["Version"]
    return found


def test_every_package_is_found_and_private_projects_stay_private(server: Portside) -> None:
    project = f"pkg{uuid.uuid4().hex[:8]}"
    password = "Scan-Pass-1" + uuid.uuid4().hex[:6]
    outsider = f"o{project}"
    image = vulnerable_image()
    with httpx.Client(base_url=server.url + API, auth=ADMIN, timeout=60) as client:
        assert (
            client.post("/projects", json={"project_name": project, "metadata": {"public": "false"}}).status_code == 201
        )
        r = client.post(
            "/users",
            json={"username": outsider, "email": f"{outsider}@example.com", "realname": outsider, "password": password},
        )
        assert r.status_code == 201, r.text
        with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
            oci.push_manifest(registry, f"{project}/app", image, "v1")
        path = f"/projects/{project}/repositories/app/artifacts/{image.digest}"
        assert client.post(f"{path}/scan").status_code == 202
        assert wait_for_scan(client, path, "scan_overview")["scan_overview"][REPORT_MIME]["scan_status"] == "Success"
        report = client.get(f"{path}/additions/vulnerabilities").json()[REPORT_MIME]
        vulnerable = {v["package"] for v in report["vulnerabilities"]}
        clean = sorted(set(_dpkg_packages()) - vulnerable)
        assert clean, "every fixture package has an advisory"
        name = clean[0]

        # A package no advisory names: found, with and without its version.
        held = client.get("/packages/artifacts", params={"purl": f"pkg:deb/debian/{name}"}).json()
        mine = [h for h in held if h["digest"] == image.digest]
        assert len(mine) == 1, held
        assert mine[0]["repository_name"] == f"{project}/app"
        assert mine[0]["version"] == _dpkg_packages()[name]
        assert mine[0]["path"] == "/var/lib/dpkg/status"
        assert mine[0]["layer"] == json.loads(image.body)["layers"][0]["digest"]  # the dpkg layer
        assert mine[0]["vulnerabilities"] == []
        versioned = f"pkg:deb/debian/{name}@{mine[0]['version']}?arch=amd64"
        assert [h["digest"] for h in client.get("/packages/artifacts", params={"purl": versioned}).json()] == [
            image.digest
        ]
        other_version = client.get("/packages/artifacts", params={"purl": f"pkg:deb/debian/{name}@0.0-none"}).json()
        assert all(h["digest"] != image.digest for h in other_version)

        # The vulnerable package: its findings and fixed versions come with it.
        purl = f"pkg:pypi/{PYTHON_PACKAGE['package'].lower()}"
        vulnerable_held = [
            h for h in client.get("/packages/artifacts", params={"purl": purl}).json() if h["digest"] == image.digest
        ]
        assert len(vulnerable_held) == 1
        ids = {v["vulnerability_id"] for v in vulnerable_held[0]["vulnerabilities"]} | {
            v["advisory_id"] for v in vulnerable_held[0]["vulnerabilities"]
        }
        assert set(PYTHON_PACKAGE["affected"]) & ids

    with httpx.Client(base_url=server.url + API, auth=(outsider, password), timeout=60) as other:
        r = other.get("/packages/artifacts", params={"purl": f"pkg:deb/debian/{name}"})
        assert r.status_code == 200
        assert all(h["repository_name"] != f"{project}/app" for h in r.json())
