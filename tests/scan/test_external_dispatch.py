"""Scans through an external adapter on a live server: a project whose scanner is a
registered adapter has its vulnerability scans handed to that adapter, which pulls the
artifact from Portside with the credential of the scan request (a pull-only robot made for
that scan and deleted after it); the adapter's findings become the artifact's report, under
the adapter's name; a disabled adapter is a 412, an adapter that fails is a scan in Error
with the reason in its log; SBOM scans stay with the built-in scanner."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import httpx
import pytest

from tests.api import oci
from tests.scan.scanning import REPORT_MIME, scanning_server, vulnerable_image, wait_for_scan
from tests.scan.stub_adapters import METADATA_MIME, answer_json, metadata_document, running
from tests.servers import ADMIN_PASSWORD, Portside, free_port

ADMIN = ("admin", ADMIN_PASSWORD)
API = "/api/v2.0"
KEY = "dispatch-key-" + uuid.uuid4().hex
MANIFEST_ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
ERROR_MIME = "application/vnd.scanner.adapter.error+json; version=1.0"
SCANNER = {"name": "Pulling stub", "vendor": "Tests", "version": "3.1"}
FINDING = {
    "id": "CVE-2099-4242",
    "package": "stub-package",
    "version": "1.0",
    "fix_version": "1.1",
    "severity": "Critical",
    "description": "found by the adapter",
    "links": ["https://example.com/CVE-2099-4242"],
}


class _Adapter(BaseHTTPRequestHandler):
    """Pulls the manifest named by each scan request from the registry it names, with the
    Authorization it was given (as a real adapter does), and reports FINDING for it."""

    registry_answers: ClassVar[list[int]] = []
    requests: ClassVar[list[dict[str, Any]]] = []
    reports: ClassVar[dict[str, str]] = {}

    def _send(self, status: int, body: Any, content_type: str) -> None:
        answer_json(self, status, body, content_type)

    def _authorized(self) -> bool:
        if self.headers.get("X-ScannerAdapter-API-Key") == KEY:
            return True
        self._send(401, {"error": {"message": "wrong API key"}}, ERROR_MIME)
        return False

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if not self._authorized():
            return
        if self.path == "/api/v1/metadata":
            document = metadata_document(SCANNER["name"], SCANNER["vendor"], SCANNER["version"])
            self._send(200, document, METADATA_MIME)
            return
        scan_id = self.path.removeprefix("/api/v1/scan/").removesuffix("/report")
        digest = self.reports.get(scan_id)
        if digest is None:
            self._send(404, {"error": {"message": "no such scan"}}, ERROR_MIME)
            return
        report = {
            "generated_at": "2026-12-03T00:00:00Z",
            "scanner": SCANNER,
            "severity": "Critical",
            "vulnerabilities": [FINDING],
        }
        self._send(200, report, REPORT_MIME)

    def do_POST(self) -> None:  # noqa: N802
        if not self._authorized():
            return
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append(body)
        registry, artifact = body["registry"], body["artifact"]
        pulled = httpx.get(
            f"{registry['url']}/v2/{artifact['repository']}/manifests/{artifact['digest']}",
            headers={"Authorization": registry["authorization"], "Accept": MANIFEST_ACCEPT},
            timeout=30,
        )
        type(self).registry_answers.append(pulled.status_code)
        if pulled.status_code != 200:
            self._send(
                422,
                {"error": {"message": f"the registry answered {pulled.status_code}"}},
                ERROR_MIME,
            )
            return
        scan_id = uuid.uuid4().hex
        type(self).reports[scan_id] = artifact["digest"]
        self._send(202, {"id": scan_id}, "application/vnd.scanner.adapter.scan.response+json; version=1.0")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def adapter(server: Portside) -> Iterator[str]:
    """The stub adapter's registration id (registered once: a URL is registered once)."""
    with running(_Adapter) as url:
        yield _register(server, url)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    with scanning_server(tmp_path_factory.mktemp("dispatch") / "data") as started:
        yield started


def api(server: Portside) -> httpx.Client:
    return httpx.Client(base_url=server.url + API, auth=ADMIN, timeout=30)


def _register(server: Portside, url: str) -> str:
    with api(server) as client:
        made = client.post(
            "/scanners",
            json={
                "name": f"stub-{uuid.uuid4().hex[:8]}",
                "url": url,
                "auth": "X-ScannerAdapter-API-Key",
                "access_credential": KEY,
            },
        )
        assert made.status_code == 201, made.text
        return made.headers["Location"].rsplit("/", 1)[-1]


def _project_with_adapter(server: Portside, registration: str) -> str:
    """A private project whose scanner is the adapter `registration`."""
    project = f"ext{uuid.uuid4().hex[:8]}"
    with api(server) as client:
        made = client.post("/projects", json={"project_name": project, "metadata": {"public": "false"}})
        assert made.status_code == 201, made.text
        assert client.put(f"/projects/{project}/scanner", json={"uuid": registration}).status_code == 200
    return project


def _push(server: Portside, project: str) -> tuple[str, str]:
    image = vulnerable_image()
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_manifest(registry, f"{project}/app", image, "v1")
    return image.digest, f"/projects/{project}/repositories/app/artifacts/{image.digest}"


def _robots(client: httpx.Client, project: str) -> list[str]:
    return [r["name"] for r in client.get("/robots", params={"page_size": 100}).json() if project in r["name"]]


def test_the_project_adapter_scans_with_a_pull_only_robot(server: Portside, adapter: str) -> None:
    project = _project_with_adapter(server, adapter)
    digest, path = _push(server, project)
    with api(server) as client:
        started = client.post(f"{path}/scan", json={"scan_type": "vulnerability"})
        assert started.status_code == 202, started.text
        artifact = wait_for_scan(client, path, "scan_overview")
        overview = artifact["scan_overview"][REPORT_MIME]
        assert overview["scan_status"] == "Success", overview
        assert overview["scanner"] == SCANNER
        assert overview["severity"] == "Critical"
        assert overview["summary"] == {"total": 1, "fixable": 1, "summary": {"Critical": 1}}

        report = client.get(f"{path}/additions/vulnerabilities").json()[REPORT_MIME]
        assert report["scanner"] == SCANNER
        [found] = report["vulnerabilities"]
        assert (found["id"], found["package"], found["version"], found["fix_version"]) == (
            "CVE-2099-4242",
            "stub-package",
            "1.0",
            "1.1",
        )
        # Portside's cross-artifact question reads the adapter's findings as its own.
        held = client.get("/vulnerabilities/CVE-2099-4242/artifacts").json()
        assert [(h["repository_name"], h["digest"]) for h in held] == [(f"{project}/app", digest)]

        # The adapter pulled the private artifact with the request's credential; the robot
        # behind it is gone once the scan ended, and the audit trail says who made it.
        [sent] = [r for r in _Adapter.requests if r["artifact"]["digest"] == digest]
        assert sent["registry"]["url"] == server.url
        assert sent["registry"]["authorization"].startswith("Basic ")
        assert sent["artifact"]["repository"] == f"{project}/app"
        assert 200 in _Adapter.registry_answers
        assert _robots(client, project) == []
        logs = client.get(f"/projects/{project}/logs", params={"page_size": 100}).json()
        robot_ops = sorted(entry["operation"] for entry in logs if entry["resource_type"] == "robot")
        assert robot_ops == ["create", "delete"]

    # The credential ended with the scan: it pulls nothing any more.
    with httpx.Client(timeout=30) as anyone:
        again = anyone.get(
            f"{server.url}/v2/{project}/app/manifests/{digest}",
            headers={"Authorization": sent["registry"]["authorization"], "Accept": MANIFEST_ACCEPT},
        )
        assert again.status_code == 401


def test_sbom_scans_stay_with_the_built_in_scanner(server: Portside, adapter: str) -> None:
    project = _project_with_adapter(server, adapter)
    digest, path = _push(server, project)
    before = len(_Adapter.requests)
    with api(server) as client:
        assert client.post(f"{path}/scan", json={"scan_type": "sbom"}).status_code == 202
        artifact = wait_for_scan(client, path, "sbom_overview")
        assert artifact["sbom_overview"]["scan_status"] == "Success"
        assert artifact["sbom_overview"]["sbom_digest"]
    assert len(_Adapter.requests) == before


def test_a_disabled_adapter_is_a_412_and_a_failing_one_an_error(server: Portside) -> None:
    with running(_Adapter) as url:
        registration = _register(server, url)
        project = _project_with_adapter(server, registration)
        _, path = _push(server, project)
        with api(server) as client:
            shown = client.get(f"/scanners/{registration}").json()
            disabled = {
                "name": shown["name"],
                "url": shown["url"],
                "auth": shown["auth"],
                "access_credential": shown["access_credential"],
                "disabled": True,
            }
            assert client.put(f"/scanners/{registration}", json=disabled).status_code == 200
            refused = client.post(f"{path}/scan", json={"scan_type": "vulnerability"})
            assert refused.status_code == 412, refused.text
            assert "deactivated" in refused.json()["errors"][0]["message"]

    # An adapter that is not there: the scan ends in Error, its log names the reason.
    gone = _project_with_adapter(server, _register(server, f"http://127.0.0.1:{free_port()}"))
    _, gone_path = _push(server, gone)
    with api(server) as client:
        assert client.post(f"{gone_path}/scan", json={"scan_type": "vulnerability"}).status_code == 202
        artifact = wait_for_scan(client, gone_path, "scan_overview")
        overview = artifact["scan_overview"][REPORT_MIME]
        assert overview["scan_status"] == "Error"
        log = client.get(f"{gone_path}/scan/{overview['report_id']}/log")
        assert "scanner adapter failed" in log.text and "unreachable" in log.text.lower(), log.text
        assert _robots(client, gone) == []
