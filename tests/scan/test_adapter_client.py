"""The client of Harbor's pluggable scanner adapter API against a small fake adapter.

Every request the client sends and every answer the fake gives passes through
`SpecTransport`, which checks both against the schemas of the API's own OpenAPI document
(`specs/harbor-scanner-adapter-openapi.yaml`), so neither side can drift from the API. The
fake's report is the Debian 12 minbase findings of the shared fixtures' EXPECTED.json."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonschema
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from portside.scan.adapter import (
    HARBOR_VULNERABILITY_REPORT,
    SBOM_REPORT,
    VULNERABILITY_REPORT,
    AdapterClient,
    AdapterProtocolError,
    AdapterRejected,
    AdapterUnreachable,
    Pending,
    SbomReport,
    ScanNotFound,
    ScanRequest,
    ScanTimedOut,
    VulnerabilityReport,
)
from portside.scan.model import Severity
from portside.scan.sbom import SPDX_JSON, SbomSubject, spdx_document
from tests.scan.adapter_spec import AdapterSpec, SpecTransport, adapter_spec
from tests.scan.shared import VULNDB_FIXTURES
from tests.scan.test_sbom import debian_minbase_inventory
from tests.servers import free_port

ADAPTER_AUTH = "Bearer adapter-secret"
REGISTRY_AUTH = "Basic cm9ib3Q6c2VjcmV0"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ERROR_MIME = "application/vnd.scanner.adapter.error+json; version=1.0"
DIGEST = "sha256:" + "6c" * 32


# The fake adapter


def expected_debian_findings() -> list[dict[str, Any]]:
    expected = json.loads((VULNDB_FIXTURES / "EXPECTED.json").read_text())
    return [record for record in expected["debian12_minbase"]["records"] if record["affected"]]


@dataclass
class Job:
    request: dict[str, Any]
    polls_left: int  # 302s still to answer before the report is ready
    refresh_after: int = 1
    fails: bool = False


@dataclass
class FakeAdapter:
    """A scanner adapter whose behaviour follows the artifact's repository name:
    `*/slow` is ready after two polls, `*/never` never, `*/fails` ends in a 500, and an
    artifact that is not an image manifest is refused with 501."""

    jobs: dict[str, Job] = field(default_factory=dict)
    authorizations: list[str | None] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/api/v1/metadata", self.metadata, methods=["GET"]),
                Route("/api/v1/scan", self.scan, methods=["POST"]),
                Route("/api/v1/scan/{scan_id}/report", self.report, methods=["GET"]),
            ]
        )

    async def metadata(self, request: Request) -> Response:
        self.authorizations.append(request.headers.get("Authorization"))
        body = {
            "scanner": {"name": "Fake", "vendor": "Portside tests", "version": "0.1.0"},
            "capabilities": [
                {
                    "type": "vulnerability",
                    "consumes_mime_types": [OCI_MANIFEST, "application/vnd.docker.distribution.manifest.v2+json"],
                    "produces_mime_types": [VULNERABILITY_REPORT, HARBOR_VULNERABILITY_REPORT],
                },
                {
                    "type": "sbom",
                    "consumes_mime_types": [OCI_MANIFEST],
                    "produces_mime_types": [SBOM_REPORT],
                    "additional_attributes": {"sbom_media_types": [SPDX_JSON]},
                },
            ],
            "properties": {"harbor.scanner-adapter/scanner-type": "os-package-vulnerability"},
        }
        return JSONResponse(body, media_type="application/vnd.scanner.adapter.metadata+json; version=1.1")

    async def scan(self, request: Request) -> Response:
        self.authorizations.append(request.headers.get("Authorization"))
        body = await request.json()
        if body["artifact"].get("mime_type") != OCI_MANIFEST:
            return _error(501, f"cannot scan {body['artifact'].get('mime_type')}")
        scan_id = f"scan-{next(self.ids)}"
        kind = body["artifact"]["repository"].rsplit("/", 1)[-1]
        self.jobs[scan_id] = Job(
            request=body,
            polls_left={"slow": 2, "never": 10**9}.get(kind, 0),
            refresh_after=30 if kind == "never" else 1,
            fails=kind == "fails",
        )
        return JSONResponse(
            {"id": scan_id},
            status_code=202,
            media_type="application/vnd.scanner.adapter.scan.response+json; version=1.0",
        )

    async def report(self, request: Request) -> Response:
        job = self.jobs.get(request.path_params["scan_id"])
        if job is None:
            return Response(status_code=404)
        mime = request.headers.get("Accept", "")
        if mime == SBOM_REPORT and request.query_params.get("sbom_media_type") != SPDX_JSON:
            return _error(400, "sbom_media_type must be application/spdx+json")
        if mime not in (VULNERABILITY_REPORT, HARBOR_VULNERABILITY_REPORT, SBOM_REPORT):
            return _error(501, f"cannot produce {mime}")
        if job.polls_left > 0:
            job.polls_left -= 1
            return Response(status_code=302, headers={"Refresh-After": str(job.refresh_after)})
        if job.fails:
            return _error(500, "failed to pull the image: unauthorized")
        artifact = job.request["artifact"]
        scanner = {"name": "Fake", "vendor": "Portside tests", "version": "0.1.0"}
        generated_at = "2024-05-01T10:00:00Z"
        if mime == SBOM_REPORT:
            subject = SbomSubject(artifact["repository"], artifact["digest"], (), dt.datetime(2024, 5, 1), "0.1.0")
            sbom = {
                "generated_at": generated_at,
                "artifact": artifact,
                "scanner": scanner,
                "media_type": SPDX_JSON,
                "sbom": spdx_document(debian_minbase_inventory(), subject),
            }
            return JSONResponse(sbom, media_type=mime)
        vulnerabilities = [
            {
                "id": record["id"],
                "package": record["source_package"],
                "version": record["installed_source_version"],
                "severity": Severity.of(record["tracker_severity"]).label,
                "description": f"{record['id']} in {record['source_package']}",
                "links": [f"https://security-tracker.debian.org/tracker/{record['id']}"],
            }
            for record in expected_debian_findings()
        ]
        vulnerabilities[0]["preferred_cvss"] = {
            "score_v3": 3.3,
            "vector_v3": "CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:L/A:N",
        }
        vulnerabilities[0]["cwe_ids"] = ["CWE-22"]
        vulnerabilities[0]["fix_version"] = "9.9-1"
        worst = max((Severity.of(v["severity"]) for v in vulnerabilities), default=Severity.UNKNOWN)
        report = {
            "generated_at": generated_at,
            "artifact": artifact,
            "scanner": scanner,
            "severity": worst.label,
            "vulnerabilities": vulnerabilities,
        }
        return JSONResponse(report, media_type=mime)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": {"message": message}}, status_code=status, media_type=ERROR_MIME)


# The served app for a real socket (tests/scan/test_adapter_client_socket.py runs it in Granian).
fake_app = FakeAdapter().app()


# Fixtures


@dataclass
class Harness:
    fake: FakeAdapter
    client: AdapterClient
    spec: AdapterSpec
    slept: list[float]


@pytest.fixture
async def harness() -> Any:
    fake = FakeAdapter()
    spec = adapter_spec()
    spec.checked.clear()
    slept: list[float] = []
    now = [0.0]

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    transport = SpecTransport(httpx.ASGITransport(app=fake.app()), spec)
    async with AdapterClient(
        "http://adapter.test/", authorization=ADAPTER_AUTH, transport=transport, sleep=sleep, clock=lambda: now[0]
    ) as client:
        yield Harness(fake, client, spec, slept)


def scan_request(repository: str = "library/debian", **changes: Any) -> ScanRequest:
    values: dict[str, Any] = {
        "registry_url": "https://registry.example.com",
        "repository": repository,
        "digest": DIGEST,
        "tag": "bookworm",
        "authorization": REGISTRY_AUTH,
    }
    values.update(changes)
    return ScanRequest(**values)


# The helper itself


def test_spec_helper_rejects_what_the_api_does_not_allow() -> None:
    spec = adapter_spec()
    spec.validate("ScanRequest", scan_request().to_json())
    with pytest.raises(jsonschema.ValidationError):
        spec.validate("ScanRequest", {"registry": {"url": "https://r"}})  # no artifact
    with pytest.raises(jsonschema.ValidationError):
        spec.validate("HarborVulnerabilityReport", {"vulnerabilities": [{"severity": "Dire"}]})
    with pytest.raises(jsonschema.ValidationError):
        spec.validate("ScanResponse", {})


# The client


async def test_metadata(harness: Harness) -> None:
    metadata = await harness.client.metadata()
    assert (metadata.scanner.name, metadata.scanner.version) == ("Fake", "0.1.0")
    assert metadata.produces(VULNERABILITY_REPORT)
    assert metadata.produces(HARBOR_VULNERABILITY_REPORT)
    assert not metadata.produces("application/vnd.scanner.adapter.vuln.report.raw")
    (sbom,) = [c for c in metadata.capabilities if c.type == "sbom"]
    assert sbom.sbom_media_types == (SPDX_JSON,)
    assert metadata.properties["harbor.scanner-adapter/scanner-type"] == "os-package-vulnerability"
    assert harness.fake.authorizations == [ADAPTER_AUTH]
    assert harness.spec.checked == [("GET", "/metadata", 200)]


@pytest.mark.parametrize("mime", [VULNERABILITY_REPORT, HARBOR_VULNERABILITY_REPORT])
async def test_scan_and_wait_reads_the_report(harness: Harness, mime: str) -> None:
    report = await harness.client.scan_and_wait(scan_request(), mime)
    assert isinstance(report, VulnerabilityReport)
    assert report.mime_type == mime
    assert report.generated_at == dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.UTC)
    assert report.scanner is not None and report.scanner.vendor == "Portside tests"

    expected = expected_debian_findings()
    assert [(v.id, v.package, v.version) for v in report.vulnerabilities] == [
        (r["id"], r["source_package"], r["installed_source_version"]) for r in expected
    ]
    assert [v.severity for v in report.vulnerabilities] == [Severity.of(r["tracker_severity"]) for r in expected]
    assert report.severity == max(Severity.of(r["tracker_severity"]) for r in expected)
    first, second = report.vulnerabilities[:2]
    assert (first.fix_version, first.cvss_score_v3, first.cwe_ids) == ("9.9-1", 3.3, ("CWE-22",))
    assert first.cvss_vector_v3 is not None and first.cvss_vector_v3.startswith("CVSS:3.1/")
    assert (second.fix_version, second.cvss_score_v3) == (None, None)
    assert second.links == (f"https://security-tracker.debian.org/tracker/{second.id}",)

    (job,) = harness.fake.jobs.values()
    assert job.request["registry"] == {"url": "https://registry.example.com", "authorization": REGISTRY_AUTH}
    assert job.request["artifact"] == {
        "repository": "library/debian",
        "digest": DIGEST,
        "tag": "bookworm",
        "mime_type": OCI_MANIFEST,
    }
    assert harness.slept == []
    assert harness.spec.checked == [("POST", "/scan", 202), ("GET", "/scan/{scan_request_id}/report", 200)]


async def test_polls_as_the_adapter_asks(harness: Harness) -> None:
    report = await harness.client.scan_and_wait(scan_request("library/slow"))
    assert isinstance(report, VulnerabilityReport)
    assert harness.slept == [1.0, 1.0]
    assert [status for _, _, status in harness.spec.checked] == [202, 302, 302, 200]


async def test_report_while_running_is_pending(harness: Harness) -> None:
    scan_id = await harness.client.submit(scan_request("library/never"))
    assert await harness.client.report(scan_id) == Pending(retry_after=30.0)


async def test_waiting_is_bounded(harness: Harness) -> None:
    with pytest.raises(ScanTimedOut) as raised:
        await harness.client.scan_and_wait(scan_request("library/never"), timeout=45)
    # It waits as told (30s), then only what is left of the 45s, then gives up.
    assert harness.slept == [30.0, 15.0]
    assert raised.value.waited == 45


async def test_adapter_errors_carry_its_message(harness: Harness) -> None:
    with pytest.raises(AdapterRejected) as raised:
        await harness.client.scan_and_wait(scan_request("library/fails"))
    assert raised.value.status == 500
    assert raised.value.message == "failed to pull the image: unauthorized"

    with pytest.raises(AdapterRejected) as refused:
        await harness.client.submit(scan_request(mime_type="application/vnd.oci.image.index.v1+json"))
    assert refused.value.status == 501
    assert "cannot scan" in refused.value.message


async def test_unknown_scan_and_unsupported_report_type(harness: Harness) -> None:
    with pytest.raises(ScanNotFound):
        await harness.client.report("no-such-scan")
    with pytest.raises(ValueError):
        await harness.client.report("scan-1", "application/vnd.scanner.adapter.vuln.report.raw")
    for not_an_id in ("", ".."):
        with pytest.raises(ValueError):
            await harness.client.report(not_an_id)
    # Ids have no imposed format: one with a slash stays one path segment.
    with pytest.raises(ScanNotFound):
        await harness.client.report("a/b?c")


async def test_sbom_report(harness: Harness) -> None:
    scan_id = await harness.client.submit(
        scan_request(capabilities=(("sbom", (SBOM_REPORT,)),), sbom_media_types=(SPDX_JSON,))
    )
    with pytest.raises(ValueError):
        await harness.client.report(scan_id, SBOM_REPORT)
    report = await harness.client.report(scan_id, SBOM_REPORT, sbom_media_type=SPDX_JSON)
    assert isinstance(report, SbomReport)
    assert report.media_type == SPDX_JSON
    assert report.sbom["spdxVersion"] == "SPDX-2.3"
    (job,) = harness.fake.jobs.values()
    assert job.request["enabled_capabilities"] == [
        {"type": "sbom", "produces_mime_types": [SBOM_REPORT], "parameters": {"sbom_media_types": [SPDX_JSON]}}
    ]


async def test_unreachable_adapter() -> None:
    async with AdapterClient(f"http://127.0.0.1:{free_port()}", timeout=2.0) as client:
        with pytest.raises(AdapterUnreachable):
            await client.metadata()


# Answers outside the API (so no SpecTransport here: these are what it would refuse).


def mock_client(handler: Any) -> AdapterClient:
    return AdapterClient("http://adapter.test", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>oops</html>"),
        httpx.Response(200, json={"scanner": {"name": "x"}}),  # no capabilities
        httpx.Response(200, json={"scanner": {"name": 3}, "capabilities": []}),
        httpx.Response(200, json={"scanner": {}, "capabilities": "all"}),
        httpx.Response(204),
    ],
    ids=["not-json", "no-capabilities", "name-not-text", "capabilities-not-list", "unexpected-status"],
)
async def test_malformed_metadata_is_a_protocol_error(answer: httpx.Response) -> None:
    async with mock_client(lambda request: answer) as client:
        with pytest.raises(AdapterProtocolError):
            await client.metadata()


@pytest.mark.parametrize(
    "body",
    [
        {"vulnerabilities": "none"},
        {"vulnerabilities": [{"id": "CVE-1", "links": "https://x"}]},
        {"vulnerabilities": [{"id": "CVE-1", "preferred_cvss": {"score_v3": "high"}}]},
        {"generated_at": "yesterday"},
        ["not", "an", "object"],
    ],
)
async def test_malformed_report_is_a_protocol_error(body: Any) -> None:
    async with mock_client(lambda request: httpx.Response(200, json=body)) as client:
        with pytest.raises(AdapterProtocolError):
            await client.report("scan-1")


async def test_refresh_after_that_says_nothing_useful_falls_back() -> None:
    for header, expected in (("soon", 5.0), ("-3", 5.0), ("100000", 127.0), (None, 5.0)):
        headers = {"Refresh-After": header} if header is not None else {}
        async with mock_client(lambda request, h=headers: httpx.Response(302, headers=h)) as client:
            assert await client.report("scan-1") == Pending(expected)


async def test_scan_response_without_id_and_timeouts() -> None:
    async with mock_client(lambda request: httpx.Response(202, json={})) as client:
        with pytest.raises(AdapterProtocolError):
            await client.submit(scan_request())

    def times_out(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    async with mock_client(times_out) as client:
        with pytest.raises(AdapterUnreachable, match="timed out"):
            await client.submit(scan_request())

    async with mock_client(lambda request: httpx.Response(502, text="Bad Gateway from the proxy")) as client:
        with pytest.raises(AdapterRejected, match="Bad Gateway from the proxy"):
            await client.metadata()


async def test_spec_transport_catches_what_strays_from_the_api() -> None:
    """The checks above are only worth something if they fail: an adapter answer without
    the required capabilities, and a request in a media type the API does not take."""
    spec = adapter_spec()
    stray_answer = httpx.MockTransport(
        lambda request: httpx.Response(
            200,
            json={"scanner": {"name": "x"}},
            headers={"Content-Type": "application/vnd.scanner.adapter.metadata+json; version=1.1"},
        )
    )
    async with httpx.AsyncClient(transport=SpecTransport(stray_answer, spec), base_url="http://a.test") as http:
        with pytest.raises(jsonschema.ValidationError):
            await http.get("/api/v1/metadata")
        with pytest.raises(AssertionError):
            await http.post("/api/v1/scan", json=scan_request().to_json())  # plain application/json
        with pytest.raises(AssertionError):
            await http.delete("/api/v1/scan/1")  # no such operation
