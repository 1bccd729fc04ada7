"""The values of Harbor's pluggable scanner adapter API (v1.2) and how they read from and
write to its JSON: metadata, scan requests, and the two vulnerability report types Harbor
renders, plus the SBOM report. Reading is strict about shape (a wrong type is the adapter's
fault and says so) and lenient about absence (every report field is optional in the API)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from portside.scan.adapter.errors import AdapterProtocolError, RequestRefused
from portside.scan.model import Severity

__all__ = [
    "ERROR_MIME",
    "HARBOR_VULNERABILITY_REPORT",
    "RAW_REPORT",
    "SBOM_MEDIA_TYPES",
    "METADATA_MIMES",
    "SBOM_REPORT",
    "SCAN_REQUEST_MIME",
    "SCAN_RESPONSE_MIME",
    "VULNERABILITY_REPORT",
    "VULNERABILITY_REPORT_MIMES",
    "Capability",
    "Pending",
    "SbomReport",
    "ScanRequest",
    "ScannerInfo",
    "ScannerMetadata",
    "Vulnerability",
    "VulnerabilityReport",
    "error_json",
    "metadata_json",
    "read_scan_request",
    "report_mime",
    "sbom_report_json",
    "vulnerability_report_json",
]

METADATA_MIMES = (
    "application/vnd.scanner.adapter.metadata+json; version=1.1",
    "application/vnd.scanner.adapter.metadata+json; version=1.0",
)
SCAN_REQUEST_MIME = "application/vnd.scanner.adapter.scan.request+json; version=1.1"
SCAN_RESPONSE_MIME = "application/vnd.scanner.adapter.scan.response+json; version=1.0"
ERROR_MIME = "application/vnd.scanner.adapter.error+json; version=1.0"
VULNERABILITY_REPORT = "application/vnd.security.vulnerability.report; version=1.1"
HARBOR_VULNERABILITY_REPORT = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"
VULNERABILITY_REPORT_MIMES = (VULNERABILITY_REPORT, HARBOR_VULNERABILITY_REPORT)
SBOM_REPORT = "application/vnd.security.sbom.report+json; version=1.0"
# A report type of the API that Portside does not produce (the scanner's own format).
RAW_REPORT = "application/vnd.scanner.adapter.vuln.report.raw"
SBOM_MEDIA_TYPES = ("application/spdx+json", "application/vnd.cyclonedx+json")
CAPABILITY_TYPES = ("vulnerability", "sbom")


@dataclass(frozen=True, slots=True)
class ScannerInfo:
    name: str
    vendor: str
    version: str


@dataclass(frozen=True, slots=True)
class Capability:
    type: str  # vulnerability or sbom; the API says an absent type means vulnerability
    consumes: tuple[str, ...]
    produces: tuple[str, ...]
    sbom_media_types: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ScannerMetadata:
    scanner: ScannerInfo
    capabilities: tuple[Capability, ...]
    properties: dict[str, str] = field(default_factory=dict)

    def produces(self, report_mime: str) -> bool:
        return any(report_mime in capability.produces for capability in self.capabilities)


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """What the adapter needs to pull one artifact: the registry's base URL and the
    Authorization header to send it, and the artifact by repository and digest."""

    registry_url: str
    repository: str
    digest: str
    mime_type: str = "application/vnd.oci.image.manifest.v1+json"
    tag: str | None = None
    authorization: str | None = None
    # Restricts the adapter to these (capability type, report MIME types); empty: all of them.
    capabilities: tuple[tuple[str, tuple[str, ...]], ...] = ()
    sbom_media_types: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        registry: dict[str, Any] = {"url": self.registry_url}
        if self.authorization:
            registry["authorization"] = self.authorization
        artifact: dict[str, Any] = {"repository": self.repository, "digest": self.digest, "mime_type": self.mime_type}
        if self.tag:
            artifact["tag"] = self.tag
        body: dict[str, Any] = {"registry": registry, "artifact": artifact}
        if self.capabilities:
            enabled = []
            for kind, mimes in self.capabilities:
                entry: dict[str, Any] = {"type": kind}
                if mimes:
                    entry["produces_mime_types"] = list(mimes)
                if kind == "sbom" and self.sbom_media_types:
                    entry["parameters"] = {"sbom_media_types": list(self.sbom_media_types)}
                enabled.append(entry)
            body["enabled_capabilities"] = enabled
        return body


@dataclass(frozen=True, slots=True)
class Pending:
    """The report is still being generated; ask again after `retry_after` seconds."""

    retry_after: float


@dataclass(frozen=True, slots=True)
class Vulnerability:
    id: str
    package: str
    version: str
    fix_version: str | None
    severity: Severity
    description: str = ""
    links: tuple[str, ...] = ()
    cvss_score_v3: float | None = None
    cvss_vector_v3: str | None = None
    cwe_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class VulnerabilityReport:
    mime_type: str
    generated_at: dt.datetime | None
    scanner: ScannerInfo | None
    severity: Severity
    vulnerabilities: tuple[Vulnerability, ...]


@dataclass(frozen=True, slots=True)
class SbomReport:
    generated_at: dt.datetime | None
    scanner: ScannerInfo | None
    media_type: str
    sbom: dict[str, Any]


# Reading


def _expect(value: Any, kind: type | tuple[type, ...], where: str) -> Any:
    if not isinstance(value, kind):
        raise AdapterProtocolError(f"{where}: expected {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in kind) if isinstance(kind, tuple) else kind.__name__


def _text(body: dict[str, Any], key: str, where: str, default: str = "") -> str:
    value = body.get(key)
    return default if value is None else str(_expect(value, str, f"{where}.{key}"))


def _texts(body: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _expect(body.get(key) or [], list, f"{where}.{key}")
    return tuple(_expect(item, str, f"{where}.{key}[]") for item in items)


def _time(body: dict[str, Any], key: str, where: str) -> dt.datetime | None:
    text = _text(body, key, where)
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as error:
        raise AdapterProtocolError(f"{where}.{key}: not a date-time: {text!r}") from error


def _number(body: dict[str, Any], key: str, where: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool):
        raise AdapterProtocolError(f"{where}.{key}: expected a number")
    return float(_expect(value, (int, float), f"{where}.{key}"))


def read_scanner(value: Any, where: str) -> ScannerInfo:
    body = _expect(value, dict, where)
    return ScannerInfo(_text(body, "name", where), _text(body, "vendor", where), _text(body, "version", where))


def read_metadata(value: Any) -> ScannerMetadata:
    body = _expect(value, dict, "metadata")
    if "scanner" not in body or "capabilities" not in body:
        raise AdapterProtocolError("metadata: scanner and capabilities are required")
    capabilities = []
    for index, item in enumerate(_expect(body["capabilities"], list, "metadata.capabilities")):
        where = f"metadata.capabilities[{index}]"
        capability = _expect(item, dict, where)
        attributes = _expect(capability.get("additional_attributes") or {}, dict, f"{where}.additional_attributes")
        capabilities.append(
            Capability(
                type=_text(capability, "type", where, default="vulnerability"),
                consumes=_texts(capability, "consumes_mime_types", where),
                produces=_texts(capability, "produces_mime_types", where),
                sbom_media_types=_texts(attributes, "sbom_media_types", f"{where}.additional_attributes"),
            )
        )
    properties = _expect(body.get("properties") or {}, dict, "metadata.properties")
    return ScannerMetadata(
        scanner=read_scanner(body["scanner"], "metadata.scanner"),
        capabilities=tuple(capabilities),
        properties={str(key): str(value) for key, value in properties.items()},
    )


def read_scan_id(value: Any) -> str:
    body = _expect(value, dict, "scan response")
    scan_id = _text(body, "id", "scan response")
    if not scan_id:
        raise AdapterProtocolError("scan response: no id")
    return scan_id


def read_vulnerability_report(value: Any, mime_type: str) -> VulnerabilityReport:
    body = _expect(value, dict, "report")
    items = _expect(body.get("vulnerabilities") or [], list, "report.vulnerabilities")
    scanner = body.get("scanner")
    return VulnerabilityReport(
        mime_type=mime_type,
        generated_at=_time(body, "generated_at", "report"),
        scanner=None if scanner is None else read_scanner(scanner, "report.scanner"),
        severity=Severity.of(_text(body, "severity", "report")),
        vulnerabilities=tuple(_vulnerability(item, f"report.vulnerabilities[{i}]") for i, item in enumerate(items)),
    )


def _vulnerability(value: Any, where: str) -> Vulnerability:
    body = _expect(value, dict, where)
    cvss = _expect(body.get("preferred_cvss") or {}, dict, f"{where}.preferred_cvss")
    return Vulnerability(
        id=_text(body, "id", where),
        package=_text(body, "package", where),
        version=_text(body, "version", where),
        fix_version=_text(body, "fix_version", where) or None,
        severity=Severity.of(_text(body, "severity", where)),
        description=_text(body, "description", where),
        links=_texts(body, "links", where),
        cvss_score_v3=_number(cvss, "score_v3", f"{where}.preferred_cvss"),
        cvss_vector_v3=_text(cvss, "vector_v3", f"{where}.preferred_cvss") or None,
        cwe_ids=_texts(body, "cwe_ids", where),
    )


def read_sbom_report(value: Any) -> SbomReport:
    body = _expect(value, dict, "sbom report")
    scanner = body.get("scanner")
    return SbomReport(
        generated_at=_time(body, "generated_at", "sbom report"),
        scanner=None if scanner is None else read_scanner(scanner, "sbom report.scanner"),
        media_type=_text(body, "media_type", "sbom report"),
        sbom=_expect(body.get("sbom") or {}, dict, "sbom report.sbom"),
    )


# The serving side: reading a scan request (the API's 400 for wrong JSON or types, 422 for
# invalid fields), writing metadata, reports and errors.


def _refuse(status: int, message: str) -> RequestRefused:
    return RequestRefused(status, message)


def _field(body: dict[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = body.get(key)
    if value is None:
        if required:
            raise _refuse(422, f"{where}.{key} is required")
        return ""
    if not isinstance(value, str):
        raise _refuse(400, f"{where}.{key}: expected a string, got {type(value).__name__}")
    if required and not value.strip():
        raise _refuse(422, f"{where}.{key} is required")
    return value


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _refuse(400, f"{where}: expected an object, got {type(value).__name__}")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _refuse(400, f"{where}: expected an array of strings")
    return tuple(value)


def read_scan_request(value: Any) -> ScanRequest:
    """A ScanRequest from the JSON Harbor posts; `RequestRefused` (400 or 422) says what is
    wrong with it. Values are checked for shape here; whether Portside can scan the
    artifact is the service's question."""
    body = _object(value, "scan request")
    for key in ("registry", "artifact"):
        if key not in body or body[key] is None:
            raise _refuse(422, f"{key} is required")
    registry = _object(body["registry"], "registry")
    artifact = _object(body["artifact"], "artifact")
    url = _field(registry, "url", "registry", required=True).strip()
    scheme, _, rest = url.partition("://")
    if scheme.lower() not in ("http", "https") or not rest or any(c.isspace() for c in url):
        raise _refuse(422, f"registry.url is not an http(s) URL: {url!r}")
    capabilities: list[tuple[str, tuple[str, ...]]] = []
    sbom_media_types: tuple[str, ...] = ()
    enabled = body.get("enabled_capabilities")
    if enabled is not None:
        if not isinstance(enabled, list):
            raise _refuse(400, "enabled_capabilities: expected an array")
        for index, item in enumerate(enabled):
            where = f"enabled_capabilities[{index}]"
            entry = _object(item, where)
            kind = _field(entry, "type", where, required=True)
            if kind not in CAPABILITY_TYPES:
                raise _refuse(422, f"{where}.type: not a capability type: {kind!r}")
            produces = _strings(entry.get("produces_mime_types"), f"{where}.produces_mime_types")
            capabilities.append((kind, produces))
            parameters = entry.get("parameters")
            if kind == "sbom" and parameters is not None:
                asked = _strings(_object(parameters, f"{where}.parameters").get("sbom_media_types"), where)
                unknown = [media for media in asked if media not in SBOM_MEDIA_TYPES]
                if unknown:
                    raise _refuse(422, f"{where}.parameters.sbom_media_types: unknown {unknown[0]!r}")
                sbom_media_types = asked
    return ScanRequest(
        registry_url=url.rstrip("/"),
        repository=_field(artifact, "repository", "artifact", required=True),
        digest=_field(artifact, "digest", "artifact", required=True),
        mime_type=_field(artifact, "mime_type", "artifact") or "application/vnd.oci.image.manifest.v1+json",
        tag=_field(artifact, "tag", "artifact") or None,
        authorization=_field(registry, "authorization", "registry") or None,
        capabilities=tuple(capabilities),
        sbom_media_types=sbom_media_types,
    )


def _normal(mime: str) -> str:
    """A MIME type compared as the API's are: case and spaces around `;` aside."""
    return ";".join(part.strip() for part in mime.lower().split(";"))


_REPORTS = {_normal(mime): mime for mime in (*VULNERABILITY_REPORT_MIMES, SBOM_REPORT, RAW_REPORT)}


def report_mime(accept: str | None) -> str | None:
    """The report type an Accept header asks for: the first of its types the API names
    (versions included; a missing Accept or `*/*` means the vulnerability report). None:
    it names none."""
    if accept is None or not accept.strip():
        return VULNERABILITY_REPORT
    for item in accept.split(","):
        # A q= parameter is the header's, not the type's.
        parts = [part for part in item.split(";") if not part.strip().lower().startswith("q=")]
        candidate = _normal(";".join(parts))
        if candidate in ("*/*", "application/*"):
            return VULNERABILITY_REPORT
        if candidate in _REPORTS:
            return _REPORTS[candidate]
    return None


def _scanner_json(scanner: ScannerInfo) -> dict[str, str]:
    return {"name": scanner.name, "vendor": scanner.vendor, "version": scanner.version}


def metadata_json(metadata: ScannerMetadata) -> dict[str, Any]:
    capabilities = []
    for capability in metadata.capabilities:
        entry: dict[str, Any] = {
            "type": capability.type,
            "consumes_mime_types": list(capability.consumes),
            "produces_mime_types": list(capability.produces),
        }
        if capability.sbom_media_types:
            entry["additional_attributes"] = {"sbom_media_types": list(capability.sbom_media_types)}
        capabilities.append(entry)
    return {
        "scanner": _scanner_json(metadata.scanner),
        "capabilities": capabilities,
        "properties": dict(metadata.properties),
    }


def _iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def artifact_json(request: ScanRequest) -> dict[str, str]:
    artifact = {"repository": request.repository, "digest": request.digest, "mime_type": request.mime_type}
    if request.tag:
        artifact["tag"] = request.tag
    return artifact


def vulnerability_report_json(
    request: ScanRequest,
    scanner: ScannerInfo,
    generated_at: dt.datetime,
    vulnerabilities: list[Vulnerability],
    vendor_attributes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The report body of both vulnerability report types (they share a schema);
    `vendor_attributes[i]` goes with `vulnerabilities[i]`."""
    items = []
    for index, v in enumerate(vulnerabilities):
        cvss: dict[str, Any] = {}
        if v.cvss_score_v3 is not None:
            cvss["score_v3"] = v.cvss_score_v3
        if v.cvss_vector_v3:
            cvss["vector_v3"] = v.cvss_vector_v3
        item: dict[str, Any] = {
            "id": v.id,
            "package": v.package,
            "version": v.version,
            "fix_version": v.fix_version or "",
            "severity": v.severity.label,
            "description": v.description,
            "links": list(v.links),
            "cwe_ids": list(v.cwe_ids),
        }
        if cvss:
            item["preferred_cvss"] = cvss
        if vendor_attributes is not None:
            item["vendor_attributes"] = vendor_attributes[index]
        items.append(item)
    worst = max((v.severity for v in vulnerabilities), default=Severity.UNKNOWN)
    return {
        "generated_at": _iso(generated_at),
        "artifact": artifact_json(request),
        "scanner": _scanner_json(scanner),
        "severity": worst.label,
        "vulnerabilities": items,
    }


def sbom_report_json(
    request: ScanRequest, scanner: ScannerInfo, generated_at: dt.datetime, media_type: str, sbom: dict[str, Any]
) -> dict[str, Any]:
    return {
        "generated_at": _iso(generated_at),
        "artifact": artifact_json(request),
        "scanner": _scanner_json(scanner),
        "media_type": media_type,
        "sbom": sbom,
    }


def error_json(message: str) -> dict[str, Any]:
    return {"error": {"message": message}}
