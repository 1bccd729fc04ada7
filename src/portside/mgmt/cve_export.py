"""Harbor's CVE export (`/export/cve`): the findings of one project's artifacts as a CSV,
written by a background job and downloaded by whoever asked for it.

Each export is a job of the runner's `cve:*` family, of kind `cve:u<user id>` (or
`cve:r<robot id>`): one export per person at a time, anyone else's running beside it, and
a person's list of executions is the jobs of their kind. The file is kept
(`meta.cve_exports`) until `retention` has passed; only its owner reads the execution or
downloads the file, and another's is refused as Harbor refuses it.

The criteria are Harbor's: one project (by id), repositories and tags as doublestar
patterns (`{nginx,redis}`, `release-*`, `**`) matched against the repository's name in the
project and the tag's name, CVE ids separated by commas. Labels (`labels`) are refused
until labels exist. At most `MAX_ROWS` findings are written; an export cut there says so
in its `status_text`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from wcmatch import glob

from portside.auth.principal import Principal
from portside.errors import BadRequest, Forbidden, NotFound, Unauthorized
from portside.meta.artifacts import ArtifactStore
from portside.meta.criteria import EVERYTHING, Criteria, Match
from portside.meta.cve_exports import ExportFiles
from portside.meta.scans import HubFinding, ScanStore
from portside.meta.upkeep import JobRecord, JobStore
from portside.mgmt.guard import Guard
from portside.scan.model import Severity
from portside.upkeep.jobs import JobLog, JobRunner

__all__ = [
    "CSV_COLUMNS",
    "DATA_TYPE",
    "EXPORT_FAMILY",
    "MAX_ROWS",
    "CveExportService",
    "ExportCriteria",
    "Execution",
]

EXPORT_FAMILY = "cve:*"
# The one X-Scan-Data-Type Harbor exports: its native vulnerability report's.
DATA_TYPE = "application/vnd.security.vulnerability.report; version=1.1"
MAX_ROWS = 100_000
# Harbor's columns, in its order.
CSV_COLUMNS = (
    "Repository",
    "Artifact Digest",
    "CVE",
    "Package",
    "Current Version",
    "Fixed in version",
    "Severity",
    "CWE Ids",
    "Additional Data",
    "Scanner",
)
_LISTED_EXECUTIONS = 100
_PAGE = 100  # repositories and tags read at a time
_DIGEST_BATCH = 500  # tagged digests asked about in one query
_PATTERN_FLAGS = glob.GLOBSTAR | glob.BRACE | glob.DOTMATCH
_MAX_CRITERION = 1024


@dataclass(frozen=True, slots=True)
class ExportCriteria:
    """Harbor's ScanDataExportRequest, as sent."""

    job_name: str = ""
    projects: Sequence[int] = ()
    labels: Sequence[int] = ()
    repositories: str = ""
    cve_ids: str = ""
    tags: str = ""


@dataclass(frozen=True, slots=True)
class Execution:
    """Harbor's ScanDataExportExecution."""

    id: int
    user_id: int
    user_name: str
    status: str
    start_time: datetime
    end_time: datetime | None
    status_text: str
    file_present: bool
    job_name: str
    project: str = ""  # the name of the project exported, as it was when the export started


def _owner(who: Principal) -> str:
    """`u7` for user 7, `r3` for robot 3: who an export belongs to."""
    if who.user is not None:
        return f"u{who.user.user_id}"
    if who.robot is not None:
        return f"r{who.robot.id}"
    raise Unauthorized("sign in to export CVEs")


def _patterns(field: str, text: str) -> list[str] | None:
    """Harbor's pattern list: `{a,b}` or one pattern; None (everything) when empty or `**`."""
    text = text.strip()
    if len(text) > _MAX_CRITERION:
        raise BadRequest(f"{field} is longer than {_MAX_CRITERION} characters")
    if not text or text == "**":
        return None
    for pattern in [text[1:-1]] if text.startswith("{") and text.endswith("}") else [text]:
        if not pattern.strip():
            raise BadRequest(f"{field}: an empty pattern matches nothing")
    return [text]


def _cve_ids(text: str) -> list[str] | None:
    text = text.strip()
    if len(text) > _MAX_CRITERION * 16:
        raise BadRequest(f"cveIds is longer than {_MAX_CRITERION * 16} characters")
    ids = [part.strip() for part in text.strip("{}").split(",") if part.strip()]
    return ids or None


def _matches(name: str, patterns: list[str] | None) -> bool:
    return patterns is None or any(glob.globmatch(name, p, flags=_PATTERN_FLAGS) for p in patterns)


def csv_row(item: HubFinding, builtin_scanner: str) -> list[str]:
    finding = item.finding
    extra = {
        key: value
        for key, value in (("cvss_score_v3", finding.cvss_score), ("cvss_vector_v3", finding.cvss_vector))
        if value is not None
    }
    return [
        item.repository,
        item.digest,
        finding.vulnerability_id,
        finding.package,
        finding.version,
        finding.fixed_version or "",
        Severity(finding.severity).label,
        ",".join(finding.cwe_ids),
        json.dumps(extra, sort_keys=True) if extra else "",
        item.scanned_by.name if item.scanned_by is not None else builtin_scanner,
    ]


class CveExportService:
    def __init__(
        self,
        guard: Guard,
        jobs: JobStore,
        runner: JobRunner,
        scans: ScanStore,
        artifacts: ArtifactStore,
        files: ExportFiles,
        builtin_scanner: str,
        retention: timedelta = timedelta(days=1),
    ):
        self._guard = guard
        self._jobs = jobs
        self._runner = runner
        self._scans = scans
        self._artifacts = artifacts
        self._files = files
        self._builtin_scanner = builtin_scanner
        self.retention = retention

    # --- what the API asks -------------------------------------------------------------------

    async def start(self, who: Principal, criteria: ExportCriteria, data_type: str | None) -> JobRecord:
        owner = _owner(who)
        if (data_type or "").replace(" ", "").lower() != DATA_TYPE.replace(" ", "").lower():
            raise BadRequest(f"X-Scan-Data-Type must be {DATA_TYPE}")
        if len(criteria.projects) != 1:
            raise BadRequest("name exactly one project to export (projects: [id])")
        if criteria.labels:
            raise BadRequest("exporting by label is not supported: leave labels empty")
        if len(criteria.job_name) > 255:
            raise BadRequest("job_name is longer than 255 characters")
        repositories = _patterns("repositories", criteria.repositories)
        tags = _patterns("tags", criteria.tags)
        cve_ids = _cve_ids(criteria.cve_ids)
        project = await self._guard.project_for(who, criteria.projects[0], "export-cve", "create")
        parameters = {
            "owner": owner,
            "user_name": who.name,
            "job_name": criteria.job_name,
            "project_id": project.project_id,
            "project": project.name,
            "repositories": repositories,
            "tags": tags,
            "cve_ids": cve_ids,
        }
        return await self._runner.start(f"cve:{owner}", "Manual", parameters)

    async def executions(self, who: Principal) -> list[Execution]:
        """The newest of `who`'s exports."""
        owner = _owner(who)
        page = await self._jobs.list_jobs(f"cve:{owner}", None, 0, _LISTED_EXECUTIONS, True)
        present = await self._files.present([job.id for job in page.items])
        return [await self._execution(job, job.id in present) for job in page.items]

    async def execution(self, who: Principal, execution_id: int) -> Execution:
        job = await self._owned(who, execution_id)
        return await self._execution(job, bool(await self._files.present([job.id])))

    async def download(self, who: Principal, execution_id: int) -> tuple[str, bytes]:
        """(file name, CSV) of a finished export."""
        job = await self._owned(who, execution_id)
        content = await self._files.get_file(job.id, _owner(who)) if job.status == "Success" else None
        if content is None:
            state = "has expired" if job.status == "Success" else f"is {job.status.lower()}"
            raise NotFound(f"the file of CVE export {execution_id} {state}")
        return f"scandata_export_{job.id}.csv", content

    async def expire(self) -> int:
        """Forget the files older than the retention (periodic)."""
        return await self._files.expire_files(datetime.now(UTC) - self.retention)

    async def _owned(self, who: Principal, execution_id: int) -> JobRecord:
        owner = _owner(who)
        job = await self._jobs.get_job(execution_id) if 0 < execution_id < 2**31 else None
        if job is None or not job.kind.startswith("cve:"):
            raise NotFound(f"CVE export {execution_id} not found")
        if job.kind != f"cve:{owner}":
            raise Forbidden(f"CVE export {execution_id} is not {who.name}'s")
        return job

    async def _execution(self, job: JobRecord, file_present: bool) -> Execution:
        parameters = json.loads(job.parameters)
        result = json.loads(job.result) if job.result else {}
        owner = str(parameters.get("owner", ""))
        status_text = str(result.get("status_text", ""))
        if job.status == "Error" and not status_text:
            status_text = _last_error(await self._jobs.job_log(job.id) or "")
        return Execution(
            id=job.id,
            user_id=int(owner[1:]) if owner[1:].isdigit() else 0,
            user_name=str(parameters.get("user_name", "")),
            status=job.status,
            start_time=job.creation_time,
            end_time=job.update_time if job.status not in ("Pending", "Running") else None,
            status_text=status_text,
            file_present=file_present and job.status == "Success",
            job_name=str(parameters.get("job_name", "")),
            project=str(parameters.get("project", "")),
        )

    # --- the job -----------------------------------------------------------------------------

    async def job(self, parameters: Mapping[str, Any], journal: JobLog) -> Mapping[str, Any]:
        """The runner's `cve:*` handler: read the findings, write the CSV, keep the file."""
        project = await self._guard.project(int(parameters["project_id"]))
        if project.name != parameters["project"]:
            raise NotFound(f"project {parameters['project']} was deleted")
        repositories, tags = parameters.get("repositories"), parameters.get("tags")
        cve_ids = parameters.get("cve_ids")
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        rows, truncated, repository_count = 0, False, 0
        async for repository in self._repositories(project.name, repositories):
            await journal.checkpoint()
            repository_count += 1
            for criteria in await self._repository_criteria(repository, tags, cve_ids):
                room = MAX_ROWS - rows
                # One more than fits: whether anything is left out. Not counted (count_limit 0).
                found = await self._scans.list_findings(criteria, 0, room + 1, count_limit=0)
                for item in found.items[:room]:
                    writer.writerow(csv_row(item, self._builtin_scanner))
                rows += min(len(found.items), room)
                if len(found.items) > room:
                    truncated = True
                    break
            if truncated:
                break
        await self._files.put_file(journal.job_id, str(parameters["owner"]), out.getvalue().encode(), rows)
        status_text = f"{rows} findings of {repository_count} repositories of {project.name}"
        if truncated:
            status_text = f"the first {MAX_ROWS} findings of project {project.name}: narrow the export for the rest"
        journal.info(status_text)
        return {"rows": rows, "repositories": repository_count, "truncated": truncated, "status_text": status_text}

    async def _repositories(self, project: str, patterns: list[str] | None) -> Any:
        offset = 0
        while True:
            page = await self._artifacts.list_repositories(
                projects=[project], criteria=EVERYTHING.ordered(("name", False)), offset=offset, limit=_PAGE
            )
            for info in page.items:
                if _matches(info.name.split("/", 1)[1], patterns):
                    yield info.name
            offset += _PAGE
            if offset >= page.total or not page.items:
                return

    async def _repository_criteria(
        self, repository: str, tags: list[str] | None, cve_ids: list[str] | None
    ) -> list[Criteria]:
        """The list queries of one repository: all its findings, or those of the manifests its
        matching tags name (in batches of digests)."""
        base = Criteria().where("repository", Match("exact", (repository,)))
        if cve_ids:
            base = base.where("vulnerability", Match("any", tuple(cve_ids)))
        if tags is None:
            return [base]
        digests: set[str] = set()
        offset = 0
        while True:
            page = await self._artifacts.list_tags(repository, None, EVERYTHING, offset, _PAGE)
            digests.update(tag.digest for tag in page.items if _matches(tag.name, tags))
            offset += _PAGE
            if offset >= page.total or not page.items:
                break
        ordered = sorted(digests)
        return [
            base.where("digest", Match("any", tuple(ordered[at : at + _DIGEST_BATCH])))
            for at in range(0, len(ordered), _DIGEST_BATCH)
        ]


def _last_error(log: str) -> str:
    errors = [line.split("] ", 1)[-1] for line in log.splitlines() if "[ERROR]" in line]
    return errors[-1][:1024] if errors else "the export failed"
