"""Scans through an external scanner adapter: when an artifact's project chose a registered
adapter (Harbor's `/projects/{p}/scanner`), its vulnerability scan is handed to that adapter
instead of the built-in scanner, as Harbor does.

The adapter pulls the artifact from this registry with credentials made for that one scan:
a project robot that may only pull, created before the request and deleted when the scan
ends (however it ends), so no long-lived secret leaves the server. SBOM scans stay with the
built-in scanner, which writes the SBOM referrers itself.
"""

from __future__ import annotations

import base64
import logging
import secrets
from typing import Protocol

from portside.meta.accounts import Project, RobotPermission
from portside.meta.scans import ScanReport
from portside.mgmt.artifacts import project_of
from portside.mgmt.pull_policy import SCANNER_PULL
from portside.mgmt.robots import RobotService, RobotSpec
from portside.mgmt.scanners import ScannerRegistry, ScannerView
from portside.scan.adapter import AdapterError, ScanRequest
from portside.scan.external import ExternalScanResult, scan_with_adapter
from portside.scan.jobs import ScanJournal
from portside.scan.service import ScanOutcome, ScanService

__all__ = ["ExternalScans", "SCANNER_ROBOT_CREATOR"]

log = logging.getLogger("portside.scan")

# The audit trail's name for the robots made for adapters' pulls.
SCANNER_ROBOT_CREATOR = "portside-scanner"
# Source of an adapter's findings (the findings' `source` column; adapters name none).
ADAPTER_SOURCE = "adapter"


class _Projects(Protocol):
    async def get_project(self, key: int | str) -> Project | None: ...


class _ProjectScanner(Protocol):
    async def scanner_for(self, project: Project) -> ScannerView | None: ...


class ExternalScans:
    """The scan worker's `external` hook: the outcome of an adapter's scan, or None when the
    built-in scanner is the artifact's."""

    def __init__(
        self,
        projects: _Projects,
        chooser: _ProjectScanner,
        registry: ScannerRegistry,
        service: ScanService,
        robots: RobotService,
        registry_url: str,
        *,
        timeout: float = 600.0,
    ) -> None:
        self._projects = projects
        self._chooser = chooser
        self._registry = registry
        self._service = service
        self._robots = robots
        self._registry_url = registry_url.rstrip("/")
        self._timeout = timeout

    async def __call__(self, report: ScanReport, journal: ScanJournal) -> ScanOutcome | None:
        if report.scan_type != "vulnerability":
            return None
        project = await self._projects.get_project(project_of(report.repository))
        if project is None:
            return None
        chosen = await self._chooser.scanner_for(project)
        if chosen is None or chosen.registration is None:
            return None
        if chosen.disabled:
            raise AdapterError(f"scanner {chosen.name} is disabled; enable it or choose another for {project.name}")
        journal.info(f"scanner of project {project.name}: {chosen.name} ({chosen.url})")
        made = await self._robots.add(
            RobotSpec(
                name=f"scanner-{report.id[:8]}-{secrets.token_hex(3)}",
                level="project",
                # scanner-pull: past the project's vulnerability policy, which waits for this scan.
                permissions=(RobotPermission("project", project.name, (("repository", "pull"), SCANNER_PULL)),),
                description=f"pulls {report.repository}@{report.digest} for scanner {chosen.name[:60]}",
                duration=1,
            ),
            project,
            by=SCANNER_ROBOT_CREATOR,
        )
        credential = base64.b64encode(f"{made.robot.name}:{made.secret}".encode()).decode()
        try:
            async with await self._registry.client(chosen.registration, timeout=30.0) as client:

                async def scan_image(digest: str, media_type: str) -> ExternalScanResult:
                    request = ScanRequest(
                        registry_url=self._registry_url,
                        repository=report.repository,
                        digest=digest,
                        mime_type=media_type,
                        authorization=f"Basic {credential}",
                    )
                    return await scan_with_adapter(client, request, ADAPTER_SOURCE, timeout=self._timeout)

                return await self._service.scan_externally(
                    report.repository, report.digest, journal, scan_image, chosen.uuid
                )
        finally:
            try:
                await self._robots.remove(made.robot, by=SCANNER_ROBOT_CREATOR)
            except Exception:  # it expires in a day regardless
                log.exception("could not delete %s after its scan", made.robot.name)
