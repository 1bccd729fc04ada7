"""Where the shared reference data lives: `../shared` beside the checkout (fixtures/vulndb,
specs/), used as it is."""

from __future__ import annotations

from pathlib import Path

from portside.meta.scans import StoredFinding

SHARED = Path(__file__).resolve().parents[3] / "shared"
if not SHARED.is_dir():
    SHARED = Path("/work/shared")

VULNDB_FIXTURES = SHARED / "fixtures" / "vulndb"
SPECS = SHARED / "specs"


def stored_finding(vulnerability_id: str, severity: int, fixed: str | None = None) -> StoredFinding:
    """A stored finding of requests 2.19.1 (the fixtures' vulnerable Python package)."""
    return StoredFinding(
        vulnerability_id=vulnerability_id,
        advisory_id=vulnerability_id,
        source="osv",
        ecosystem="PyPI",
        package="requests",
        version="2.19.1",
        purl="pkg:pypi/requests@2.19.1",
        path="/usr/lib/python3/dist-packages/requests-2.19.1.dist-info/METADATA",
        layer="sha256:" + "cd" * 32,
        fixed_version=fixed,
        severity=severity,
    )
