"""Harbor's scanner adapter API both ways between two live Portside instances: each serves
the adapter API and registers the other as a project's scanner, so a scan asked of one is
run by the other, which pulls the image back from the first with the credential of the scan
request. Every exchange between them passes through a proxy that checks the request and
the answer against the API's OpenAPI document, and the findings that come back are the ones
the built-in scanner finds for the same image (requests 2.19.1: its two advisories, with
their fixed versions, named by their CVEs)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any, ClassVar

import httpx
import pytest

from tests.api import oci
from tests.scan.adapter_spec import AdapterSpec, SyncSpecTransport
from tests.scan.scanning import PYTHON_PACKAGE, REPORT_MIME, scanning_server, vulnerable_image, wait_for_scan
from tests.scan.stub_adapters import running
from tests.servers import ADMIN_PASSWORD, Portside

ADMIN = ("admin", ADMIN_PASSWORD)
API = "/api/v2.0"
# PYSEC-2018-28 and PYSEC-2023-74 by the CVE each names, as reports name findings.
FIXED = {"CVE-2018-18074": "2.20.0", "CVE-2023-32681": "2.31.0"}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}


class _CheckingProxy(BaseHTTPRequestHandler):
    """Forwards to `target` and checks each exchange against the adapter API's document;
    a request or an answer outside it is answered 599, so the scan that sent it fails."""

    target: ClassVar[str] = ""
    spec: ClassVar[AdapterSpec]
    checked: ClassVar[list[tuple[str, str, int]]]
    problems: ClassVar[list[str]]

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        transport = SyncSpecTransport(self.spec)
        try:
            with httpx.Client(transport=transport, timeout=120) as client:
                answer = client.request(self.command, self.target + self.path, headers=headers, content=body)
        except AssertionError as problem:  # the document's checks
            type(self).problems.append(f"{self.command} {self.path}: {problem}")
            self.send_response(599)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in _HOP_BY_HOP and key.lower() != "content-encoding":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = _forward  # noqa: N815 (http.server's names)
    do_POST = _forward  # noqa: N815

    def log_message(self, *args: object) -> None:
        pass


def _proxy_to(target: str, spec: AdapterSpec) -> type[_CheckingProxy]:
    return type("Proxy", (_CheckingProxy,), {"target": target, "spec": spec, "checked": spec.checked, "problems": []})


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Portside, Portside]]:
    """Two instances, each with the fixtures' advisories and the adapter API on."""
    servers = []
    try:
        for name in ("east", "west"):
            env = {"PORTSIDE_SCANNER_ADAPTER_ENABLED": "true", "PORTSIDE_SCANNER_ADAPTER_TOKEN": f"{name}-" + "t" * 24}
            context = scanning_server(tmp_path_factory.mktemp(name) / "data", env)
            servers.append((context, context.__enter__()))
        yield servers[0][1], servers[1][1]
    finally:
        for context, _ in reversed(servers):
            context.__exit__(None, None, None)


def _token(server: Portside) -> str:
    return str(server.env["PORTSIDE_SCANNER_ADAPTER_TOKEN"])


def _project_scanned_by(server: Portside, adapter_url: str, token: str) -> str:
    """A private project of `server` whose scanner is the adapter at `adapter_url`."""
    project = f"bw{uuid.uuid4().hex[:8]}"
    with httpx.Client(base_url=server.url + API, auth=ADMIN, timeout=60) as client:
        made = client.post("/projects", json={"project_name": project, "metadata": {"public": "false"}})
        assert made.status_code == 201, made.text
        registration = {"name": f"other-{project}", "url": adapter_url, "auth": "Bearer", "access_credential": token}
        pinged = client.post("/scanners/ping", json=registration)
        assert pinged.status_code == 200, pinged.text
        made = client.post("/scanners", json=registration)
        assert made.status_code == 201, made.text
        scanner_id = made.headers["Location"].rsplit("/", 1)[-1]
        assert client.put(f"/projects/{project}/scanner", json={"uuid": scanner_id}).status_code == 200
    return project


def _scan(server: Portside, repository: str, image: oci.Manifest) -> dict[str, Any]:
    """Push `image` to `repository`, scan it, and answer its overview and vulnerability report."""
    with httpx.Client(base_url=server.url, auth=ADMIN, timeout=60) as registry:
        oci.push_manifest(registry, repository, image, "v1")
    project, _, name = repository.partition("/")
    path = f"/projects/{project}/repositories/{name}/artifacts/{image.digest}"
    with httpx.Client(base_url=server.url + API, auth=ADMIN, timeout=60) as client:
        started = client.post(f"{path}/scan", json={"scan_type": "vulnerability"})
        assert started.status_code == 202, started.text
        overview = wait_for_scan(client, path, "scan_overview", timeout=120)["scan_overview"][REPORT_MIME]
        log = client.get(f"{path}/scan/{overview['report_id']}/log").text
        assert overview["scan_status"] == "Success", log
        report = client.get(f"{path}/additions/vulnerabilities").json()[REPORT_MIME]
    return {"overview": overview, "report": report}


def _python_findings(report: dict[str, Any]) -> dict[str, str | None]:
    return {
        v["id"]: v.get("fix_version")
        for v in report["vulnerabilities"]
        if v["package"] == PYTHON_PACKAGE["package"] and v["version"] == PYTHON_PACKAGE["version"]
    }


def test_each_instance_scans_for_the_other_through_the_adapter_api(pair: tuple[Portside, Portside]) -> None:
    east, west = pair
    spec = AdapterSpec()
    image = vulnerable_image()
    proxies = (_proxy_to(west.url, spec), _proxy_to(east.url, spec))
    with running(proxies[0]) as to_west, running(proxies[1]) as to_east:
        east_project = _project_scanned_by(east, to_west, _token(west))
        west_project = _project_scanned_by(west, to_east, _token(east))
        by_west = _scan(east, f"{east_project}/app", image)
        by_east = _scan(west, f"{west_project}/app", image)
    problems = [problem for proxy in proxies for problem in proxy.problems]
    assert not problems, problems

    for scanned in (by_west, by_east):
        # The other instance's scanner, by its own name, with what it found.
        assert scanned["overview"]["scanner"]["name"] == "Portside"
        assert _python_findings(scanned["report"]) == FIXED

    # The same image scanned by the built-in scanner finds the same advisories and fixes.
    with httpx.Client(base_url=east.url + API, auth=ADMIN, timeout=60) as client:
        plain = f"bi{uuid.uuid4().hex[:8]}"
        assert client.post("/projects", json={"project_name": plain}).status_code == 201
    built_in = _scan(east, f"{plain}/app", image)
    assert _python_findings(built_in["report"]) == FIXED
    assert {v["id"] for v in built_in["report"]["vulnerabilities"]} == {
        v["id"] for v in by_west["report"]["vulnerabilities"]
    }

    # Both ways went through the document's checks: the metadata (ping), a scan request
    # accepted, and its report answered, for each instance.
    seen = {(method, template, status) for method, template, status in spec.checked}
    assert ("GET", "/metadata", 200) in seen
    assert ("POST", "/scan", 202) in seen
    assert ("GET", "/scan/{scan_request_id}/report", 200) in seen
    assert (
        sum(1 for method, template, status in spec.checked if (method, template, status) == ("POST", "/scan", 202)) == 2
    )
