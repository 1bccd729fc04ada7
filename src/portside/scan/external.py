"""Scanning with an external scanner adapter: the artifact is handed to the adapter (which
pulls it from Portside with a short-lived token) and its vulnerability report is turned
into the findings a local scan stores, so reports, summaries and the cross-artifact
questions read adapters' results as they read the built-in scanner's.

Only the adapter's side lives here; choosing the scanner and storing the result is the
scan job's."""

from __future__ import annotations

from dataclasses import dataclass

from portside.meta.scans import StoredFinding
from portside.scan.adapter import (
    VULNERABILITY_REPORT,
    AdapterClient,
    ScanRequest,
    VulnerabilityReport,
)

__all__ = ["ExternalScanResult", "findings_from_report", "scan_with_adapter"]


@dataclass(frozen=True, slots=True)
class ExternalScanResult:
    scanner_name: str
    scanner_vendor: str
    scanner_version: str
    findings: list[StoredFinding]


def findings_from_report(report: VulnerabilityReport, source: str) -> list[StoredFinding]:
    """The adapter's vulnerabilities as stored findings. Adapters name no ecosystem, path
    or layer, so those stay empty; `source` says which scanner found them."""
    return [
        StoredFinding(
            vulnerability_id=v.id,
            advisory_id=v.id,
            source=source,
            ecosystem="",
            package=v.package,
            version=v.version,
            purl="",
            path="",
            layer="",
            fixed_version=v.fix_version or None,
            severity=int(v.severity),
            cvss_score=v.cvss_score_v3,
            cvss_vector=v.cvss_vector_v3,
            description=v.description,
            cwe_ids=v.cwe_ids,
            links=v.links,
        )
        for v in report.vulnerabilities
    ]


async def scan_with_adapter(
    client: AdapterClient, request: ScanRequest, source: str, timeout: float = 600.0
) -> ExternalScanResult:
    """Submit `request`, wait for the vulnerability report, convert it. Failures are the
    client's `AdapterError`s (unreachable, rejected, timed out), for the job to log."""
    report = await client.scan_and_wait(request, VULNERABILITY_REPORT, timeout=timeout)
    assert isinstance(report, VulnerabilityReport)
    scanner = report.scanner
    return ExternalScanResult(
        scanner.name if scanner else source,
        scanner.vendor if scanner else "",
        scanner.version if scanner else "",
        findings_from_report(report, source),
    )
