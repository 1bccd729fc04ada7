"""Pages: an artifact's vulnerabilities and its SBOM, the scans started from them, and what
the other pages show of scanning (a severity badge per artifact of a list).

The Vulnerabilities tab is the newest report of the artifact: a histogram of its findings
by severity, the findings themselves (filtered by severity and to the fixable ones, by a
plain GET form that htmx sends as one changes it), the same rows as CSV, and how current
the vulnerability database is. The SBOM tab lists the packages of the SBOM referrer the
scanner stored, and serves both documents, SPDX and CycloneDX, as they are stored.

Everything is read with the visitor's principal through the API's scanning service, so
its checks hold: a stranger to a private project gets the not-found page a missing
artifact gets, a guest reads reports but is offered no scan, and the service decides
each scan started from here as it decides the API's.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from portside.errors import BadRequest, Conflict, NotFound, PreconditionFailed, RegistryError
from portside.meta.scans import ACTIVE_SCAN_STATUSES, ScanReport, StoredFinding
from portside.mgmt.artifacts import ArtifactDetail, Referrer, repository_path
from portside.mgmt.scanning import ScanApiService
from portside.scan.model import Severity
from portside.scan.service import CYCLONEDX_JSON, SPDX_JSON
from portside.scan.vulndb.status import DatabaseStatus
from portside.ui.render import page, read_form, redirect
from portside.ui.views import artifacts, common
from portside.ui.visitor import Visitor, check_csrf, management, signed_in_user, visitor

__all__ = [
    "SEVERITIES",
    "SBOM_FORMATS",
    "Filters",
    "badges",
    "first_link",
    "scanning",
    "vulnerabilities_page",
    "vulnerabilities_csv",
    "sbom_page",
    "sbom_download",
    "scan_now",
]

# Worst first, as the histogram and the severity filter list them.
SEVERITIES = tuple(sorted(Severity, reverse=True))
# The URL's name of each SBOM format: (media type, file suffix, title).
SBOM_FORMATS: Mapping[str, tuple[str, str, str]] = {
    "spdx": (SPDX_JSON, "spdx.json", "SPDX 2.3"),
    "cyclonedx": (CYCLONEDX_JSON, "cdx.json", "CycloneDX 1.6"),
}
CSV_COLUMNS = ("Vulnerability", "Package", "Installed version", "Fixed version", "Severity", "CVSS score", "Link")
_SCAN_TYPES = {"vulnerability": "vulnerabilities", "sbom": "sbom"}  # scan type → the tab it is started from
# A spreadsheet takes a cell starting with one of these as a formula: such cells are
# written with a leading apostrophe, so an advisory's text cannot run in someone's sheet.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_CYCLONEDX_LAYER = "portside:layer:digest"
_CYCLONEDX_ECOSYSTEM = "portside:package:ecosystem"


def scanning(request: Request) -> ScanApiService:
    found = management(request).scans
    if found is None:
        raise NotFound("scanning is not available on this server")
    return found


# --- what the visitor asked to see -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filters:
    severity: Severity | None
    fixable: bool

    @classmethod
    def of(cls, request: Request) -> Filters:
        chosen = common.query_text(request, "severity").capitalize()
        severity = next((s for s in SEVERITIES if s.label == chosen), None)
        return cls(severity, common.query_text(request, "fixable") in ("on", "true", "1"))

    def keep(self, finding: StoredFinding) -> bool:
        if self.severity is not None and finding.severity != self.severity:
            return False
        return not self.fixable or bool(finding.fixed_version)

    @property
    def query(self) -> str:
        """The filters as a query string (the CSV link keeps them)."""
        params = {}
        if self.severity is not None:
            params["severity"] = self.severity.label
        if self.fixable:
            params["fixable"] = "on"
        return urlencode(params)


def first_link(links: Sequence[str]) -> str:
    """The first reference that is a web page (an advisory's links are data, not trusted)."""
    return next((link for link in links if link.startswith(("https://", "http://"))), "")


def _row(finding: StoredFinding) -> dict[str, Any]:
    return {
        "id": finding.vulnerability_id,
        "link": first_link(finding.links),
        "package": finding.package,
        "version": finding.version,
        "fixed": finding.fixed_version or "",
        "severity": Severity(finding.severity).label,
        "cvss": f"{finding.cvss_score:.1f}" if finding.cvss_score is not None else "",
        "purl": finding.purl,
        "layer": finding.layer,
        "short_layer": artifacts.short_digest(finding.layer) if finding.layer else "",
        "description": finding.description,
    }


def finding_rows(findings: Sequence[StoredFinding], filters: Filters) -> list[dict[str, Any]]:
    """The findings the filters keep, worst first, then by CVSS score, then by id."""
    kept = [f for f in findings if filters.keep(f)]
    kept.sort(key=lambda f: (-f.severity, -(f.cvss_score or 0.0), f.vulnerability_id, f.package))
    return [_row(f) for f in kept]


def histogram(findings: Sequence[StoredFinding]) -> list[dict[str, Any]]:
    counts = {s: 0 for s in SEVERITIES}
    for finding in findings:
        counts[Severity(finding.severity)] += 1
    return [{"label": s.label, "key": s.label.lower(), "count": counts[s]} for s in SEVERITIES]


def _state(report: ScanReport | None) -> str:
    """never, scanning, failed, stopped or done: what the tab says before any finding."""
    if report is None:
        return "never"
    if report.status in ACTIVE_SCAN_STATUSES:
        return "scanning"
    return {"Success": "done", "Stopped": "stopped"}.get(report.status, "failed")


def database_facts(status: DatabaseStatus | None) -> dict[str, Any]:
    """How current the vulnerability database is, as every report states it."""
    if status is None or not status.sources:
        return {"imported": False, "stale": True, "updated_at": None, "sources": [], "records": 0}
    return {
        "imported": True,
        "stale": status.stale,
        "updated_at": status.updated_at,
        "max_age_days": status.max_age_seconds / 86400,
        "generation": status.generation,
        "records": status.record_count,
        "sources": status.sources,
    }


# --- the pages ---------------------------------------------------------------------------


async def _artifact(request: Request, who: Visitor, repository: str, reference: str) -> dict[str, Any]:
    """The artifact's heading and tabs (the artifact page's own check: the stranger to a
    private project is told it is not found), and what the visitor may start."""
    name = request.path_params["name"]
    detail: ArtifactDetail = await management(request).artifacts.detail(
        who.principal, name, repository, reference, tag_limit=0
    )
    project, info = detail.project, detail.view.info
    full = info.repository_name
    url = artifacts.artifact_url(project.name, full, info.digest)
    held = await common.permissions(request, who, f"/project/{project.project_id}")
    return {
        "detail": detail,
        "project": project,
        "project_url": common.project_url(project.name),
        "repository_url": common.repository_url(project.name, full),
        "repository": full,
        "relative": full.removeprefix(project.name + "/"),
        "info": info,
        "url": url,
        "short": artifacts.short_digest(info.digest),
        "kind": artifacts.kind_of(info.manifest_media_type, info.artifact_type, info.config_media_type),
        "may_scan": ("scan", "create") in held,
        "errors": {},
    }


async def _vulnerabilities_context(request: Request, who: Visitor, repository: str, reference: str) -> dict[str, Any]:
    scans = scanning(request)
    context = await _artifact(request, who, repository, reference)
    name = request.path_params["name"]
    report, findings, _ = await scans.vulnerabilities(who.principal, name, repository, context["info"].digest)
    filters = Filters.of(request)
    rows = finding_rows(findings, filters)
    tab_url = context["url"] + "/vulnerabilities"
    context.update(
        {
            "tab": "vulnerabilities",
            "tab_url": tab_url,
            "csv_url": tab_url + ".csv" + (f"?{filters.query}" if filters.query else ""),
            "report": report,
            "state": _state(report),
            "histogram": histogram(findings),
            "total": len(findings),
            "fixable_total": sum(1 for f in findings if f.fixed_version),
            "rows": rows,
            "filters": filters,
            "severities": [s.label for s in SEVERITIES],
            "database": database_facts(await scans.database_status()),
        }
    )
    return context


async def vulnerabilities_page(request: Request, repository: str, reference: str) -> Response:
    who = await visitor(request)
    context = await _vulnerabilities_context(request, who, repository, reference)
    return await page(request, "scans/vulnerabilities.html", context)


def _file_stem(context: Mapping[str, Any]) -> str:
    """A download's name: the repository's last part and the digest's first hex digits
    (characters a Content-Disposition filename holds without quoting)."""
    name = "".join(
        c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in context["relative"].rsplit("/", 1)[-1]
    )
    return f"{name}-{context['info'].digest.partition(':')[2][:12]}"


def _cell(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


async def vulnerabilities_csv(request: Request, repository: str, reference: str) -> Response:
    """The rows of the Vulnerabilities tab, filtered as it is, as CSV."""
    who = await visitor(request)
    context = await _vulnerabilities_context(request, who, repository, reference)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in context["rows"]:
        cells = (row["id"], row["package"], row["version"], row["fixed"], row["severity"], row["cvss"], row["link"])
        writer.writerow([_cell(c) for c in cells])
    filename = f"{_file_stem(context)}-vulnerabilities.csv"
    return Response(
        out.getvalue().encode(),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )


def _sbom_referrers(referrers: Sequence[Referrer]) -> dict[str, str]:
    """The newest referrer of each SBOM format among the artifact's own: format → digest."""
    found: dict[str, tuple[str, str]] = {}
    for referrer in referrers:
        d = referrer.descriptor
        for key, (media_type, _, _) in SBOM_FORMATS.items():
            if d.artifact_type != media_type:
                continue
            created = (d.annotations or {}).get("org.opencontainers.image.created", "")
            if key not in found or created > found[key][0]:
                found[key] = (created, str(d.digest))
    return {key: digest for key, (_, digest) in found.items()}


def _property(entry: Mapping[str, Any], name: str) -> str:
    for prop in entry.get("properties") or []:
        if isinstance(prop, dict) and prop.get("name") == name:
            return str(prop.get("value", ""))
    return ""


def cyclonedx_packages(document: Mapping[str, Any]) -> list[dict[str, str]]:
    """The libraries a CycloneDX BOM lists, with the layer Portside's properties name."""
    rows = []
    for component in document.get("components") or []:
        if not isinstance(component, dict) or component.get("type") != "library":
            continue
        group = str(component.get("group") or "")
        rows.append(
            {
                "name": f"{group}:{component.get('name', '')}" if group else str(component.get("name", "")),
                "version": str(component.get("version") or ""),
                "ecosystem": _property(component, _CYCLONEDX_ECOSYSTEM),
                "purl": str(component.get("purl") or ""),
                "layer": _property(component, _CYCLONEDX_LAYER),
            }
        )
    return rows


def spdx_packages(document: Mapping[str, Any]) -> list[dict[str, str]]:
    """The libraries an SPDX document lists (the image and its OS are packages of it too,
    told apart by their purpose)."""
    rows = []
    for package in document.get("packages") or []:
        if not isinstance(package, dict) or package.get("primaryPackagePurpose") in ("CONTAINER", "OPERATING_SYSTEM"):
            continue
        purl = next(
            (
                str(ref.get("referenceLocator", ""))
                for ref in package.get("externalRefs") or []
                if isinstance(ref, dict) and ref.get("referenceType") == "purl"
            ),
            "",
        )
        source = str(package.get("sourceInfo") or "")
        layer = source.removeprefix("layer ").split(",", 1)[0] if source.startswith("layer ") else ""
        rows.append(
            {
                "name": str(package.get("name", "")),
                "version": str(package.get("versionInfo") or ""),
                "ecosystem": purl.removeprefix("pkg:").split("/", 1)[0] if purl else "",
                "purl": purl,
                "layer": layer,
            }
        )
    return rows


def _json_document(body: bytes) -> Mapping[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


async def _sbom_context(request: Request, who: Visitor, repository: str, reference: str) -> dict[str, Any]:
    scans = scanning(request)
    context = await _artifact(request, who, repository, reference)
    name = request.path_params["name"]
    info = context["info"]
    # The artifact has been read (its page's check); its documents are read through the
    # service, which checks what reading a report needs.
    sbom_reports = await scans.overviews(info.repository_name, [info.digest], ("sbom",))
    sbom_report = sbom_reports.get((info.digest, "sbom"))
    documents = _sbom_referrers(context["detail"].referrers)
    packages: list[dict[str, str]] = []
    for key, reader in (("cyclonedx", cyclonedx_packages), ("spdx", spdx_packages)):
        if key in documents:
            _, body = await scans.sbom(who.principal, name, repository, documents[key])
            packages = reader(_json_document(body))
            break
    packages.sort(key=lambda p: (p["ecosystem"], p["name"].lower(), p["version"]))
    for row in packages:
        row["short_layer"] = artifacts.short_digest(row["layer"]) if row["layer"] else ""
    context.update(
        {
            "tab": "sbom",
            "tab_url": context["url"] + "/sbom",
            "report": sbom_report,
            "state": _state(sbom_report) if sbom_report is not None or not documents else "done",
            "downloads": [
                (key, title, f"{context['url']}/sbom/{key}")
                for key, (_, _, title) in SBOM_FORMATS.items()
                if key in documents
            ],
            "packages": packages,
        }
    )
    return context


async def sbom_page(request: Request, repository: str, reference: str) -> Response:
    who = await visitor(request)
    return await page(request, "scans/sbom.html", await _sbom_context(request, who, repository, reference))


async def sbom_download(request: Request, repository: str, reference: str, format_key: str) -> Response:
    """The SBOM referrer's document of one format, its bytes as stored, as a download."""
    if format_key not in SBOM_FORMATS:
        raise NotFound(f"no SBOM format {format_key[:40]}")
    who = await visitor(request)
    scans = scanning(request)
    context = await _artifact(request, who, repository, reference)
    digest = _sbom_referrers(context["detail"].referrers).get(format_key)
    if digest is None:
        raise NotFound(f"{context['repository']}@{context['short']} has no {SBOM_FORMATS[format_key][2]} SBOM")
    media_type, body = await scans.sbom(who.principal, request.path_params["name"], repository, digest)
    suffix = SBOM_FORMATS[format_key][1]
    filename = f"{_file_stem(context)}.{suffix}"
    return Response(body, media_type=media_type, headers={"content-disposition": f'attachment; filename="{filename}"'})


async def scan_now(request: Request, repository: str, digest: str) -> Response:
    """Start a scan (`scan_type` vulnerability or sbom) from its tab; the tab again, saying
    why, when the service refuses."""
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    scan_type = form.get("scan_type", "vulnerability")
    if scan_type not in _SCAN_TYPES:
        raise BadRequest(f"scan_type must be one of {', '.join(_SCAN_TYPES)}")
    name = request.path_params["name"]
    try:
        await scanning(request).scan(who.principal, name, repository, digest, scan_type)
    except (Conflict, PreconditionFailed) as error:
        return await _refused(request, who, repository, digest, scan_type, error)
    except RegistryError as error:
        if error.status != 422:  # nothing in it can be scanned: said on the tab
            raise
        return await _refused(request, who, repository, digest, scan_type, error)
    url = artifacts.artifact_url(name, repository_path(name, repository), digest)
    notice = "Scan started." if scan_type == "vulnerability" else "SBOM generation started."
    return redirect(f"{url}/{_SCAN_TYPES[scan_type]}", notice=notice)


async def _refused(
    request: Request, who: Visitor, repository: str, digest: str, scan_type: str, error: RegistryError
) -> Response:
    if scan_type == "sbom":
        context = await _sbom_context(request, who, repository, digest)
        template = "scans/sbom.html"
    else:
        context = await _vulnerabilities_context(request, who, repository, digest)
        template = "scans/vulnerabilities.html"
    context["errors"] = {"scan": error.text}
    return await page(request, template, context, status=error.status)


# --- what lists show ---------------------------------------------------------------------


async def badges(request: Request, repository: str, digests: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per digest of a list the caller has read: its newest report's worst severity and
    count (Success), or that it is being scanned; unscanned digests have none. One query."""
    scans = management(request).scans
    if scans is None or not digests:
        return {}
    reports = await scans.overviews(repository, digests, ("vulnerability", "sbom"))
    found: dict[str, dict[str, Any]] = {}
    for digest in digests:
        report = reports.get((digest, "vulnerability")) or reports.get((digest, "sbom"))
        if report is None:
            continue
        if report.status in ACTIVE_SCAN_STATUSES:
            found[digest] = {"state": "scanning", "label": "Scanning", "key": "scanning", "total": 0}
        elif report.status == "Success" and report.summary is not None:
            summary = report.summary
            label = Severity(summary.severity).label if summary.total else "None"
            found[digest] = {"state": "done", "label": label, "key": label.lower(), "total": summary.total}
    return found
