"""Harbor's scanning endpoints: scan and stop an artifact's scan, a report's log, the
`vulnerabilities` and `sbom` additions, the scanner registry, scan-all's stop and metrics,
Harbor's security hub (`/security/summary`, `/security/vul`), and Portside's own
cross-artifact questions (`/vulnerabilities/{id}/artifacts`, `/packages/artifacts?purl=`).

Registered before the artifact routes, whose generic `additions/{addition}` would
otherwise answer for `vulnerabilities` and `sbom`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Path, Query, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from portside.errors import NotFound
from portside.http.api.context import Caller, IsResourceName, Pages, iso, paged, project_key, services, without_none
from portside.meta.scanners import NewRegistration
from portside.meta.scans import ArtifactFinding, ArtifactPackage, HubFinding, ScannedBy, ScanReport, StoredFinding
from portside.mgmt.scanners import ScannerRegistry, ScannerView
from portside.mgmt.scanning import TUNED_COUNT_LIMIT, ScanApiService, ScannerInfo
from portside.scan.adapter import ScannerMetadata
from portside.scan.model import Severity
from portside.scan.vulndb.status import DatabaseStatus

__all__ = ["report_type", "router", "sbom_overview", "scan_overview", "scanning"]

router = APIRouter(tags=["scan"])
_ONE = "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}"
ACCEPT_HEADER = "X-Accept-Vulnerabilities"


class ScanType(BaseModel):
    scan_type: Literal["vulnerability", "sbom"] = "vulnerability"


class ProjectScannerReq(BaseModel):
    uuid: str


def scanning(request: Request) -> ScanApiService:
    found = services(request).scans
    if found is None:
        raise NotFound("scanning is not available on this server")
    return found


def report_type(accept: str | None) -> str:
    """The report MIME type `X-Accept-Vulnerabilities` asks for first (its types hold
    `; version=`, so they are split on commas, not parsed as media ranges)."""
    known = ScanApiService.REPORT_TYPES
    for wanted in (accept or "").split(","):
        normalised = wanted.strip().replace(" ", "").lower()
        for candidate in known:
            if candidate.replace(" ", "").lower() == normalised:
                return candidate
    return known[0]


def _scanner(scanner: ScannerInfo | ScannedBy) -> dict[str, str]:
    return {"name": scanner.name, "vendor": scanner.vendor, "version": scanner.version}


def _scanned_by(report: ScanReport, builtin: ScannerInfo) -> ScannerInfo | ScannedBy:
    """The scanner whose findings the report's summary holds: an adapter's, or the built-in."""
    summary = report.summary
    return summary.scanned_by if summary is not None and summary.scanned_by is not None else builtin


def _duration(report: ScanReport) -> int | None:
    if report.start_time is None or report.end_time is None:
        return None
    return int((report.end_time - report.start_time).total_seconds())


def scan_overview(report: ScanReport, scanner: ScannerInfo) -> dict[str, Any]:
    """Harbor's NativeReportSummary: a non-Success report carries its status and times only."""
    document: dict[str, Any] = {
        "report_id": report.id,
        "scan_status": report.status,
        "start_time": iso(report.start_time or report.creation_time),
        "end_time": iso(report.end_time),
        "duration": _duration(report),
        "complete_percent": 100 if report.status == "Success" else 0,
        "scanner": _scanner(_scanned_by(report, scanner)),
    }
    summary = report.summary
    if report.status == "Success" and summary is not None:
        document["severity"] = Severity(summary.severity).label if summary.total else "None"
        document["summary"] = {"total": summary.total, "fixable": summary.fixable, "summary": dict(summary.counts)}
    return without_none(document)


def sbom_overview(report: ScanReport, scanner: ScannerInfo) -> dict[str, Any]:
    return without_none(
        {
            "report_id": report.id,
            "scan_status": report.status,
            "start_time": iso(report.start_time or report.creation_time),
            "end_time": iso(report.end_time),
            "duration": _duration(report),
            "sbom_digest": report.sbom_digest,
            "scanner": _scanner(scanner),
        }
    )


def database_document(status: DatabaseStatus | None) -> dict[str, Any]:
    """The vulnerability database's age, as every report states it."""
    if status is None or not status.sources:
        return {"imported": False, "stale": True}
    return {
        "imported": True,
        "generation": status.generation,
        "updated_at": iso(status.updated_at),
        "stale": status.stale,
    }


def _vulnerability(finding: StoredFinding, digest: str) -> dict[str, Any]:
    cvss = {"score_v3": finding.cvss_score, "score_v2": None, "vector_v3": finding.cvss_vector or "", "vector_v2": ""}
    return {
        "id": finding.vulnerability_id,
        "package": finding.package,
        "version": finding.version,
        "fix_version": finding.fixed_version or "",
        "severity": Severity(finding.severity).label,
        "status": "fixed" if finding.fixed_version else "affected",
        "description": finding.description,
        "links": list(finding.links),
        "artifact_digests": [digest],
        "preferred_cvss": cvss,
        "cwe_ids": list(finding.cwe_ids),
        "vendor_attributes": {
            "advisory_id": finding.advisory_id,
            "aliases": list(finding.aliases),
            "source": finding.source,
            "purl": finding.purl,
            "layer": finding.layer,
            "path": finding.path,
        },
    }


@router.post(_ONE + "/scan", status_code=202, summary="Scan an artifact (scan_type vulnerability or sbom)")
async def scan_artifact(
    request: Request,
    who: Caller,
    project_name: str,
    repository_name: str,
    reference: str,
    body: Annotated[ScanType | None, Body()] = None,
) -> Response:
    scan_type = (body or ScanType()).scan_type
    await scanning(request).scan(who, project_name, repository_name, reference, scan_type)
    return Response(status_code=202)


@router.post(_ONE + "/scan/stop", status_code=202, summary="Stop an artifact's scan")
async def stop_scan(
    request: Request, who: Caller, project_name: str, repository_name: str, reference: str, body: ScanType
) -> Response:
    await scanning(request).stop(who, project_name, repository_name, reference, body.scan_type)
    return Response(status_code=202)


@router.get(_ONE + "/scan/{report_id}/log", summary="The log of a scan", response_class=PlainTextResponse)
async def scan_log(
    request: Request, who: Caller, project_name: str, repository_name: str, reference: str, report_id: str
) -> PlainTextResponse:
    return PlainTextResponse(await scanning(request).log(who, project_name, repository_name, reference, report_id))


@router.get(_ONE + "/policy", summary="A dry run of the project's pull policy: would a pull be allowed, and why")
async def pull_policy_dry_run(
    request: Request, who: Caller, project_name: str, repository_name: str, reference: str
) -> dict[str, Any]:
    """What a pull of this artifact by someone the policy does not exempt would meet: `allowed`,
    and for each rule of the project (`vulnerability`: Harbor's prevent_vul; `signature`: its
    content trust and `require_signature`) whether it is on and the reason it refuses (the
    412's message), empty when it lets the pull through."""
    verdict = await scanning(request).pull_verdict(who, project_name, repository_name, reference)
    return {
        "digest": verdict.digest,
        "allowed": verdict.allowed,
        "rules": [
            {"rule": rule.rule, "enabled": rule.enabled, "allowed": not rule.reason, "reason": rule.reason}
            for rule in verdict.rules
        ],
    }


@router.get(_ONE + "/additions/vulnerabilities", summary="The vulnerability report, keyed by report MIME type")
async def vulnerabilities_addition(
    request: Request,
    who: Caller,
    project_name: str,
    repository_name: str,
    reference: str,
    accept: Annotated[str | None, Header(alias=ACCEPT_HEADER)] = None,
) -> Response:
    scans = scanning(request)
    report, findings, digest = await scans.vulnerabilities(who, project_name, repository_name, reference)
    if report is None or report.status != "Success":
        return JSONResponse({})
    summary = report.summary
    document = {
        "generated_at": iso(report.end_time),
        "scanner": _scanner(_scanned_by(report, scans.scanner)),
        "severity": Severity(summary.severity).label if summary is not None and summary.total else "None",
        "vulnerabilities": [_vulnerability(f, digest) for f in findings],
        "vulnerability_database": {
            **database_document(await scans.database_status()),
            # The generation these findings were matched against: behind the database's
            # until the re-match after an import has reached this artifact.
            "matched_generation": summary.db_generation if summary is not None else None,
        },
    }
    return JSONResponse({report_type(accept): document})


@router.get(_ONE + "/additions/sbom", summary="An SBOM referrer's document (address the SBOM's own digest)")
async def sbom_addition(
    request: Request, who: Caller, project_name: str, repository_name: str, reference: str
) -> Response:
    media_type, body = await scanning(request).sbom(who, project_name, repository_name, reference)
    return Response(body, media_type=media_type)


# --- the scanner registry ----------------------------------------------------------------


class ScannerRegistrationReq(BaseModel):
    """Harbor's ScannerRegistrationReq (`skip_certVerify` spelt as Harbor spells it)."""

    name: str
    url: str
    description: str = ""
    auth: str = ""
    access_credential: str = ""
    skip_certVerify: bool = False  # noqa: N815 (Harbor's field name)
    use_internal_addr: bool = False
    disabled: bool = False

    def new(self) -> NewRegistration:
        return NewRegistration(
            name=self.name,
            url=self.url,
            description=self.description,
            auth=self.auth,
            access_credential=self.access_credential,
            skip_cert_verify=self.skip_certVerify,
            use_internal_addr=self.use_internal_addr,
            disabled=self.disabled,
        )


class IsDefault(BaseModel):
    is_default: bool


def registry(request: Request) -> ScannerRegistry:
    found = scanning(request).registry
    if found is None:
        raise NotFound("no scanner registry on this server")
    return found


def _registration(scanner: ScannerView) -> dict[str, Any]:
    """Harbor's ScannerRegistration; the credential masked."""
    body: dict[str, Any] = {
        "uuid": scanner.uuid,
        "name": scanner.name,
        "description": scanner.description,
        "url": scanner.url,
        "disabled": scanner.disabled,
        "is_default": scanner.is_default,
        "auth": scanner.auth,
        "access_credential": scanner.credential_masked,
        "skip_certVerify": scanner.skip_cert_verify,
        "use_internal_addr": scanner.use_internal_addr,
        "adapter": scanner.adapter,
        "vendor": scanner.vendor,
        "version": scanner.version,
        "health": scanner.health,
    }
    if scanner.registration is None:
        body["capabilities"] = {"support_vulnerability": True, "support_sbom": True}
    return body


def _metadata(metadata: ScannerMetadata) -> dict[str, Any]:
    """Harbor's ScannerAdapterMetadata from an adapter's answer."""
    return {
        "scanner": {
            "name": metadata.scanner.name,
            "vendor": metadata.scanner.vendor,
            "version": metadata.scanner.version,
        },
        "capabilities": [
            {
                "type": c.type,
                "consumes_mime_types": list(c.consumes),
                "produces_mime_types": list(c.produces),
            }
            for c in metadata.capabilities
        ],
        "properties": dict(metadata.properties),
    }


@router.get("/scanners", tags=["scanner"], summary="Scanner registrations: the built-in scanner and adapters")
async def list_scanners(request: Request, response: Response, who: Caller) -> list[dict[str, Any]]:
    found = await registry(request).list(who)
    response.headers["X-Total-Count"] = str(len(found))
    return [_registration(s) for s in found]


@router.post("/scanners", tags=["scanner"], summary="Register a scanner adapter", status_code=201)
async def create_scanner(request: Request, who: Caller, body: ScannerRegistrationReq) -> Response:
    made = await registry(request).create(who, body.new())
    return Response(status_code=201, headers={"Location": f"/api/v2.0/scanners/{made.uuid}"})


@router.post("/scanners/ping", tags=["scanner"], summary="Whether a scanner adapter answers")
async def ping_scanner(request: Request, who: Caller, body: ScannerRegistrationReq) -> Response:
    await registry(request).ping(who, body.new())
    return Response(status_code=200)


@router.get("/scanners/{registration_id}", tags=["scanner"], summary="A scanner registration")
async def get_scanner(request: Request, who: Caller, registration_id: str) -> dict[str, Any]:
    return _registration(await registry(request).get(who, registration_id))


@router.put("/scanners/{registration_id}", tags=["scanner"], summary="Change a scanner registration")
async def update_scanner(request: Request, who: Caller, registration_id: str, body: ScannerRegistrationReq) -> Response:
    await registry(request).update(who, registration_id, body.new())
    return Response(status_code=200)


@router.delete("/scanners/{registration_id}", tags=["scanner"], summary="Remove a scanner registration")
async def delete_scanner(request: Request, who: Caller, registration_id: str) -> dict[str, Any]:
    return _registration(await registry(request).delete(who, registration_id))


@router.patch("/scanners/{registration_id}", tags=["scanner"], summary="Make a scanner the default")
async def set_default_scanner(request: Request, who: Caller, registration_id: str, body: IsDefault) -> Response:
    if body.is_default:
        await registry(request).set_default(who, registration_id)
    return Response(status_code=200)


@router.get("/scanners/{registration_id}/metadata", tags=["scanner"], summary="What a scanner consumes and produces")
async def scanner_metadata(request: Request, who: Caller, registration_id: str) -> dict[str, Any]:
    adapter = await registry(request).metadata(who, registration_id)
    if adapter is not None:
        return _metadata(adapter)
    scanner = scanning(request).scanner
    consumes = ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"]
    return {
        "scanner": _scanner(scanner),
        "capabilities": [
            {
                "type": "vulnerability",
                "consumes_mime_types": consumes,
                "produces_mime_types": list(ScanApiService.REPORT_TYPES),
            },
            {
                "type": "sbom",
                "consumes_mime_types": consumes,
                "produces_mime_types": ["application/vnd.security.sbom.report+json; version=1.0"],
            },
        ],
        "properties": {"harbor.scanner-adapter/vulnerability-database-offline": "true"},
    }


@router.get("/projects/{project_name_or_id}/scanner", tags=["scanner"], summary="The scanner of a project")
async def get_project_scanner(
    request: Request, who: Caller, project_name_or_id: str, is_name: IsResourceName = False
) -> dict[str, Any]:
    return _registration(await scanning(request).project_scanner(who, project_key(project_name_or_id, is_name)))


@router.put("/projects/{project_name_or_id}/scanner", tags=["scanner"], summary="Set the scanner of a project")
async def set_project_scanner(
    request: Request, who: Caller, project_name_or_id: str, body: ProjectScannerReq, is_name: IsResourceName = False
) -> Response:
    await scanning(request).set_project_scanner(who, project_key(project_name_or_id, is_name), body.uuid)
    return Response(status_code=200)


# --- scan all ----------------------------------------------------------------------------


@router.get("/scans/all/metrics", tags=["scanAll"], summary="The progress of the scans scan-all queued")
@router.get("/scans/schedule/metrics", tags=["scanAll"], summary="The progress of the scheduled scans")
async def scan_all_metrics(request: Request, who: Caller) -> dict[str, Any]:
    counts = await scanning(request).metrics(who)
    total = sum(counts.values())
    ongoing = counts.get("Pending", 0) + counts.get("Running", 0)
    return {
        "total": total,
        "completed": total - ongoing,
        "metrics": counts,
        "ongoing": ongoing > 0,
        "trigger": "Manual",
    }


@router.post("/system/scanAll/stop", tags=["scanAll"], status_code=202, summary="Stop the running scan-all")
async def stop_scan_all(request: Request, who: Caller) -> Response:
    await scanning(request).stop_all(who)
    return Response(status_code=202)


# --- which artifacts hold a vulnerability or a package (Portside's own) ------------------


def _held(found: Sequence[ArtifactFinding]) -> list[dict[str, Any]]:
    return [
        without_none(
            {
                "project_name": held.repository.split("/", 1)[0],
                "repository_name": held.repository,
                "digest": held.digest,
                "vulnerability_id": held.finding.vulnerability_id,
                "advisory_id": held.finding.advisory_id,
                "package": held.finding.package,
                "version": held.finding.version,
                "purl": held.finding.purl,
                "fixed_version": held.finding.fixed_version,
                "severity": Severity(held.finding.severity).label,
            }
        )
        for held in found
    ]


@router.get(
    "/vulnerabilities/{vulnerability_id}/artifacts",
    tags=["scan"],
    summary="Artifacts the caller may pull that hold a vulnerability (CVE or advisory id), with the fixed version",
)
async def artifacts_with_vulnerability(request: Request, who: Caller, vulnerability_id: str) -> list[dict[str, Any]]:
    return _held(await scanning(request).with_vulnerability(who, vulnerability_id))


@router.get(
    "/packages/artifacts",
    tags=["scan"],
    summary="Artifacts the caller may pull that contain a package (purl, with or without @version)",
    description="Every scanned artifact holding the package, whether or not an advisory names it: one entry per "
    "artifact and installed copy (version, path, layer), with that copy's vulnerabilities and fixed versions.",
)
async def artifacts_with_package(
    request: Request, who: Caller, purl: Annotated[str, Query(min_length=5, max_length=1024)]
) -> list[dict[str, Any]]:
    return [_holding(held) for held in await scanning(request).with_package(who, purl)]


def _holding(held: ArtifactPackage) -> dict[str, Any]:
    return {
        "project_name": held.repository.split("/", 1)[0],
        "repository_name": held.repository,
        "digest": held.digest,
        "package": held.package.name,
        "version": held.package.version,
        "purl": held.package.purl,
        "path": held.package.path,
        "layer": held.package.layer,
        "vulnerabilities": [
            without_none(
                {
                    "vulnerability_id": f.vulnerability_id,
                    "advisory_id": f.advisory_id,
                    "fixed_version": f.fixed_version,
                    "severity": Severity(f.severity).label,
                }
            )
            for f in held.findings
        ],
    }


@router.get(
    "/projects/{project_name}/repositories/{repository_name:path}/vulnerabilities/{vulnerability_id}/tags",
    tags=["scan"],
    summary="Which tags of a repository hold a vulnerability, and which no longer do",
    description="Each tag of the repository, the newest push first, with its artifact's digest and `status`: "
    "`affected` (its scan found the vulnerability; `findings` name the package, installed and fixed version), "
    "`not_affected` (scanned, and the vulnerability is not among its findings) or `not_scanned`. "
    "`vulnerability_id` is a CVE or an advisory id. A private project is answered as missing to those who may "
    "not read it.",
)
async def tags_with_vulnerability(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    project_name: str,
    repository_name: str,
    vulnerability_id: Annotated[str, Path(min_length=1, max_length=128)],
) -> list[dict[str, Any]]:
    page = await scanning(request).tags_with_vulnerability(who, project_name, repository_name, vulnerability_id, paging)
    paged(request, response, page, paging)
    return [
        {
            "tag": held.tag,
            "digest": held.digest,
            "push_time": iso(held.pushed_at),
            "status": "affected" if held.findings else "not_affected" if held.scanned else "not_scanned",
            "findings": [
                without_none(
                    {
                        "vulnerability_id": f.vulnerability_id,
                        "advisory_id": f.advisory_id,
                        "package": f.package,
                        "version": f.version,
                        "fixed_version": f.fixed_version,
                        "severity": Severity(f.severity).label,
                    }
                )
                for f in held.findings
            ],
        }
        for held in page.items
    ]


@router.get("/security/summary", tags=["securityhub"], summary="The registry's vulnerabilities in numbers")
async def security_summary(
    request: Request, who: Caller, with_dangerous_cve: bool = False, with_dangerous_artifact: bool = False
) -> dict[str, Any]:
    summary, project_ids = await scanning(request).security_summary(who)
    counts = summary.counts
    document: dict[str, Any] = {
        "critical_cnt": counts.get(Severity.CRITICAL, 0),
        "high_cnt": counts.get(Severity.HIGH, 0),
        "medium_cnt": counts.get(Severity.MEDIUM, 0),
        # Harbor's summary has no Negligible (Trivy reports none); Debian's unimportant ones count as low.
        "low_cnt": counts.get(Severity.LOW, 0) + counts.get(Severity.NEGLIGIBLE, 0),
        "none_cnt": 0,  # a finding always has a severity; Harbor's "None" is no finding
        "unknown_cnt": counts.get(Severity.UNKNOWN, 0),
        "total_vuls": sum(counts.values()),
        "scanned_cnt": summary.scanned_artifacts,
        "total_artifact": summary.total_artifacts,
        "fixable_cnt": summary.fixable,
    }
    if with_dangerous_cve:
        document["dangerous_cves"] = [
            without_none(
                {
                    "cve_id": held.finding.vulnerability_id,
                    "severity": Severity(held.finding.severity).label,
                    "cvss_score_v3": held.finding.cvss_score,
                    "desc": held.finding.description,
                    "package": held.finding.package,
                    "version": held.finding.version,
                }
            )
            for held in summary.dangerous_findings
        ]
    if with_dangerous_artifact:
        document["dangerous_artifacts"] = [
            without_none(
                {
                    "project_id": project_ids.get(repository.split("/", 1)[0]),
                    "repository_name": repository,  # the full name, as Harbor's
                    "digest": digest,
                    "critical_cnt": by_severity[Severity.CRITICAL],
                    "high_cnt": by_severity[Severity.HIGH],
                    "medium_cnt": by_severity[Severity.MEDIUM],
                }
            )
            for repository, digest, by_severity in summary.dangerous_artifacts
        ]
    return document


@router.get("/security/vul", tags=["securityhub"], summary="Every finding of every artifact, worst first")
async def list_vulnerabilities(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    q: Annotated[str | None, Query(max_length=2048)] = None,
    tune_count: bool = False,
    with_tag: bool = False,
) -> list[dict[str, Any]]:
    """Harbor's `q` keys: `cve_id` (a CVE or advisory id, or `{a b}`), `cvss_score_v3` (a range,
    `[7~10]`), `severity` (Critical, High, Medium, Low, Negligible, Unknown), `status`
    (`fixed`: a fixed version is known; `affected`: none is), `repository_name`, `project_id`,
    `package` (exact, or `~text`), `tag` and `digest` (an index's reach its children's
    findings). With `tune_count`, a total over 1,000 is sent as -1 instead of counted."""
    page, project_ids = await scanning(request).list_vulnerabilities(who, q, paging, tune_count, with_tag)
    paged(request, response, page, paging)
    if tune_count and page.total > TUNED_COUNT_LIMIT:
        response.headers["X-Total-Count"] = "-1"
    return [_vulnerability_item(item, project_ids, with_tag) for item in page.items]


def _vulnerability_item(item: HubFinding, project_ids: dict[str, int], with_tag: bool) -> dict[str, Any]:
    finding = item.finding
    document = without_none(
        {
            "project_id": project_ids.get(item.repository.split("/", 1)[0]),
            "repository_name": item.repository,
            "digest": item.digest,
            "cve_id": finding.vulnerability_id,
            "severity": Severity(finding.severity).label,
            "status": "fixed" if finding.fixed_version else "affected",
            "cvss_v3_score": finding.cvss_score,
            "package": finding.package,
            "version": finding.version,
            "fixed_version": finding.fixed_version,
            "desc": finding.description,
            "links": list(finding.links),
        }
    )
    if with_tag:
        document["tags"] = list(item.tags)
    return document
