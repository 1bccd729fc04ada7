"""The client side of Harbor's pluggable scanner adapter API: Portside hands an image to
an external scanner (Trivy's adapter, Clair's, ...) and reads back its report, as Harbor does.
`client` speaks HTTP, `wire` the API's JSON, `errors` what can fail."""

from portside.scan.adapter.client import AdapterClient
from portside.scan.adapter.errors import (
    AdapterError,
    AdapterProtocolError,
    AdapterRejected,
    AdapterUnreachable,
    ScanNotFound,
    ScanTimedOut,
)
from portside.scan.adapter.wire import (
    HARBOR_VULNERABILITY_REPORT,
    SBOM_REPORT,
    VULNERABILITY_REPORT,
    Capability,
    Pending,
    SbomReport,
    ScannerInfo,
    ScannerMetadata,
    ScanRequest,
    Vulnerability,
    VulnerabilityReport,
)

__all__ = [
    "HARBOR_VULNERABILITY_REPORT",
    "SBOM_REPORT",
    "VULNERABILITY_REPORT",
    "AdapterClient",
    "AdapterError",
    "AdapterProtocolError",
    "AdapterRejected",
    "AdapterUnreachable",
    "Capability",
    "Pending",
    "SbomReport",
    "ScanNotFound",
    "ScanRequest",
    "ScanTimedOut",
    "ScannerInfo",
    "ScannerMetadata",
    "Vulnerability",
    "VulnerabilityReport",
]
