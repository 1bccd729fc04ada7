"""Portside as a scanner adapter (Harbor's pluggable scanner API at /api/v1), live: one
Portside with the adapter enabled and the fixtures' advisories imported scans images held
by another live Portside (access control on), pulled with the Authorization the scan
request names, as Harbor asks its scanners to.

Every request and answer of these tests passes `SyncSpecTransport` (or `SpecTransport`
under Portside's own adapter client), which checks both against the API's OpenAPI
document; the requests made malformed on purpose have only their answers checked."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from portside.scan.adapter import VULNERABILITY_REPORT, AdapterClient, ScanRequest
from portside.scan.external import scan_with_adapter
from tests.api import oci
from tests.scan.adapter_spec import ERROR_MIME, SpecTransport, SyncSpecTransport, adapter_spec
from tests.scan.scanning import EXPECTED, PYTHON_PACKAGE, scanning_server, vulnerable_image
from tests.servers import ADMIN_PASSWORD, Portside, free_port

TOKEN = "adapter-token-" + "x" * 24
HARBOR_REPORT = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
SBOM_REPORT = "application/vnd.security.sbom.report+json; version=1.0"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ADMIN_BASIC = "Basic " + base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
WRONG_BASIC = "Basic " + base64.b64encode(b"admin:not-the-password").decode()
# The fixed versions the fixtures' OSV records give for requests 2.19.1.
FIXED = {"PYSEC-2018-28": "2.20.0", "PYSEC-2023-74": "2.31.0"}
ABANDON_SECONDS = 5


# Servers


@dataclass
class Images:
    repository: str
    image: oci.Manifest
    index: oci.Manifest


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Portside, Images]]:
    """The registry Harbor would be: access control on, the vulnerable image pushed."""
    started = Portside(
        data_dir=tmp_path_factory.mktemp("source") / "data",
        open_registry=False,
        env={"PORTSIDE_ADMIN_CREATES_PROJECTS": "true"},
    ).start()
    assert isinstance(started, Portside)
    image = vulnerable_image()
    index = oci.index_manifest([image])
    repository = "harbor/app"
    with httpx.Client(base_url=started.url, auth=("admin", ADMIN_PASSWORD), timeout=60) as registry:
        oci.push_manifest(registry, repository, image, "v1")
        oci.push_manifest(registry, repository, index, "multi")
    try:
        yield started, Images(repository, image, index)
    finally:
        started.stop()


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Portside]:
    """Portside as the scanner: two server processes, so a report may be asked of a process
    other than the one that accepted the request."""
    env = {
        "PORTSIDE_SCANNER_ADAPTER_ENABLED": "true",
        "PORTSIDE_SCANNER_ADAPTER_TOKEN": TOKEN,
        "PORTSIDE_SCANNER_ADAPTER_ABANDON_SECONDS": str(ABANDON_SECONDS),
        "PORTSIDE_WORKERS": "2",
    }
    with scanning_server(tmp_path_factory.mktemp("adapter") / "data", env) as started:
        yield started


def client(server: Portside, *, token: str | None = TOKEN, check_requests: bool = True) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(
        base_url=server.url,
        headers=headers,
        timeout=60,
        transport=SyncSpecTransport(adapter_spec(), check_requests=check_requests),
    )


def scan_body(url: str, repository: str, digest: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "registry": {"url": url, "authorization": ADMIN_BASIC},
        "artifact": {"repository": repository, "digest": digest, "tag": "v1", "mime_type": OCI_MANIFEST},
    }
    for key, value in changes.items():
        section, _, name = key.partition("__")
        body[section][name] = value
    return body


def post_scan(http: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    return http.post(
        "/api/v1/scan",
        json=body,
        headers={"Content-Type": "application/vnd.scanner.adapter.scan.request+json; version=1.1"},
    )


def submit(http: httpx.Client, body: dict[str, Any]) -> str:
    r = post_scan(http, body)
    assert r.status_code == 202, r.text
    scan_id = r.json()["id"]
    assert isinstance(scan_id, str)
    return scan_id


def wait_report(
    http: httpx.Client,
    scan_id: str,
    mime: str = "application/vnd.security.vulnerability.report; version=1.1",
    params: dict[str, str] | None = None,
    timeout: float = 90.0,
) -> httpx.Response:
    """The report's answer once it is no 302."""
    deadline = time.monotonic() + timeout
    while True:
        r = http.get(f"/api/v1/scan/{scan_id}/report", headers={"Accept": mime}, params=params)
        if r.status_code != 302:
            return r
        assert int(r.headers["Refresh-After"]) >= 1
        assert time.monotonic() < deadline, "the report stayed pending"
        time.sleep(0.3)


def _ids(vulnerability: dict[str, Any]) -> set[str]:
    attributes = vulnerability["vendor_attributes"]
    return {vulnerability["id"], attributes["advisory_id"], *attributes["aliases"]}


def check_vulnerable_report(report: dict[str, Any], repository: str, digest: str) -> None:
    """Exactly the advisories EXPECTED.json says apply: requests 2.19.1's two, with their
    fixed versions; of the Debian tracker's sample, none it says does not apply."""
    assert report["artifact"]["repository"] == repository
    assert report["artifact"]["digest"] == digest
    assert report["scanner"]["name"] == "Portside"
    python = [v for v in report["vulnerabilities"] if v["package"] == PYTHON_PACKAGE["package"]]
    assert len(python) == len(PYTHON_PACKAGE["affected"]), python
    by_advisory = {v["vendor_attributes"]["advisory_id"]: v for v in python}
    assert set(by_advisory) == set(PYTHON_PACKAGE["affected"])
    for advisory, fixed in FIXED.items():
        assert by_advisory[advisory]["fix_version"] == fixed
        assert by_advisory[advisory]["version"] == PYTHON_PACKAGE["version"]
    found = set().union(*(_ids(v) for v in python))
    assert not set(PYTHON_PACKAGE["not_affected"]) & found
    debian = {v["id"] for v in report["vulnerabilities"] if v["vendor_attributes"]["source"] != "osv"}
    expected = {r["id"] for r in EXPECTED["debian12_minbase"]["records"] if r["affected"]}
    assert debian <= expected
    worst = max(report["vulnerabilities"], key=lambda v: _SEVERITIES.index(v["severity"]))
    assert report["severity"] == worst["severity"]


_SEVERITIES = ["Unknown", "Negligible", "Low", "Medium", "High", "Critical"]


# A registry whose blobs wait for a signal: scans against it stay running until released.


@dataclass
class HeldRegistry:
    image: oci.Manifest
    release: threading.Event = field(default_factory=threading.Event)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> HeldRegistry:
        held = self
        content = {self.image.digest: (self.image.media_type, self.image.body)}
        content.update({blob.digest: ("application/octet-stream", blob.data) for blob in self.image.blobs})

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                digest = self.path.rsplit("/", 1)[-1]
                if "/blobs/" in self.path:
                    held.release.wait(60)
                found = content.get(digest)
                if found is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", found[0])
                self.send_header("Content-Length", str(len(found[1])))
                self.end_headers()
                self.wfile.write(found[1])

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


# Tests


def test_metadata(adapter: Portside) -> None:
    with client(adapter) as http:
        r = http.get(
            "/api/v1/metadata", headers={"Accept": "application/vnd.scanner.adapter.metadata+json; version=1.1"}
        )
    assert r.status_code == 200, r.text
    metadata = r.json()
    assert metadata["scanner"]["name"] == "Portside"
    by_type = {c["type"]: c for c in metadata["capabilities"]}
    assert set(by_type) == {"vulnerability", "sbom"}
    for capability in by_type.values():
        assert {OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"} <= set(
            capability["consumes_mime_types"]
        )
    assert set(by_type["vulnerability"]["produces_mime_types"]) == {
        "application/vnd.security.vulnerability.report; version=1.1",
        HARBOR_REPORT,
    }
    assert by_type["sbom"]["produces_mime_types"] == [SBOM_REPORT]
    assert set(by_type["sbom"]["additional_attributes"]["sbom_media_types"]) == {
        "application/spdx+json",
        "application/vnd.cyclonedx+json",
    }
    properties = metadata["properties"]
    assert properties["harbor.scanner-adapter/scanner-type"] == "os-package-vulnerability"
    assert properties["harbor.scanner-adapter/vulnerability-database-updated-at"].endswith("Z")


def test_token_is_required(adapter: Portside) -> None:
    for token in (None, "wrong-token-" + "y" * 20, TOKEN + "x"):
        with client(adapter, token=token) as http:
            for r in (
                http.get("/api/v1/metadata"),
                http.get(f"/api/v1/scan/{uuid.uuid4()}/report", headers={"Accept": HARBOR_REPORT}),
            ):
                assert r.status_code == 401, r.text
                assert r.headers["content-type"] == ERROR_MIME
                assert r.json()["error"]["message"]
    # The other header Harbor sends the credential in, and Basic with the token as password.
    basic = "Basic " + base64.b64encode(f"harbor:{TOKEN}".encode()).decode()
    for headers in ({"X-ScannerAdapter-API-Key": TOKEN}, {"Authorization": basic}):
        with client(adapter, token=None) as http:
            assert http.get("/api/v1/metadata", headers=headers).status_code == 200
    with client(adapter, token=None) as http:
        r = http.get("/api/v1/metadata", headers={"X-ScannerAdapter-API-Key": "nope"})
        assert r.status_code == 401


def test_disabled_adapter_is_not_served(tmp_path_factory: pytest.TempPathFactory) -> None:
    plain = Portside(data_dir=tmp_path_factory.mktemp("plain") / "data").start()
    try:
        # Outside the API (it is not served): plain 404s, no spec to hold them to.
        with httpx.Client(base_url=plain.url, headers={"Authorization": f"Bearer {TOKEN}"}) as http:
            assert http.get("/api/v1/metadata").status_code == 404
            assert http.post("/api/v1/scan", json={}).status_code == 404
            assert http.get(f"/api/v1/scan/{uuid.uuid4()}/report").status_code == 404
    finally:
        plain.stop()


def test_scan_an_image_of_another_registry(adapter: Portside, source: tuple[Portside, Images]) -> None:
    registry, images = source
    with client(adapter) as http:
        scan_id = submit(http, scan_body(registry.url, images.repository, images.image.digest))
        r = wait_report(http, scan_id)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/vnd.security.vulnerability.report; version=1.1"
        report = r.json()
        check_vulnerable_report(report, images.repository, images.image.digest)
        assert report["artifact"]["tag"] == "v1"
        # The older report type: the same findings.
        r = wait_report(http, scan_id, HARBOR_REPORT)
        assert r.status_code == 200 and r.headers["content-type"] == HARBOR_REPORT
        assert r.json()["vulnerabilities"] == report["vulnerabilities"]
        # Asked again (of either server process, in any order), the report is the same.
        for _ in range(4):
            assert wait_report(http, scan_id).json()["vulnerabilities"] == report["vulnerabilities"]

        # The SBOMs, in both formats.
        spdx = wait_report(http, scan_id, SBOM_REPORT, {"sbom_media_type": "application/spdx+json"})
        assert spdx.status_code == 200, spdx.text
        assert spdx.json()["media_type"] == "application/spdx+json"
        assert spdx.json()["sbom"]["spdxVersion"] == "SPDX-2.3"
        assert PYTHON_PACKAGE["package"] in {p["name"] for p in spdx.json()["sbom"]["packages"]}
        cyclonedx = wait_report(http, scan_id, SBOM_REPORT, {"sbom_media_type": "application/vnd.cyclonedx+json"})
        assert cyclonedx.status_code == 200, cyclonedx.text
        assert cyclonedx.json()["sbom"]["bomFormat"] == "CycloneDX"


def test_scan_an_index(adapter: Portside, source: tuple[Portside, Images]) -> None:
    registry, images = source
    body = scan_body(
        registry.url,
        images.repository,
        images.index.digest,
        artifact__mime_type="application/vnd.oci.image.index.v1+json",
        artifact__tag="multi",
    )
    with client(adapter) as http:
        scan_id = submit(http, body)
        r = wait_report(http, scan_id)
    assert r.status_code == 200, r.text
    check_vulnerable_report(r.json(), images.repository, images.index.digest)


def test_portside_adapter_client_drives_it(adapter: Portside, source: tuple[Portside, Images]) -> None:
    registry, images = source
    spec = adapter_spec()

    async def main() -> Any:
        transport = SpecTransport(httpx.AsyncHTTPTransport(), spec)
        async with AdapterClient(adapter.url, authorization=f"Bearer {TOKEN}", transport=transport) as adapter_client:
            metadata = await adapter_client.metadata()
            assert metadata.produces(VULNERABILITY_REPORT)
            request = ScanRequest(registry.url, images.repository, images.image.digest, OCI_MANIFEST, "v1", ADMIN_BASIC)
            return await scan_with_adapter(adapter_client, request, "portside-adapter", timeout=90)

    result = asyncio.run(main())
    assert result.scanner_name == "Portside"
    python = {f.vulnerability_id: f for f in result.findings if f.package == PYTHON_PACKAGE["package"]}
    assert len(python) == len(PYTHON_PACKAGE["affected"])
    assert {f.fixed_version for f in python.values()} == set(FIXED.values())


def test_refused_requests(adapter: Portside, source: tuple[Portside, Images]) -> None:
    registry, images = source
    with client(adapter) as http:
        # An artifact type the adapter does not scan: 422.
        body = scan_body(registry.url, images.repository, images.image.digest, artifact__mime_type="text/plain")
        r = post_scan(http, body)
        assert r.status_code == 422, r.text
        assert "text/plain" in r.json()["error"]["message"]
        # An unknown scan id: 404.
        r = http.get(f"/api/v1/scan/{uuid.uuid4()}/report", headers={"Accept": HARBOR_REPORT})
        assert r.status_code == 404
        # A report type the API names that Portside does not produce: 501.
        scan_id = submit(http, scan_body(registry.url, images.repository, images.image.digest))
        r = http.get(
            f"/api/v1/scan/{scan_id}/report", headers={"Accept": "application/vnd.scanner.adapter.vuln.report.raw"}
        )
        assert r.status_code == 501, r.text
    with client(adapter, check_requests=False) as outside:
        # Malformed requests (outside the API on purpose): 400 for no JSON or wrong types,
        # 422 for missing or invalid fields.
        for content, status in (
            (b"{not json", 400),
            (b"[]", 400),
            (b'{"registry": "x", "artifact": {}}', 400),
            (b'{"registry": {"url": 5}, "artifact": {"repository": "a", "digest": "sha256:00"}}', 400),
            (b'{"artifact": {"repository": "a", "digest": "sha256:00"}}', 422),
            (b'{"registry": {"url": "ftp://x"}, "artifact": {"repository": "a", "digest": "sha256:00"}}', 422),
            (b'{"registry": {"url": "http://x"}, "artifact": {"digest": "sha256:00"}}', 422),
        ):
            r = outside.post("/api/v1/scan", content=content, headers={"Content-Type": "application/json"})
            assert r.status_code == status, (content, r.status_code, r.text)
            assert r.headers["content-type"] == ERROR_MIME
        # A report type nobody knows, and an SBOM without (or with a wrong) sbom_media_type: 400.
        for headers, params in (
            ({"Accept": "application/x-what"}, {}),
            ({"Accept": SBOM_REPORT}, {}),
            ({"Accept": SBOM_REPORT}, {"sbom_media_type": "text/plain"}),
        ):
            r = outside.get(f"/api/v1/scan/{scan_id}/report", headers=headers, params=params)
            assert r.status_code == 400, r.text
            assert r.json()["error"]["message"]


def test_failed_pulls_answer_an_error_report(adapter: Portside, source: tuple[Portside, Images]) -> None:
    registry, images = source
    digest = images.image.digest
    cases = [
        (scan_body(registry.url, images.repository, digest, registry__authorization=WRONG_BASIC), "refused"),
        (scan_body(registry.url, "harbor/missing", digest), "not found"),
        (scan_body(registry.url, images.repository, "sha256:" + "0" * 64), "not found"),
        (scan_body(f"http://127.0.0.1:{free_port()}", images.repository, digest), "unreachable"),
    ]
    with client(adapter) as http:
        for body, words in cases:
            scan_id = submit(http, body)
            r = wait_report(http, scan_id)
            assert r.status_code == 500, r.text
            assert r.headers["content-type"] == ERROR_MIME
            message = r.json()["error"]["message"]
            assert words in message, message
            assert ADMIN_PASSWORD not in message and "not-the-password" not in message
    assert "Traceback" not in adapter.log()


def test_pending_while_the_scan_runs(adapter: Portside) -> None:
    image = vulnerable_image()
    with HeldRegistry(image) as held, client(adapter) as http:
        scan_id = submit(http, scan_body(held.url, "held/app", image.digest))
        for _ in range(3):  # each process answers the same, one of them holding the scan
            r = http.get(f"/api/v1/scan/{scan_id}/report", headers={"Accept": HARBOR_REPORT})
            assert r.status_code == 302, r.text
            assert 1 <= int(r.headers["Refresh-After"]) <= 127
        held.release.set()
        r = wait_report(http, scan_id, HARBOR_REPORT)
        assert r.status_code == 200, r.text
        assert any(v["package"] == PYTHON_PACKAGE["package"] for v in r.json()["vulnerabilities"])


def test_requests_outlive_their_server(adapter: Portside, source: tuple[Portside, Images]) -> None:
    """Last: it restarts the adapter. A finished report is answered by the next server; a
    scan whose server died answers failed once no heartbeat came for the abandon time."""
    registry, images = source
    image = vulnerable_image()
    with client(adapter) as http:
        done = submit(http, scan_body(registry.url, images.repository, images.image.digest))
        assert wait_report(http, done).status_code == 200
    with HeldRegistry(image) as held:
        with client(adapter) as http:
            stuck = submit(http, scan_body(held.url, "held/app", image.digest))
            r = http.get(f"/api/v1/scan/{stuck}/report", headers={"Accept": HARBOR_REPORT})
            assert r.status_code == 302
        adapter.kill()
        adapter.start()
        with client(adapter) as http:
            r = wait_report(http, done)
            assert r.status_code == 200
            check_vulnerable_report(r.json(), images.repository, images.image.digest)
            r = wait_report(http, stuck, HARBOR_REPORT, timeout=ABANDON_SECONDS * 4)
            assert r.status_code == 500, r.text
            assert "abandoned" in r.json()["error"]["message"]
