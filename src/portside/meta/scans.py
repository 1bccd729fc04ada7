"""Protocol of the scan reports' metadata: inventories, findings and summaries per manifest,
and per artifact the reports of its scans, which are also the queue the scan workers take
work from.

A report is Pending when asked for, Running while a worker holds it (its `update_time` is
the worker's heartbeat), then Success, Error or Stopped. A Running report whose worker
stopped beating for a lease is taken again by the next claim, so scans survive restarts;
claims are conditional updates, so in a cluster exactly one instance takes each.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from portside.meta.accounts import Page
from portside.meta.criteria import Criteria

__all__ = [
    "ACTIVE_SCAN_STATUSES",
    "ArtifactFinding",
    "ArtifactPackage",
    "HubFinding",
    "HUB_FIELDS",
    "ScanReport",
    "ScanStore",
    "ScanSummary",
    "SecuritySummary",
    "StoredFinding",
    "StoredPackage",
    "TagScan",
    "purl_parts",
]

ACTIVE_SCAN_STATUSES = ("Pending", "Running")


@dataclass(frozen=True, slots=True)
class ScanSummary:
    """What a list shows of a scanned manifest: the worst severity, counts by severity label."""

    severity: int
    total: int
    fixable: int
    counts: Mapping[str, int] = field(default_factory=dict)
    db_generation: int = 0
    matched_at: datetime | None = None
    scanned_by: ScannedBy | None = None  # None: the built-in scanner


@dataclass(frozen=True, slots=True)
class ScannedBy:
    """The external scanner adapter whose report a summary holds."""

    uuid: str
    name: str
    vendor: str
    version: str


@dataclass(frozen=True, slots=True)
class ScanReport:
    id: str
    repository: str
    digest: str
    scan_type: str  # vulnerability or sbom
    status: str
    trigger: str
    stop_requested: bool
    sbom_digest: str | None
    creation_time: datetime
    start_time: datetime | None
    end_time: datetime | None
    update_time: datetime
    summary: ScanSummary | None = None  # the manifest's, when it has been matched


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A finding as stored for one manifest: the package named by value (not the inventory's
    object), so reports and the cross-artifact questions read one table."""

    vulnerability_id: str
    advisory_id: str
    source: str
    ecosystem: str
    package: str
    version: str
    purl: str
    path: str
    layer: str
    fixed_version: str | None
    severity: int
    cvss_score: float | None = None
    cvss_vector: str | None = None
    description: str = ""
    aliases: tuple[str, ...] = ()
    cwe_ids: tuple[str, ...] = ()
    links: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StoredPackage:
    """A package of a stored inventory, by value (the package index of `with_package`)."""

    ecosystem: str
    name: str
    version: str
    purl: str
    path: str
    layer: str


def purl_parts(purl: str) -> tuple[str, str | None]:
    """A purl's name part (type, namespace and name) and its version (None when it has
    none), without qualifiers or subpath: `pkg:deb/debian/zlib1g@1.2?arch=amd64` is
    (`pkg:deb/debian/zlib1g`, `1.2`). An npm scope's `@` is percent-encoded, so the last
    `@` is the version's."""
    bare = purl.split("#", 1)[0].split("?", 1)[0]
    name, at, version = bare.rpartition("@")
    return (name, version) if at and name else (bare, None)


@dataclass(frozen=True, slots=True)
class ArtifactFinding:
    """A finding of a manifest as one repository holds it (the cross-artifact questions)."""

    repository: str
    digest: str
    finding: StoredFinding


@dataclass(frozen=True, slots=True)
class ArtifactPackage:
    """A package of a manifest as one repository holds it, with its findings (none when no
    advisory names it)."""

    repository: str
    digest: str
    package: StoredPackage
    findings: tuple[StoredFinding, ...] = ()


@dataclass(frozen=True, slots=True)
class SecuritySummary:
    """Harbor's security hub over the artifacts of some projects: each artifact as a
    repository holds it (an image in two repositories counts twice, as in Harbor)."""

    total_artifacts: int
    scanned_artifacts: int
    counts: Mapping[int, int]  # findings by severity (Severity's numbers)
    fixable: int
    dangerous_findings: Sequence[ArtifactFinding]  # the worst, one per vulnerability id
    dangerous_artifacts: Sequence[tuple[str, str, Mapping[int, int]]]  # repository, digest, counts


@dataclass(frozen=True, slots=True)
class HubFinding:
    """A finding of the security hub's list (and of the CVE export): a manifest's finding
    as one repository holds it, with the tags that reach it there and the scanner that
    found it (None: the built-in one)."""

    repository: str
    digest: str
    finding: StoredFinding
    tags: tuple[str, ...] = ()
    scanned_by: ScannedBy | None = None


# The fields `ScanStore.list_findings` filters on:
#   vulnerability  a CVE or advisory id: exact, or any of a list
#   severity       Severity's number (exact, any or range)
#   cvss_score     the CVSS v3 base score (range or exact)
#   fixed          whether a fixed version is known (exact: true or false)
#   repository     the repository's full name (exact or any)
#   project        the repository's project name (exact)
#   package        the package's name (exact or fuzzy)
#   tag            a tag of the repository: the manifest it names, and an index's children
#   digest         a manifest's digest: that manifest, and an index's children (exact or any)
HUB_FIELDS = ("vulnerability", "severity", "cvss_score", "fixed", "repository", "project", "package", "tag", "digest")


@dataclass(frozen=True, slots=True)
class TagScan:
    """A tag of a repository and what its artifact's scan says of one vulnerability:
    `findings` are that vulnerability's (none, once `scanned`: not affected)."""

    tag: str
    digest: str
    pushed_at: datetime
    scanned: bool
    findings: tuple[StoredFinding, ...] = ()


class ScanStore(Protocol):
    # --- reports and the queue --------------------------------------------------------------

    async def enqueue(self, repository: str, digest: str, scan_type: str, trigger: str) -> ScanReport | None:
        """A new Pending report, unless one of this artifact and type is active (None)."""

    async def claim(self, abandoned_before: datetime) -> ScanReport | None:
        """Take the oldest Pending report, or a Running one not heard of since
        `abandoned_before`, marking it Running; None when there is none to take."""

    async def beat(self, report_id: str, log: str = "") -> bool:
        """Refresh the heartbeat and append `log`; whether a stop was requested."""

    async def finish(self, report_id: str, status: str, log: str = "", sbom_digest: str | None = None) -> None: ...

    async def get_report(self, report_id: str) -> ScanReport | None: ...

    async def report_log(self, report_id: str) -> str | None: ...

    async def latest(
        self, repository: str, digests: Sequence[str], scan_types: Sequence[str]
    ) -> dict[tuple[str, str], ScanReport]:
        """Each (digest, scan type)'s newest report in `repository`, with the digest's summary:
        one query for any number of digests and types (artifact lists)."""

    async def request_stop(self, repository: str, digest: str, scan_type: str) -> ScanReport | None:
        """Ask the active report to stop (a Pending one ends Stopped at once); None: none active."""

    async def stop_queued(self, trigger: str) -> int:
        """Stop every active report of `trigger` (as `request_stop`); how many."""

    async def status_counts(self, trigger: str | None = None) -> dict[str, int]:
        """Reports by status (scan-all's metrics)."""

    async def top_artifacts(self, after: tuple[str, str] | None, limit: int) -> list[tuple[str, str]]:
        """(repository, digest) of every image or index no index or subject is above, in
        that order, after `after` (scan-all)."""

    # --- inventories, findings, summaries (per manifest) ------------------------------------

    async def put_inventory(self, digest: str, inventory: bytes, packages: Sequence[StoredPackage] = ()) -> None:
        """Store the manifest's inventory and index its `packages`, replacing both."""

    async def get_inventory(self, digest: str) -> bytes | None: ...

    async def stale_inventories(self, generation: int, after: str | None, limit: int) -> list[str]:
        """Digests of stored inventories not matched against `generation`, in digest order."""

    async def replace_findings(self, digest: str, findings: Sequence[StoredFinding], summary: ScanSummary) -> None:
        """The manifest's findings and summary, replacing what was there, in one transaction."""

    async def findings(self, digest: str) -> list[StoredFinding]: ...

    async def summary(self, digest: str) -> ScanSummary | None: ...

    async def with_vulnerability(
        self, vulnerability_id: str, projects: Sequence[str] | None, limit: int
    ) -> list[ArtifactFinding]:
        """Findings of `vulnerability_id` (or an advisory of that id) in the repositories of
        `projects` (None: all) that hold the manifest."""

    async def security_summary(self, projects: Sequence[str] | None, top: int) -> SecuritySummary:
        """Counts over the artifacts of `projects` (None: all), and the `top` worst findings
        and artifacts."""

    async def tag_scans(self, repository: str, vulnerability_id: str, offset: int, limit: int) -> Page[TagScan]:
        """Each tag of `repository`, the newest push first, with its artifact's findings of
        `vulnerability_id` (a CVE or an advisory id; an index's are its child manifests')."""

    async def list_findings(
        self, criteria: Criteria, offset: int, limit: int, count_limit: int | None = None, with_tags: bool = False
    ) -> Page[HubFinding]:
        """Findings as repositories hold their manifests, worst first (severity, then CVSS
        score), matching `criteria` on `HUB_FIELDS`. The total is counted up to
        `count_limit` rows (None: all); past it, the total is `count_limit` + 1. With
        `with_tags`, each finding names the repository's tags of its manifest, and of the
        indexes that hold it."""

    async def with_package(self, purl: str, projects: Sequence[str] | None, limit: int) -> list[ArtifactPackage]:
        """Every stored package `purl` names (with or without its version; qualifiers are
        ignored) in the repositories of `projects` (None: all) that hold its manifest, with
        the package's findings there."""
