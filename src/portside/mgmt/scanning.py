"""Harbor's scanning API (the built-in scanner, or a project's external adapter through
mgmt/external_scans.py): start and stop scans, their logs, the
reports and SBOMs of artifacts, the scanner registry, and Portside's own questions (which
artifacts hold a CVE or a package).

Permissions are Harbor's: starting or stopping a scan is `scan:create`/`scan:stop`
(maintainers and up); reading a report or an SBOM needs whatever reading the artifact
needs. Across artifacts, only repositories the caller may pull from are searched, so
nothing of a private project reaches anyone outside it, in results or in errors.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from portside.auth.principal import Principal
from portside.errors import BadRequest, Conflict, NotFound, PreconditionFailed, RegistryError
from portside.meta.accounts import Page, Project
from portside.meta.criteria import Criteria, Match
from portside.meta.scans import (
    ArtifactFinding,
    ArtifactPackage,
    HubFinding,
    ScanReport,
    ScanStore,
    SecuritySummary,
    StoredFinding,
    TagScan,
)
from portside.meta.stores import ChangeCounter
from portside.meta.upkeep import JobStore
from portside.mgmt.artifacts import ArtifactService
from portside.mgmt.guard import Guard
from portside.mgmt.paging import Listing, Paging
from portside.mgmt.pull_policy import PullPolicy, RuleVerdict
from portside.mgmt.scanners import ScannerRegistry, ScannerView
from portside.oci import mediatypes as mt
from portside.oci.manifest import Manifest
from portside.scan.jobs import ScanWorker
from portside.scan.model import Severity
from portside.scan.service import ScanService
from portside.scan.vulndb.status import DatabaseStatus

__all__ = [
    "BUILTIN_SCANNER",
    "DatabaseStatus",
    "NothingScannable",
    "PullVerdict",
    "ScanApiService",
    "ScannerInfo",
    "SCAN_TYPES",
]

log = logging.getLogger("portside.scan")

SCAN_TYPES = ("vulnerability", "sbom")
# The project metadata entry naming its scanner registration (absent: the default).
PROJECT_SCANNER_KEY = "scanner"
_CROSS_ARTIFACT_LIMIT = 1000
# The security hub's `q` (Harbor's keys) and the store fields they filter (meta/scans.py).
_HUB_LISTING = Listing(
    {
        "cve_id": "vulnerability",
        "cvss_score_v3": "cvss_score",
        "severity": "severity",
        "status": "fixed",
        "repository_name": "repository",
        "project_id": "project",
        "package": "package",
        "tag": "tag",
        "digest": "digest",
    }
)
# Harbor's tune_count: past this many findings the list's total is -1 (not counted further).
TUNED_COUNT_LIMIT = 1000
# A finding's status: fixed when the advisory names a fixed version, else affected.
FINDING_STATUSES = {"fixed": "true", "affected": "false"}


class NothingScannable(RegistryError):
    """Harbor's 422: an index none of whose children can be scanned."""

    code, status, message = "UNPROCESSABLE_ENTITY", 422, "nothing to scan"


@dataclass(frozen=True, slots=True)
class ScannerInfo:
    uuid: str
    name: str
    vendor: str
    version: str
    description: str


BUILTIN_SCANNER = ScannerInfo(
    uuid="portside-builtin",
    name="Portside",
    vendor="Portside",
    version="1.0",
    description="The scanner built into Portside: offline, from the imported vulnerability database",
)


def _severity_number(value: object) -> int | None:
    """A severity of `q` (Harbor's word, any case, or its number) as Severity's number."""
    if value is None:
        return None
    text = str(value).strip()
    for severity in Severity:
        if text.lower() == severity.label.lower() or text == str(int(severity)):
            return int(severity)
    labels = ", ".join(s.label for s in reversed(Severity))
    raise BadRequest(f"severity must be one of {labels}, not {text[:64]!r}")


@dataclass(frozen=True, slots=True)
class PullVerdict:
    """What the pull policy would say of an artifact: for each rule (vulnerabilities,
    signatures) whether it is on, and why it would refuse a pull ("" when it would not)."""

    digest: str
    rules: tuple[RuleVerdict, ...]

    @property
    def allowed(self) -> bool:
        return not any(rule.reason for rule in self.rules)


class ScanApiService:
    # Harbor's report MIME types: the native one first.
    REPORT_TYPES: ClassVar[tuple[str, ...]] = (
        "application/vnd.security.vulnerability.report; version=1.1",
        "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0",
    )

    def __init__(
        self,
        guard: Guard,
        artifacts: ArtifactService,
        store: ScanStore,
        service: ScanService,
        worker: ScanWorker,
        database: Callable[[], Awaitable[DatabaseStatus | None]],
        jobs: JobStore | None = None,
        project_changes: ChangeCounter | None = None,
        registry: ScannerRegistry | None = None,
        set_project_metadata: Callable[[int, Mapping[str, str]], Awaitable[None]] | None = None,
    ):
        self._guard = guard
        self._artifacts = artifacts
        self._store = store
        self._service = service
        # Set by wiring when projects' pull policies are enforced (mgmt/pull_policy.py).
        self.pull_policy: PullPolicy | None = None
        self._worker = worker
        self._database = database
        self._jobs = jobs
        self._pushes: set[asyncio.Task[None]] = set()
        self.scanner = BUILTIN_SCANNER
        self.registry = registry
        self._set_project_metadata = set_project_metadata
        # What scan on push wants per project name, valid while the projects' generation
        # (bumped by every committed project change, anywhere) stays where it was read.
        self._project_changes = project_changes
        self._wanted_at: int | None = None
        self._wanted: dict[str, tuple[str, ...]] = {}

    async def database_status(self) -> DatabaseStatus | None:
        """None: no vulnerability database is configured."""
        return await self._database()

    async def _available(self) -> bool:
        """Whether there is a database to match against (one import at least)."""
        status = await self._database()
        return status is not None and bool(status.sources)

    async def _artifact(
        self, who: Principal, project_key: str, repository: str, reference: str, resource: str, action: str
    ) -> tuple[Project, str, str]:
        project = await self._guard.project_for(who, project_key, resource, action)
        _, view = await self._artifacts.get(who, project_key, repository, reference, tag_limit=0)
        return project, view.info.repository_name, view.info.digest

    async def scan(self, who: Principal, project_key: str, repository: str, reference: str, scan_type: str) -> None:
        if scan_type not in SCAN_TYPES:
            raise BadRequest(f"scan_type must be one of {', '.join(SCAN_TYPES)}, not {scan_type!r}")
        project, repo, digest = await self._artifact(who, project_key, repository, reference, "scan", "create")
        if not await self._can_scan(project, scan_type):
            raise PreconditionFailed("no available scanner: the vulnerability database has not been imported")
        if not await self._service.scannable(repo, digest):
            raise NothingScannable(f"{repo}@{digest} holds no image that can be scanned")
        if await self._store.enqueue(repo, digest, scan_type, "Manual") is None:
            raise Conflict(f"a {scan_type} scan of {repo}@{digest} is already running")
        self._worker.wake()

    async def pushed(self, repository: str, manifest: Manifest) -> None:
        """Scan on push: the projects' `auto_scan` and `auto_sbom_generation`. The push does
        not wait: a project known to want nothing costs a memory read; otherwise its settings
        are read, and the scan queued, in the background."""
        if manifest.subject is not None or manifest.media_type not in mt.MANIFESTS:
            return  # a referrer (signature, SBOM) is no image to scan
        project_name = repository.split("/", 1)[0]
        generation = await self._projects_generation()
        if generation is not None and self._wanted.get(project_name) == ():
            return
        task = asyncio.create_task(self._queue_pushed(repository, str(manifest.digest), generation))
        self._pushes.add(task)
        task.add_done_callback(self._pushes.discard)

    async def _projects_generation(self) -> int | None:
        """The projects' generation now; what scan on push remembered is dropped when it moved."""
        if self._project_changes is None:
            return None
        generation = await self._project_changes.current()
        if generation != self._wanted_at:
            self._wanted.clear()
            self._wanted_at = generation
        return generation

    async def _queue_pushed(self, repository: str, digest: str, generation: int | None) -> None:
        try:
            project = await self._guard.project(repository.split("/", 1)[0])
            wanted = tuple(
                scan_type
                for scan_type, key in (("vulnerability", "auto_scan"), ("sbom", "auto_sbom_generation"))
                if project.metadata.get(key, "false").lower() == "true"
            )
            # Remembered only under the generation read before the project was: a change
            # committed in between moved it, and the next push reads the project again.
            if generation is not None and generation == self._wanted_at:
                self._wanted[project.name] = wanted
            wanted = tuple([scan_type for scan_type in wanted if await self._can_scan_on_push(project, scan_type)])
            if not wanted:
                return
            for scan_type in wanted:
                await self._store.enqueue(repository, digest, scan_type, "Push")
            self._worker.wake()
        except Exception:
            log.exception("queueing the scan of pushed %s@%s failed", repository, digest)

    async def stop(self, who: Principal, project_key: str, repository: str, reference: str, scan_type: str) -> None:
        if scan_type not in SCAN_TYPES:
            raise BadRequest(f"scan_type must be one of {', '.join(SCAN_TYPES)}, not {scan_type!r}")
        _, repo, digest = await self._artifact(who, project_key, repository, reference, "scan", "stop")
        if await self._store.request_stop(repo, digest, scan_type) is None:
            raise NotFound(f"no {scan_type} scan of {repo}@{digest} is running")

    async def log(self, who: Principal, project_key: str, repository: str, reference: str, report_id: str) -> str:
        _, repo, digest = await self._artifact(who, project_key, repository, reference, "scan", "read")
        report = await self._store.get_report(report_id)
        if report is None or report.repository != repo or report.digest != digest:
            raise NotFound(f"report {report_id[:64]} not found")
        return await self._store.report_log(report_id) or ""

    async def overviews(
        self, repository: str, digests: Sequence[str], scan_types: Sequence[str] = SCAN_TYPES
    ) -> dict[tuple[str, str], ScanReport]:
        """The newest report of each artifact and scan type, with its summary: one query for
        a whole list. The caller has checked that the artifacts may be read."""
        return await self._store.latest(repository, digests, scan_types)

    async def vulnerabilities(
        self, who: Principal, project_key: str, repository: str, reference: str
    ) -> tuple[ScanReport | None, list[StoredFinding], str]:
        """The newest vulnerability report (None: never scanned), its findings, the digest."""
        _, repo, digest = await self._artifact(who, project_key, repository, reference, "artifact-addition", "read")
        reports = await self._store.latest(repo, [digest], SCAN_TYPES)
        # An SBOM scan matches too: its report stands when there is no vulnerability scan.
        report = reports.get((digest, "vulnerability")) or reports.get((digest, "sbom"))
        if report is None or report.status != "Success":
            return report, [], digest
        return report, await self._store.findings(digest), digest

    async def pull_verdict(self, who: Principal, project_key: str, repository: str, reference: str) -> PullVerdict:
        """A dry run of the project's pull policy on an artifact the caller may read."""
        _, repo, digest = await self._artifact(who, project_key, repository, reference, "artifact", "read")
        if self.pull_policy is None:
            return PullVerdict(digest, (RuleVerdict("vulnerability", False), RuleVerdict("signature", False)))
        return PullVerdict(digest, tuple(await self.pull_policy.dry_run(repo, digest)))

    async def sbom(self, who: Principal, project_key: str, repository: str, reference: str) -> tuple[str, bytes]:
        """An SBOM referrer's document: (media type, bytes)."""
        _, repo, digest = await self._artifact(who, project_key, repository, reference, "artifact-addition", "read")
        try:
            return await self._service.sbom_document(repo, digest)
        except RegistryError:
            raise NotFound(f"{repo}@{digest} is no SBOM") from None

    async def _pullable(self, who: Principal) -> list[str] | None:
        visible = await self._guard.visible(who, "repository", "pull")
        return None if visible is None else [p.name for p in visible]

    async def with_vulnerability(self, who: Principal, vulnerability_id: str) -> list[ArtifactFinding]:
        return await self._store.with_vulnerability(vulnerability_id, await self._pullable(who), _CROSS_ARTIFACT_LIMIT)

    async def with_package(self, who: Principal, purl: str) -> list[ArtifactPackage]:
        if not purl.startswith("pkg:"):
            raise BadRequest(f"purl must be a package URL (pkg:type/name@version), not {purl[:100]!r}")
        return await self._store.with_package(purl, await self._pullable(who), _CROSS_ARTIFACT_LIMIT)

    async def security_summary(self, who: Principal, top: int = 5) -> tuple[SecuritySummary, dict[str, int]]:
        """Harbor's security hub: the whole registry's findings, for system administrators
        (and system robots given `security-hub:read`), as in Harbor; with the ids of the
        projects its dangerous artifacts are in."""
        self._guard.system(who, "security-hub", "read")
        summary = await self._store.security_summary(None, top)
        return summary, await self._project_ids(repository for repository, _, _ in summary.dangerous_artifacts)

    async def list_vulnerabilities(
        self, who: Principal, q: str | None, paging: Paging, tune_count: bool = False, with_tag: bool = False
    ) -> tuple[Page[HubFinding], dict[str, int]]:
        """Harbor's security hub list: every finding of every artifact, worst first, for
        system administrators (and system robots given `security-hub:read`); with the ids
        of the projects on the page. With `tune_count`, a total past `TUNED_COUNT_LIMIT` is
        not counted: the page's total is then `TUNED_COUNT_LIMIT` + 1."""
        self._guard.system(who, "security-hub", "read")
        criteria = await self._hub_criteria(_HUB_LISTING.criteria(q, None))
        page = await self._store.list_findings(
            criteria, paging.offset, paging.limit, TUNED_COUNT_LIMIT if tune_count else None, with_tag
        )
        return page, await self._project_ids(item.repository for item in page.items)

    async def _hub_criteria(self, criteria: Criteria) -> Criteria:
        """Harbor's words as the store's values: severities by name, statuses, projects by id."""
        out = criteria.without("severity", "fixed", "project")
        for match in criteria.on("severity"):
            out = out.where("severity", Match(match.kind, tuple(_severity_number(v) for v in match.values)))
        for match in criteria.on("fixed"):
            if match.kind != "exact":
                raise BadRequest("status takes one value: fixed or affected")
            status = str(match.value).lower()
            if status not in FINDING_STATUSES:
                raise BadRequest(f"status must be fixed or affected, not {str(match.value)[:64]!r}")
            out = out.where("fixed", Match("exact", (FINDING_STATUSES[status],)))
        for match in criteria.on("project"):
            if match.kind != "exact":
                raise BadRequest("project_id takes one project id")
            try:
                name = (await self._guard.project(int(str(match.value)))).name
            except (NotFound, ValueError):
                name = ""  # no such project: nothing is in it
            out = out.where("project", Match("exact", (name,)))
        return out

    async def _project_ids(self, repositories: Iterable[str]) -> dict[str, int]:
        ids: dict[str, int] = {}
        for repository in repositories:
            name = repository.split("/", 1)[0]
            if name not in ids:
                try:
                    ids[name] = (await self._guard.project(name)).project_id
                except NotFound:
                    pass  # deleted since the findings were read
        return ids

    async def tags_with_vulnerability(
        self, who: Principal, project_key: str, repository: str, vulnerability_id: str, paging: Paging
    ) -> Page[TagScan]:
        """Each tag of a repository and whether its artifact has `vulnerability_id` (a CVE or
        an advisory id): for whoever may read the repository's scan reports."""
        _, name = await self._artifacts.open_repository(who, project_key, repository, "artifact-addition", "read")
        return await self._store.tag_scans(name, vulnerability_id, paging.offset, paging.limit)

    # --- the scanner registry (mgmt/scanners.py) and each project's scanner --------------

    async def _can_scan(self, project: Project, scan_type: str) -> bool:
        """Whether a scan of `scan_type` can run for `project`: through its external adapter
        (vulnerability scans; 412 when that adapter is disabled, as Harbor answers), or on
        the built-in scanner, which needs the vulnerability database imported."""
        chosen = await self.scanner_for(project)
        if scan_type == "vulnerability" and chosen is not None and chosen.registration is not None:
            if chosen.disabled:
                raise PreconditionFailed(f"scanner {chosen.name} of project {project.name} is deactivated")
            return True
        return await self._available()

    async def _can_scan_on_push(self, project: Project, scan_type: str) -> bool:
        try:
            return await self._can_scan(project, scan_type)
        except PreconditionFailed:  # a disabled adapter: nobody to tell at push time
            return False

    async def scanner_for(self, project: Project) -> ScannerView | None:
        """The project's scanner, else the default (None: no registry, the built-in one)."""
        if self.registry is None:
            return None
        chosen = project.metadata.get(PROJECT_SCANNER_KEY, "")
        found = await self.registry.find(chosen) if chosen else None
        return found if found is not None else await self.registry.default()

    async def project_scanner(self, who: Principal, project_key: int | str) -> ScannerView:
        project = await self._guard.project_for(who, project_key, "project", "read")
        found = await self.scanner_for(project)
        if found is None:
            raise NotFound("no scanner registry on this server")
        return found

    async def set_project_scanner(self, who: Principal, project_key: int | str, scanner_id: str) -> None:
        # Harbor lets a project's administrators choose its scanner.
        project = await self._guard.project_for(who, project_key, "project", "update")
        if self.registry is None or self._set_project_metadata is None:
            raise NotFound("no scanner registry on this server")
        if await self.registry.find(scanner_id) is None:
            raise NotFound(f"scanner {scanner_id[:64]} not found")
        await self._set_project_metadata(project.project_id, {PROJECT_SCANNER_KEY: scanner_id})

    async def metrics(self, who: Principal) -> dict[str, int]:
        self._guard.system(who, "scan-all", "read")
        return await self._store.status_counts("Schedule")

    async def stop_all(self, who: Principal) -> None:
        """Stop scan-all: its job, and the scans it queued that have not ended."""
        self._guard.system(who, "scan-all", "stop")
        if self._jobs is not None:
            active = await self._jobs.list_jobs("scan_all", None, 0, 10, True)
            for job in active.items:
                if job.status in ("Pending", "Running"):
                    await self._jobs.request_stop(job.id)
        await self._store.stop_queued("Schedule")
