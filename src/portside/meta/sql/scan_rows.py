"""Rows of the scan tables read back as the model's values (shared by the scan stores)."""

from __future__ import annotations

import json
from typing import Any

from portside.meta.scans import ScannedBy, StoredFinding
from portside.meta.sql.schema import scan_findings

__all__ = ["FINDING_COLUMNS", "finding", "scanned_by"]

# A finding's columns less its row id and manifest digest (selected beside them as needed).
FINDING_COLUMNS = tuple(c for c in scan_findings.c if c.name not in ("id", "digest"))


def scanned_by(text: str | None) -> ScannedBy | None:
    if not text:
        return None
    fields = json.loads(text)
    return ScannedBy(str(fields["uuid"]), str(fields["name"]), str(fields["vendor"]), str(fields["version"]))


def finding(row: Any) -> StoredFinding:
    return StoredFinding(
        vulnerability_id=row.vulnerability_id,
        advisory_id=row.advisory_id,
        source=row.source,
        ecosystem=row.ecosystem,
        package=row.package,
        version=row.version,
        purl=row.purl,
        path=row.path,
        layer=row.layer,
        fixed_version=row.fixed_version,
        severity=row.severity,
        cvss_score=row.cvss_score,
        cvss_vector=row.cvss_vector,
        description=row.description,
        aliases=tuple(json.loads(row.aliases)),
        cwe_ids=tuple(json.loads(row.cwe_ids)),
        links=tuple(json.loads(row.links)),
    )
