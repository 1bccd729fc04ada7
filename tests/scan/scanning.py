"""What the scanning tests over HTTP share (API, web pages, browser): a server of their own
with the fixtures' advisories imported by `portside vulndb import`, the Debian 12 image with a
vulnerable Python package they scan, and waiting for a scan to end."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.api import oci
from tests.e2e.images import files_tar_bytes, gzip_bytes
from tests.scan.shared import VULNDB_FIXTURES
from tests.servers import ADMIN_PASSWORD, Portside

__all__ = [
    "EXPECTED",
    "new_user",
    "PYTHON_PACKAGE",
    "REPORT_MIME",
    "scanned_project",
    "scanning_server",
    "vulnerable_image",
    "vulndb_import",
    "wait_for_scan",
]

EXPECTED = json.loads((VULNDB_FIXTURES / "EXPECTED.json").read_text())
REPORT_MIME = "application/vnd.security.vulnerability.report; version=1.1"
OS_RELEASE = b"""PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
"""
PYTHON_PACKAGE = EXPECTED["osv"]["PyPI|requests|2.19.1"]


def vulndb_import(server: Portside, path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "portside", "vulndb", "import", str(path), "--data-dir", str(server.data_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def new_user(server: Portside, name: str) -> tuple[str, str]:
    """A user of the server named `name`, with a password that meets the rules; (name, password)."""
    password = "Scan-Pass-1" + uuid.uuid4().hex[:6]
    body = {"username": name, "email": f"{name}@example.com", "realname": name, "password": password}
    with httpx.Client(base_url=server.url, auth=("admin", ADMIN_PASSWORD), timeout=60) as client:
        r = client.post("/api/v2.0/users", json=body)
        assert r.status_code == 201, r.text
    return name, password


@contextmanager
def scanning_server(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Portside]:
    """A server with access control, scan jobs polled every second, and the fixtures' PyPI
    advisories and Debian tracker sample imported."""
    started = Portside(
        data_dir=data_dir, open_registry=False, env={"PORTSIDE_JOB_POLL_SECONDS": "1", **(env or {})}
    ).start()
    try:
        vulndb_import(started, VULNDB_FIXTURES / "osv" / "PyPI")
        vulndb_import(started, VULNDB_FIXTURES / "debian-tracker" / "tracker-json-sample.json")
        yield started
    finally:
        started.stop()


def vulnerable_image(requests_version: str = PYTHON_PACKAGE["version"]) -> oci.Manifest:
    """Debian 12's minbase packages (the fixture's dpkg status) and requests 2.19.1 (or the
    version given: 2.31.0 has the fixes of both its advisories)."""
    status = (VULNDB_FIXTURES / "debian12-minbase-status.txt").read_bytes()
    metadata = f"Metadata-Version: 2.1\nName: {PYTHON_PACKAGE['package']}\nVersion: {requests_version}\n"
    dist_info = f"usr/lib/python3/dist-packages/requests-{requests_version}.dist-info/METADATA"
    os_layer = gzip_bytes(files_tar_bytes({"etc/os-release": OS_RELEASE, "var/lib/dpkg/status": status}))
    py_layer = gzip_bytes(files_tar_bytes({dist_info: metadata.encode()}))
    layers = [oci.Blob(os_layer, oci.OCI_LAYER), oci.Blob(py_layer, oci.OCI_LAYER)]
    return oci.image_manifest(oci.config_blob(), layers)


def wait_for_scan(client: httpx.Client, path: str, key: str, timeout: float = 60.0) -> dict[str, Any]:
    """The artifact at `path` once its `key` overview says the scan ended."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(path, params={"with_scan_overview": "true", "with_sbom_overview": "true"})
        assert r.status_code == 200, r.text
        artifact: dict[str, Any] = r.json()
        overview = artifact.get(key) or {}
        if key == "scan_overview":
            overview = overview.get(REPORT_MIME, {})
        if overview.get("scan_status") in ("Success", "Error", "Stopped"):
            return artifact
        assert time.monotonic() < deadline, f"scan did not end: {artifact}"
        time.sleep(0.3)


def scanned_project(server: Portside) -> dict[str, Any]:
    """A private project with a developer and a guest: `app` holds v1 (requests 2.19.1, two
    fixable CVEs) and v2 (requests 2.31.0, neither), both scanned; `other` holds v1 again,
    tagged `copy`. Its name, id, members ((name, password)) and the two images' digests."""
    name = f"hub{uuid.uuid4().hex[:8]}"
    developer = new_user(server, f"d{name}")
    guest = new_user(server, f"g{name}")
    vulnerable, fixed = vulnerable_image(), vulnerable_image("2.31.0")
    auth = ("admin", ADMIN_PASSWORD)
    with httpx.Client(base_url=server.url + "/api/v2.0", auth=auth, timeout=60) as client:
        r = client.post("/projects", json={"project_name": name, "metadata": {"public": "false"}})
        assert r.status_code == 201, r.text
        for who, role in ((developer, 2), (guest, 3)):
            member = {"role_id": role, "member_user": {"username": who[0]}}
            assert client.post(f"/projects/{name}/members", json=member).status_code == 201
        with httpx.Client(base_url=server.url, auth=auth, timeout=60) as registry:
            oci.push_manifest(registry, f"{name}/app", vulnerable, "v1")
            oci.push_manifest(registry, f"{name}/app", fixed, "v2")
            oci.push_manifest(registry, f"{name}/other", vulnerable, "copy")
        for repository, image in (("app", vulnerable), ("app", fixed), ("other", vulnerable)):
            path = f"/projects/{name}/repositories/{repository}/artifacts/{image.digest}"
            assert client.post(f"{path}/scan", json={"scan_type": "vulnerability"}).status_code == 202
            assert (
                wait_for_scan(client, path, "scan_overview")["scan_overview"][REPORT_MIME]["scan_status"] == "Success"
            )
        project_id = client.get(f"/projects/{name}").json()["project_id"]
    return {
        "name": name,
        "id": project_id,
        "developer": developer,
        "guest": guest,
        "vulnerable": str(vulnerable.digest),
        "fixed": str(fixed.digest),
    }
