"""Debian security tracker data, in its two shapes.

The tracker's JSON export (https://security-tracker.debian.org/tracker/data/json):
source package → CVE → release (codename) → `status`, `fixed_version`, `urgency`. A
`fixed_version` of "0" means the release never had the bug; `open` and `undetermined`
entries have no fixed version and are kept, as affected with no fix. One advisory per
CVE, one entry per (source package, release); source `debian-tracker`.

The tracker's own list files (`data/CVE/list`, `data/DSA/list`) parsed one file per entry,
as aquasecurity's vuln-list-debian stores them: `Annotations` of `Type: package` with
`Release` (absent: unstable), `Package`, `Kind` and `Version`. An unstable line holds for
every release that has no line of its own (the tracker's rule), so it is stored with
release "" and the matcher lets a release's own line win. Kinds: `fixed` X → affected
below X; `unfixed`, `no-dsa`, `ignored`, `postponed`, `end-of-life`, `undetermined` →
affected, no fix; `not-affected` → not affected; `removed` (gone from unstable) is kept
as affected with no fix, since releases without a line still ship the package;
`[experimental]` lines are ignored. DSA entries name their CVEs (`xref`) and carry
per-release fixed versions; source `debian-tracker-list`.

Urgency `unimportant` (issues the security team treats as no security problem in Debian,
such as CVEs in unshipped code) is kept in both shapes and reported as Negligible, not
dropped: a Negligible finding is what Harbor's severity threshold already filters, and
dropping it at import would hide it from anyone who asks for everything.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portside.scan.vulndb.records import Advisory, AffectedPackage, Parsed, fixed_range

__all__ = ["TRACKER", "TRACKER_LIST", "is_tracker_export", "is_tracker_entry", "read_tracker_export", "TrackerList"]

TRACKER = "debian-tracker"
TRACKER_LIST = "debian-tracker-list"
_NO_FIX_KINDS = frozenset({"unfixed", "no-dsa", "ignored", "postponed", "end-of-life", "undetermined", "removed"})
_UNSTABLE = ("sid", "unstable")


def is_tracker_entry(document: object) -> bool:
    return isinstance(document, dict) and "Header" in document and "Annotations" in document


def is_tracker_export(document: object) -> bool:
    """Source package → CVE → {releases: …}: checked on the first package that has a CVE."""
    if not isinstance(document, dict) or not document:
        return False
    for cves in document.values():
        if not isinstance(cves, dict):
            return False
        for entry in cves.values():
            return isinstance(entry, dict) and isinstance(entry.get("releases"), dict)
    return False


def _urgency(text: object) -> str | None:
    if not isinstance(text, str) or text in ("not yet assigned", ""):
        return None
    return text.rstrip("*")  # `high**`: the urgency was set by the tracker, not by a DSA


def read_tracker_export(document: Mapping[str, Any], origin: str) -> Parsed:
    entries: dict[str, list[AffectedPackage]] = {}
    summaries: dict[str, str] = {}
    for package, cves in document.items():
        if not isinstance(cves, dict):
            continue
        for cve, facts in cves.items():
            if not isinstance(facts, dict) or not isinstance(facts.get("releases"), dict):
                continue
            summaries.setdefault(cve, str(facts.get("description") or ""))
            for release, state in facts["releases"].items():
                if not isinstance(state, dict):
                    continue
                fixed = state.get("fixed_version")
                fixed = fixed if isinstance(fixed, str) and fixed else None
                never = fixed == "0"
                if state.get("status") != "resolved":
                    fixed = None  # open or undetermined: no fix, whatever the field says
                entries.setdefault(cve, []).append(
                    AffectedPackage(
                        ecosystem="Debian",
                        package=package,
                        release=release,
                        ranges=fixed_range(None if never else fixed),
                        fixed=None if never else fixed,
                        severity=_urgency(state.get("urgency")),
                        not_affected=never,
                    )
                )
    parsed = Parsed(TRACKER, origin)
    parsed.advisories = [
        Advisory(id=cve, affected=tuple(found), summary=summaries.get(cve, "")) for cve, found in entries.items()
    ]
    return parsed


class TrackerList:
    """Accumulates vuln-list-debian CVE and DSA entries into one source."""

    def __init__(self, origin: str):
        self.parsed = Parsed(TRACKER_LIST, origin)

    def add(self, document: Mapping[str, Any], where: str) -> None:
        header = document.get("Header") or {}
        advisory_id = header.get("ID") if isinstance(header, dict) else None
        if not isinstance(advisory_id, str):
            self.parsed.skipped.append(f"{where}: no Header.ID")
            return
        aliases: list[str] = []
        found: list[AffectedPackage] = []
        for note in document.get("Annotations") or []:
            if not isinstance(note, dict):
                continue
            if note.get("Type") == "xref":
                aliases.extend(bug for bug in note.get("Bugs") or [] if isinstance(bug, str) and bug.startswith("CVE-"))
            if note.get("Type") != "package" or not isinstance(note.get("Package"), str):
                continue
            entry = self._entry(note)
            if entry is not None:
                found.append(entry)
        if not found:
            return
        description = str(header.get("Description") or "").strip()
        if description.startswith("[") and description.endswith("]"):
            description = description[1:-1]
        self.parsed.advisories.append(
            Advisory(id=advisory_id, affected=tuple(found), aliases=tuple(dict.fromkeys(aliases)), summary=description)
        )

    @staticmethod
    def _entry(note: Mapping[str, Any]) -> AffectedPackage | None:
        release = note.get("Release") or ""
        if release == "experimental":
            return None
        if release in _UNSTABLE:
            release = ""
        kind = note.get("Kind")
        severity = note.get("Severity") if isinstance(note.get("Severity"), str) else None
        if kind == "fixed" and isinstance(note.get("Version"), str):
            version = note["Version"]
            never = version == "0"
            return AffectedPackage(
                ecosystem="Debian",
                package=note["Package"],
                release=release,
                ranges=fixed_range(None if never else version),
                fixed=None if never else version,
                severity=severity,
                not_affected=never,
            )
        if kind == "not-affected":
            return AffectedPackage(
                "Debian", note["Package"], release, fixed_range(None), severity=severity, not_affected=True
            )
        if kind in _NO_FIX_KINDS:
            return AffectedPackage("Debian", note["Package"], release, fixed_range(None), severity=severity)
        return None
