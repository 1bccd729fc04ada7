"""Matching an inventory against the vulnerability database.

Each package is looked up where its advisories are filed: an OS package by its source
package name in the distribution's ecosystem and release (Debian 12 → the tracker's
`bookworm` and OSV's `Debian:12`; Alpine 3.18.4 → `v3.18`), a language package in its
OSV ecosystem. One query per ecosystem and release set, for all names at once.

An entry applies under OSV's rules: the version is listed in `versions[]`, or some
ECOSYSTEM or SEMVER range holds it (events sorted, `introduced` ≤ v sets affected, a
`fixed` ≤ v or a `last_affected` < v clears it, v ≥ `limit` is outside); GIT ranges are
never used. The fixed version reported is the lowest `fixed` above the installed one.

Findings are one per (vulnerability, package): the CVE when an advisory names one (its
id, `aliases`, `upstream`), so a DSA and its CVE, or a PYSEC and a GHSA record of the same
CVE, are one finding. For OS packages a release's own entries outrank the tracker's
"every other release" lines, and a fix the installed version already has (or a
not-affected statement) outranks "no fix" from the same tier: a DSA's bookworm fix
settles a CVE whose own entry speaks only of unstable. Severity is the distribution's
urgency, else the CVSS v3 base score's band, else the record's own word, else Unknown.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from portside.meta.vulndb import Candidate, VulnerabilityStore
from portside.scan.model import Ecosystem, Finding, Inventory, OperatingSystem, Package, Severity
from portside.scan.versions import SEMVER, UnreadableVersion, normalise_go, sort_key
from portside.scan.vulndb.cvss import base_score, severity_of_score
from portside.scan.vulndb.records import package_key

__all__ = ["Lookup", "affected_by", "lookups", "match", "match_noting"]

log = logging.getLogger("portside.scan")

DEBIAN_CODENAMES = {
    "9": "stretch",
    "10": "buster",
    "11": "bullseye",
    "12": "bookworm",
    "13": "trixie",
    "14": "forky",
}
_OS_ECOSYSTEMS = {"debian": Ecosystem.DEBIAN, "ubuntu": Ecosystem.UBUNTU, "alpine": Ecosystem.ALPINE}


@dataclass(frozen=True, slots=True)
class Lookup:
    """Where one package's advisories are: an ecosystem, the releases to read, the name
    and version as advisories write them."""

    ecosystem: str
    releases: tuple[str, ...]
    name: str
    version: str
    os_package: bool


def _releases(package: Package, os: OperatingSystem | None) -> tuple[str, ...] | None:
    if package.ecosystem is Ecosystem.DEBIAN:
        if os is None:
            return None
        major = os.version_id.split(".", 1)[0]
        codename = os.codename or DEBIAN_CODENAMES.get(major)
        return tuple(dict.fromkeys(r for r in (codename, major, "") if r is not None))
    if package.ecosystem is Ecosystem.ALPINE:
        if os is None:
            return None
        parts = os.version_id.split(".")
        branch = "edge" if not parts[0].isdigit() else f"v{'.'.join(parts[:2])}"
        return (branch,)
    if package.ecosystem is Ecosystem.UBUNTU:
        return (os.version_id, "") if os is not None else None
    if package.ecosystem is Ecosystem.RPM:
        return (os.version_id.split(".", 1)[0], "") if os is not None else None
    return ("",)


def lookups(package: Package, os: OperatingSystem | None) -> Lookup | None:
    """Where `package`'s advisories are filed; None when that cannot be known (an OS
    package in an image whose OS was not recognised)."""
    releases = _releases(package, os)
    if releases is None:
        return None
    os_package = package.ecosystem in (Ecosystem.DEBIAN, Ecosystem.ALPINE, Ecosystem.UBUNTU, Ecosystem.RPM)
    ecosystem = package.ecosystem.value
    if os_package:
        name, version = package.advisory_name, package.advisory_version
    else:
        name, version = package.name, package.version
    if package.ecosystem is Ecosystem.GO:
        version = normalise_go(version)
    return Lookup(ecosystem, releases, package_key(ecosystem, name), version, os_package)


_EVENTS = ("introduced", "fixed", "last_affected", "limit")


def _event_key(ecosystem: str, event: dict[str, Any]) -> tuple[int, Any]:
    kind, value = next((k, v) for k, v in event.items() if k in _EVENTS)
    if kind == "introduced" and value == "0":
        return (0, 0)
    return (1, sort_key(ecosystem, str(value)))


def _in_range(ecosystem: str, events: Sequence[Any], installed: Any) -> tuple[bool, list[tuple[Any, str]], bool]:
    """Whether `installed` is in the range; the range's fixes above it (key, text), lowest
    first; and whether a fix at or below it passed."""
    usable = [e for e in events if isinstance(e, dict) and any(k in e for k in _EVENTS)]
    ordered = sorted(usable, key=lambda e: _event_key(ecosystem, e))
    affected = False
    for event in ordered:
        if "introduced" in event:
            if event["introduced"] == "0" or installed >= sort_key(ecosystem, event["introduced"]):
                affected = True
        elif "fixed" in event:
            if installed >= sort_key(ecosystem, event["fixed"]):
                affected = False
        elif "last_affected" in event:
            if installed > sort_key(ecosystem, event["last_affected"]):
                affected = False
        elif "limit" in event and installed >= sort_key(ecosystem, event["limit"]):
            affected = False
    fixes = [(sort_key(ecosystem, e["fixed"]), str(e["fixed"])) for e in ordered if "fixed" in e]
    above = [fix for fix in fixes if fix[0] > installed]
    return affected, above, len(above) < len(fixes)


@dataclass(frozen=True, slots=True)
class Verdict:
    affected: bool
    fixed: str | None  # the lowest fix above the installed version
    has_fix: bool  # a fix at or below the installed version applies: it has that fix


def affected_by(ecosystem: str, ranges_json: str, versions_json: str, version: str) -> Verdict:
    """OSV's verdict for one affected entry; `UnreadableVersion` if `version` is none."""
    ranges = json.loads(ranges_json)
    listed = json.loads(versions_json)
    affected = version in listed
    if not affected and listed:
        installed = sort_key(ecosystem, version)
        for text in listed:
            try:
                if sort_key(ecosystem, text) == installed:
                    affected = True  # 3.2 is 3.2.0 under PEP 440
                    break
            except UnreadableVersion:
                continue
    fixed: str | None = None
    other_fixed: str | None = None
    has_fix = False
    for item in ranges:
        kind = item.get("type") if isinstance(item, dict) else None
        if kind not in ("ECOSYSTEM", SEMVER):
            continue
        order = SEMVER if kind == SEMVER else ecosystem
        try:
            inside, above, passed = _in_range(order, item.get("events") or [], sort_key(order, version))
        except UnreadableVersion:
            if order != ecosystem:
                continue  # a SEMVER range of an ecosystem whose versions are not semver
            raise
        except (ValueError, TypeError):  # an event of a shape OSV does not define
            continue
        affected = affected or inside
        has_fix = has_fix or passed
        if above:
            # Ranges of one entry share their order; the first range holding the version names its fix.
            if inside and fixed is None:
                fixed = above[0][1]
            elif other_fixed is None:
                other_fixed = above[0][1]
    return Verdict(affected, fixed or (other_fixed if affected else None), has_fix)


def _vulnerability_ids(candidate: Candidate) -> list[str]:
    advisory = candidate.advisory
    if advisory.id.startswith("CVE-"):
        return [advisory.id]
    cves = list(dict.fromkeys(alias for alias in advisory.aliases if alias.startswith("CVE-")))
    return cves or [advisory.id]


@dataclass
class _Hit:
    candidate: Candidate
    verdict: Verdict


def _source_label(source: str) -> str:
    return source.split(":", 1)[0]


def _severity(hits: Sequence[_Hit]) -> tuple[Severity, str | None, float | None]:
    vector = next((h.candidate.advisory.cvss_vector for h in hits if h.candidate.advisory.cvss_vector), None)
    score = None
    if vector is not None:
        score = base_score(vector)
        if score is None:
            score = next((h.candidate.advisory.cvss_score for h in hits if h.candidate.advisory.cvss_score), None)
    for hit in hits:
        urgency = Severity.of(hit.candidate.entry.severity)
        if urgency is not Severity.UNKNOWN:
            return urgency, vector, score
    if score is not None and vector is not None and vector.startswith("CVSS:3"):
        return severity_of_score(score), vector, score
    for hit in hits:
        word = Severity.of(hit.candidate.advisory.severity)
        if word is not Severity.UNKNOWN:
            return word, vector, score
    return Severity.UNKNOWN, vector, score


def _finding(vulnerability_id: str, package: Package, hits: list[_Hit], os_package: bool) -> Finding:
    if os_package:
        # The distribution's own sources first: their fixed versions are the ones to install.
        hits = sorted(hits, key=lambda h: h.candidate.source.startswith("osv:"))
    primary = hits[0].candidate
    fixed = next((h.verdict.fixed for h in hits if h.verdict.fixed), None)
    severity, vector, score = _severity(hits)
    names: list[str] = []
    links: list[str] = []
    cwes: list[str] = []
    for hit in hits:
        advisory = hit.candidate.advisory
        names.extend((advisory.id, *advisory.aliases))
        links.extend(advisory.references)
        cwes.extend(advisory.cwe_ids)
    advisory = primary.advisory
    return Finding(
        vulnerability_id=vulnerability_id,
        package=package,
        severity=severity,
        fixed_version=fixed,
        advisory_id=advisory.id,
        source=_source_label(primary.source),
        description=advisory.summary or advisory.details.strip().split("\n", 1)[0],
        links=tuple(dict.fromkeys(links)),
        cvss_vector=vector,
        cvss_score=score,
        cwe_ids=tuple(dict.fromkeys(cwes)),
        aliases=tuple(name for name in dict.fromkeys(names) if name != vulnerability_id),
    )


def _decide(hits: list[_Hit], os_package: bool) -> list[_Hit]:
    """The hits that make the package affected; empty when it is not."""
    if not os_package:
        return [hit for hit in hits if hit.verdict.affected]
    own = [hit for hit in hits if hit.candidate.entry.release]
    tier = own or hits
    if any(hit.candidate.entry.not_affected or (hit.verdict.has_fix and not hit.verdict.affected) for hit in tier):
        return []
    return [hit for hit in tier if hit.verdict.affected]


async def match_noting(inventory: Inventory, store: VulnerabilityStore) -> tuple[list[Finding], list[str]]:
    """The findings, and what could not be matched, said plainly."""
    notes: list[str] = []
    wanted: dict[tuple[str, tuple[str, ...]], dict[str, list[tuple[Package, Lookup]]]] = {}
    for package in inventory.packages:
        where = lookups(package, inventory.os)
        if where is None:
            notes.append(f"{package.name} {package.version}: the image's OS is unknown, so its advisories are too")
            continue
        wanted.setdefault((where.ecosystem, where.releases), {}).setdefault(where.name, []).append((package, where))

    findings: list[Finding] = []
    for (ecosystem, releases), by_name in wanted.items():
        candidates = await store.candidates(ecosystem, releases, by_name.keys())
        per_name: dict[str, list[Candidate]] = {}
        for candidate in candidates:
            per_name.setdefault(candidate.entry.package, []).append(candidate)
        for name, found in per_name.items():
            for package, where in by_name.get(name, []):
                findings.extend(_package_findings(package, where, found, notes))
    findings.sort(key=lambda f: (-f.severity, f.vulnerability_id, f.package.name))
    return findings, notes


def _package_findings(package: Package, where: Lookup, found: Iterable[Candidate], notes: list[str]) -> list[Finding]:
    groups: dict[str, list[_Hit]] = {}
    for candidate in found:
        try:
            verdict = affected_by(where.ecosystem, candidate.entry.ranges, candidate.entry.versions, where.version)
        except UnreadableVersion as unreadable:
            notes.append(f"{package.name}: skipped: {unreadable}")
            return []
        for vulnerability_id in _vulnerability_ids(candidate):
            groups.setdefault(vulnerability_id, []).append(_Hit(candidate, verdict))
    results = []
    for vulnerability_id, hits in groups.items():
        deciding = _decide(hits, where.os_package)
        if deciding:
            results.append(_finding(vulnerability_id, package, deciding, where.os_package))
    return results


async def match(inventory: Inventory, store: VulnerabilityStore) -> list[Finding]:
    """The advisories that apply to `inventory`'s packages, one finding per vulnerability
    and package. What could not be matched is logged (see `match_noting`)."""
    findings, notes = await match_noting(inventory, store)
    for note in notes:
        log.info("vulnerability matching: %s", note)
    return findings
