"""OSV records (https://ossf.github.io/osv-schema/): the `all.zip` export of an ecosystem
(or of all of them), a directory of `<ID>.json` files, or single files.

Each record becomes one `Advisory` of source `osv:<ecosystem>` (the first `affected[]`
entry's ecosystem, release included: `osv:PyPI`, `osv:Debian:12`), with one entry per
`affected[]` package. GIT ranges are dropped (nothing installed is a commit); the other
ranges are stored as they are, since the matcher reads OSV semantics itself. Withdrawn
records are kept and marked, so a later import sees them gone rather than never known.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from portside.scan.vulndb.cvss import base_score
from portside.scan.vulndb.records import (
    Advisory,
    AffectedPackage,
    Parsed,
    package_key,
    parse_time,
    split_ecosystem,
)

__all__ = ["group", "is_osv", "osv_advisory", "source_of"]

_COMPACT = (",", ":")


def is_osv(document: object) -> bool:
    return isinstance(document, dict) and isinstance(document.get("id"), str) and "modified" in document


def _strings(value: object) -> tuple[str, ...]:
    return tuple(item for item in value if isinstance(item, str)) if isinstance(value, list) else ()


def _entry(affected: Mapping[str, Any]) -> AffectedPackage | None:
    package = affected.get("package")
    if not isinstance(package, dict):
        return None
    ecosystem_text, name = package.get("ecosystem"), package.get("name")
    if not isinstance(ecosystem_text, str) or not isinstance(name, str):
        return None
    ecosystem, release = split_ecosystem(ecosystem_text)
    ranges = [
        {"type": r.get("type"), "events": r.get("events", [])}
        for r in affected.get("ranges", [])
        if isinstance(r, dict) and r.get("type") != "GIT" and isinstance(r.get("events", []), list)
    ]
    versions = list(_strings(affected.get("versions")))
    if not ranges and not versions:
        return None  # nothing an installed version could be in (GIT-only entries)
    fixed = next(
        (e["fixed"] for r in ranges for e in r["events"] if isinstance(e, dict) and isinstance(e.get("fixed"), str)),
        None,
    )
    # Distributions' OSV records (Ubuntu, Debian) give their urgency per package here.
    specific = affected.get("ecosystem_specific") or affected.get("database_specific") or {}
    severity = specific.get("urgency") or specific.get("severity") if isinstance(specific, dict) else None
    return AffectedPackage(
        ecosystem=ecosystem,
        package=package_key(ecosystem, name),
        release=release,
        ranges=json.dumps(ranges, separators=_COMPACT),
        versions=json.dumps(versions, separators=_COMPACT),
        fixed=fixed,
        severity=severity if isinstance(severity, str) else None,
    )


def _cvss(record: Mapping[str, Any]) -> tuple[str | None, float | None]:
    for wanted in ("CVSS_V3", "CVSS_V4", "CVSS_V2"):
        for severity in record.get("severity") or []:
            if isinstance(severity, dict) and severity.get("type") == wanted and isinstance(severity.get("score"), str):
                vector = severity["score"]
                return vector, base_score(vector)
    return None, None


def osv_advisory(record: Mapping[str, Any]) -> Advisory | None:
    """The advisory an OSV record describes; None when it names no package version."""
    entries = [entry for affected in record.get("affected") or [] if (entry := _entry(affected)) is not None]
    if not entries:
        return None
    specific = record.get("database_specific")
    specific = specific if isinstance(specific, dict) else {}
    vector, score = _cvss(record)
    severity = specific.get("severity")
    if not isinstance(severity, str):
        # Ubuntu's records put the distribution's priority among the scores.
        severity = next(
            (s.get("score") for s in record.get("severity") or [] if isinstance(s, dict) and s.get("type") == "Ubuntu"),
            None,
        )
    references = tuple(
        ref["url"]
        for ref in record.get("references") or []
        if isinstance(ref, dict) and isinstance(ref.get("url"), str)
    )
    return Advisory(
        id=str(record["id"]),
        affected=tuple(entries),
        aliases=_strings(record.get("aliases")) + _strings(record.get("upstream")),
        summary=str(record.get("summary") or ""),
        details=str(record.get("details") or ""),
        references=references,
        cvss_vector=vector,
        cvss_score=score,
        cwe_ids=_strings(specific.get("cwe_ids")),
        severity=severity if isinstance(severity, str) else None,
        modified=parse_time(record.get("modified")),
        withdrawn=bool(record.get("withdrawn")),
    )


def source_of(record: Mapping[str, Any]) -> str:
    for affected in record.get("affected") or []:
        ecosystem = (affected.get("package") or {}).get("ecosystem") if isinstance(affected, dict) else None
        if isinstance(ecosystem, str):
            return f"osv:{ecosystem}"
    return "osv:unknown"


def group(records: Iterable[Mapping[str, Any]], origin: str) -> list[Parsed]:
    """Records by source; records that name no package version are left out."""
    sources: dict[str, Parsed] = {}
    for record in records:
        advisory = osv_advisory(record)
        if advisory is None:
            continue
        name = source_of(record)
        sources.setdefault(name, Parsed(name, origin)).advisories.append(advisory)
    return list(sources.values())
