"""Scan reports, inventories and findings on SQLAlchemy Core (meta/scans.py).

Claims are conditional updates of one row (its status and heartbeat as read), so two
instances racing for the same report see one of them win. An artifact list's summaries are
one query: the newest report per digest joined with the manifest's summary.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, desc, false, func, insert, or_, select, true, update

from portside.meta.accounts import Page
from portside.meta.events import CRITICAL_SEVERITY, CRITICAL_VULNERABILITY_FOUND, SCAN_STATUS_EVENTS
from portside.meta.scans import (
    ACTIVE_SCAN_STATUSES,
    ArtifactFinding,
    ArtifactPackage,
    ScanReport,
    ScanSummary,
    SecuritySummary,
    StoredFinding,
    StoredPackage,
    TagScan,
    purl_parts,
)
from portside.meta.sql.engine import now, utc
from portside.meta.sql.events import outbox_row
from portside.meta.sql.scan_rows import FINDING_COLUMNS as _FINDING_COLUMNS
from portside.meta.sql.scan_rows import finding as _finding
from portside.meta.sql.scan_rows import scanned_by as _scanned_by
from portside.meta.sql.schema import (
    event_outbox,
    manifest_refs,
    manifests,
    repo_manifests,
    repositories,
    scan_findings,
    scan_inventories,
    scan_packages,
    scan_reports,
    scan_summaries,
    tags,
)
from portside.meta.sql.security_hub import SqlSecurityHub
from portside.oci import mediatypes as mt

__all__ = ["SqlScans"]

_CLAIM_ATTEMPTS = 5


def _when(value: datetime | None) -> datetime | None:
    return utc(value) if value is not None else None


def _summary(row: Any) -> ScanSummary | None:
    if row.total is None:
        return None
    return ScanSummary(
        severity=row.severity,
        total=row.total,
        fixable=row.fixable,
        counts=json.loads(row.counts),
        db_generation=row.db_generation,
        matched_at=_when(row.matched_at),
        scanned_by=_scanned_by(row.scanner),
    )


def _report(row: Any, with_summary: bool = False) -> ScanReport:
    return ScanReport(
        id=row.id,
        repository=row.repository,
        digest=row.digest,
        scan_type=row.scan_type,
        status=row.status,
        trigger=row.trigger,
        stop_requested=bool(row.stop_requested),
        sbom_digest=row.sbom_digest,
        creation_time=utc(row.creation_time),
        start_time=_when(row.start_time),
        end_time=_when(row.end_time),
        update_time=utc(row.update_time),
        summary=_summary(row) if with_summary else None,
    )


_REPORT_COLUMNS = (
    scan_reports.c.id,
    scan_reports.c.repository,
    scan_reports.c.digest,
    scan_reports.c.scan_type,
    scan_reports.c.status,
    scan_reports.c.trigger,
    scan_reports.c.stop_requested,
    scan_reports.c.sbom_digest,
    scan_reports.c.creation_time,
    scan_reports.c.start_time,
    scan_reports.c.end_time,
    scan_reports.c.update_time,
)
_SUMMARY_COLUMNS = (
    scan_summaries.c.severity,
    scan_summaries.c.total,
    scan_summaries.c.fixable,
    scan_summaries.c.counts,
    scan_summaries.c.db_generation,
    scan_summaries.c.matched_at,
    scan_summaries.c.scanner,
)


class SqlScans(SqlSecurityHub):
    """ScanStore. Its writes change nothing the registry's caches hold: no notifications."""

    # --- reports and the queue ------------------------------------------------------------

    async def enqueue(self, repository: str, digest: str, scan_type: str, trigger: str) -> ScanReport | None:
        async with self._write() as conn:
            active = await conn.execute(
                select(scan_reports.c.id).where(
                    scan_reports.c.repository == repository,
                    scan_reports.c.digest == digest,
                    scan_reports.c.scan_type == scan_type,
                    scan_reports.c.status.in_(ACTIVE_SCAN_STATUSES),
                )
            )
            if active.first() is not None:
                return None
            when = now()
            report_id = str(uuid.uuid4())
            await conn.execute(
                insert(scan_reports).values(
                    id=report_id,
                    repository=repository,
                    digest=digest,
                    scan_type=scan_type,
                    status="Pending",
                    trigger=trigger,
                    stop_requested=False,
                    log="",
                    creation_time=when,
                    update_time=when,
                )
            )
            row = (await conn.execute(select(*_REPORT_COLUMNS).where(scan_reports.c.id == report_id))).one()
            return _report(row)

    async def claim(self, abandoned_before: datetime) -> ScanReport | None:
        for _ in range(_CLAIM_ATTEMPTS):
            async with self._read() as conn:
                candidate = (
                    await conn.execute(
                        select(scan_reports.c.id, scan_reports.c.status, scan_reports.c.update_time)
                        .where(
                            or_(
                                scan_reports.c.status == "Pending",
                                and_(scan_reports.c.status == "Running", scan_reports.c.update_time < abandoned_before),
                            )
                        )
                        .order_by(scan_reports.c.creation_time, scan_reports.c.id)
                        .limit(1)
                    )
                ).first()
            if candidate is None:
                return None
            when = now()
            async with self._write(notify=False) as conn:
                taken = await conn.execute(
                    update(scan_reports)
                    .where(
                        scan_reports.c.id == candidate.id,
                        scan_reports.c.status == candidate.status,
                        scan_reports.c.update_time == candidate.update_time,
                    )
                    .values(
                        status="Running",
                        start_time=when,
                        update_time=when,
                        log=scan_reports.c.log
                        + (
                            f"{when.isoformat()} taken again: its worker stopped reporting\n"
                            if candidate.status == "Running"
                            else ""
                        ),
                    )
                )
                if taken.rowcount == 1:
                    row = (await conn.execute(select(*_REPORT_COLUMNS).where(scan_reports.c.id == candidate.id))).one()
                    return _report(row)
        return None

    async def beat(self, report_id: str, log: str = "") -> bool:
        async with self._write(notify=False) as conn:
            await conn.execute(
                update(scan_reports)
                .where(scan_reports.c.id == report_id)
                .values(update_time=now(), log=scan_reports.c.log + log)
            )
            row = (
                await conn.execute(select(scan_reports.c.stop_requested).where(scan_reports.c.id == report_id))
            ).first()
            return bool(row.stop_requested) if row is not None else True

    async def finish(self, report_id: str, status: str, log: str = "", sbom_digest: str | None = None) -> None:
        when = now()
        values: dict[str, Any] = {"status": status, "end_time": when, "update_time": when}
        values["log"] = scan_reports.c.log + log
        if sbom_digest is not None:
            values["sbom_digest"] = sbom_digest
        async with self._write() as conn:
            await conn.execute(update(scan_reports).where(scan_reports.c.id == report_id).values(**values))
            event_type = SCAN_STATUS_EVENTS.get(status)
            found = (
                await conn.execute(
                    select(scan_reports.c.repository, scan_reports.c.digest, scan_reports.c.scan_type).where(
                        scan_reports.c.id == report_id
                    )
                )
            ).first()
            if event_type is not None and found is not None:
                payload = {"report_id": report_id, "scan_type": found.scan_type, "scan_status": status}
                row = outbox_row(event_type, found.repository, found.digest, payload)
                await conn.execute(insert(event_outbox), [row])

    async def get_report(self, report_id: str) -> ScanReport | None:
        async with self._read() as conn:
            row = (
                await conn.execute(
                    select(*_REPORT_COLUMNS, *_SUMMARY_COLUMNS)
                    .select_from(
                        scan_reports.outerjoin(scan_summaries, scan_summaries.c.digest == scan_reports.c.digest)
                    )
                    .where(scan_reports.c.id == report_id)
                )
            ).first()
        return _report(row, with_summary=True) if row is not None else None

    async def report_log(self, report_id: str) -> str | None:
        async with self._read() as conn:
            row = (await conn.execute(select(scan_reports.c.log).where(scan_reports.c.id == report_id))).first()
        return row.log if row is not None else None

    async def latest(
        self, repository: str, digests: Sequence[str], scan_types: Sequence[str]
    ) -> dict[tuple[str, str], ScanReport]:
        if not digests or not scan_types:
            return {}
        newest = (
            select(
                scan_reports.c.digest.label("digest"),
                scan_reports.c.scan_type.label("scan_type"),
                func.max(scan_reports.c.creation_time).label("creation_time"),
            )
            .where(
                scan_reports.c.repository == repository,
                scan_reports.c.scan_type.in_(list(scan_types)),
                scan_reports.c.digest.in_(list(digests)),
            )
            .group_by(scan_reports.c.digest, scan_reports.c.scan_type)
            .subquery()
        )
        statement = (
            select(*_REPORT_COLUMNS, *_SUMMARY_COLUMNS)
            .select_from(
                scan_reports.join(
                    newest,
                    and_(
                        newest.c.digest == scan_reports.c.digest,
                        newest.c.scan_type == scan_reports.c.scan_type,
                        newest.c.creation_time == scan_reports.c.creation_time,
                    ),
                ).outerjoin(scan_summaries, scan_summaries.c.digest == scan_reports.c.digest)
            )
            .where(scan_reports.c.repository == repository)
        )
        async with self._read() as conn:
            rows = (await conn.execute(statement)).all()
        return {(row.digest, row.scan_type): _report(row, with_summary=row.status == "Success") for row in rows}

    async def request_stop(self, repository: str, digest: str, scan_type: str) -> ScanReport | None:
        when = now()
        where = (
            scan_reports.c.repository == repository,
            scan_reports.c.digest == digest,
            scan_reports.c.scan_type == scan_type,
        )
        async with self._write(notify=False) as conn:
            # Nobody holds a Pending report: it ends here; a Running one ends at its next step.
            await conn.execute(
                update(scan_reports)
                .where(*where, scan_reports.c.status == "Pending")
                .values(status="Stopped", stop_requested=True, end_time=when, update_time=when)
            )
            await conn.execute(
                update(scan_reports).where(*where, scan_reports.c.status == "Running").values(stop_requested=True)
            )
            row = (
                await conn.execute(
                    select(*_REPORT_COLUMNS)
                    .where(*where, scan_reports.c.stop_requested.is_(True))
                    .order_by(scan_reports.c.creation_time.desc())
                    .limit(1)
                )
            ).first()
        return _report(row) if row is not None else None

    async def stop_queued(self, trigger: str) -> int:
        when = now()
        async with self._write(notify=False) as conn:
            pending = await conn.execute(
                update(scan_reports)
                .where(scan_reports.c.trigger == trigger, scan_reports.c.status == "Pending")
                .values(status="Stopped", stop_requested=True, end_time=when, update_time=when)
            )
            running = await conn.execute(
                update(scan_reports)
                .where(scan_reports.c.trigger == trigger, scan_reports.c.status == "Running")
                .values(stop_requested=True)
            )
        return int(pending.rowcount or 0) + int(running.rowcount or 0)

    async def status_counts(self, trigger: str | None = None) -> dict[str, int]:
        statement = select(scan_reports.c.status, func.count()).group_by(scan_reports.c.status)
        if trigger is not None:
            statement = statement.where(scan_reports.c.trigger == trigger)
        async with self._read() as conn:
            return {status: count for status, count in (await conn.execute(statement)).all()}

    async def top_artifacts(self, after: tuple[str, str] | None, limit: int) -> list[tuple[str, str]]:
        child = select(manifest_refs.c.child).where(
            manifest_refs.c.kind == "manifest", manifest_refs.c.child == repo_manifests.c.digest
        )
        statement = (
            select(repositories.c.name, repo_manifests.c.digest)
            .select_from(
                repo_manifests.join(repositories, repositories.c.id == repo_manifests.c.repo_id).join(
                    manifests, manifests.c.digest == repo_manifests.c.digest
                )
            )
            .where(manifests.c.subject.is_(None), manifests.c.media_type.in_(sorted(mt.MANIFESTS)), ~child.exists())
            .order_by(repositories.c.name, repo_manifests.c.digest)
            .limit(limit)
        )
        if after is not None:
            name, digest = after
            statement = statement.where(
                or_(repositories.c.name > name, and_(repositories.c.name == name, repo_manifests.c.digest > digest))
            )
        async with self._read() as conn:
            return [(row.name, row.digest) for row in (await conn.execute(statement)).all()]

    # --- inventories, findings, summaries -------------------------------------------------

    async def put_inventory(self, digest: str, inventory: bytes, packages: Sequence[StoredPackage] = ()) -> None:
        statement = self._insert(scan_inventories).values(digest=digest, inventory=inventory, created_at=now())
        statement = statement.on_conflict_do_update(
            index_elements=[scan_inventories.c.digest],
            set_={"inventory": statement.excluded.inventory, "created_at": statement.excluded.created_at},
        )
        rows = [_package_row(digest, package) for package in packages]
        async with self._write(notify=False) as conn:
            await conn.execute(statement)
            await conn.execute(delete(scan_packages).where(scan_packages.c.digest == digest))
            if rows:
                await conn.execute(insert(scan_packages), rows)

    async def get_inventory(self, digest: str) -> bytes | None:
        async with self._read() as conn:
            row = (
                await conn.execute(select(scan_inventories.c.inventory).where(scan_inventories.c.digest == digest))
            ).first()
        return bytes(row.inventory) if row is not None else None

    async def stale_inventories(self, generation: int, after: str | None, limit: int) -> list[str]:
        statement = (
            select(scan_inventories.c.digest)
            .select_from(
                scan_inventories.outerjoin(scan_summaries, scan_summaries.c.digest == scan_inventories.c.digest)
            )
            .where(or_(scan_summaries.c.db_generation.is_(None), scan_summaries.c.db_generation != generation))
            # An adapter's findings are its own: matching the inventory would replace them.
            .where(scan_summaries.c.scanner.is_(None))
            .order_by(scan_inventories.c.digest)
            .limit(limit)
        )
        if after is not None:
            statement = statement.where(scan_inventories.c.digest > after)
        async with self._read() as conn:
            return [row.digest for row in (await conn.execute(statement)).all()]

    async def replace_findings(self, digest: str, findings: Sequence[StoredFinding], summary: ScanSummary) -> None:
        rows = [
            {
                "digest": digest,
                "vulnerability_id": f.vulnerability_id,
                "advisory_id": f.advisory_id,
                "aliases": json.dumps(list(f.aliases)),
                "source": f.source,
                "ecosystem": f.ecosystem,
                "package": f.package,
                "version": f.version,
                "purl": f.purl,
                "path": f.path,
                "layer": f.layer,
                "fixed_version": f.fixed_version,
                "severity": f.severity,
                "cvss_score": f.cvss_score,
                "cvss_vector": f.cvss_vector,
                "cwe_ids": json.dumps(list(f.cwe_ids)),
                "links": json.dumps(list(f.links)),
                "description": f.description,
            }
            for f in findings
        ]
        values = {
            "severity": summary.severity,
            "total": summary.total,
            "fixable": summary.fixable,
            "counts": json.dumps(dict(summary.counts)),
            "db_generation": summary.db_generation,
            "matched_at": summary.matched_at or now(),
            "scanner": None if summary.scanned_by is None else json.dumps(asdict(summary.scanned_by)),
        }
        upsert = self._insert(scan_summaries).values(digest=digest, **values)
        upsert = upsert.on_conflict_do_update(index_elements=[scan_summaries.c.digest], set_=values)
        critical = sorted({f.vulnerability_id for f in findings if f.severity == CRITICAL_SEVERITY})
        async with self._write() as conn:
            if critical:
                # Which Critical vulnerabilities are new to this image: told once, when found.
                known = await conn.execute(
                    select(scan_findings.c.vulnerability_id).where(
                        scan_findings.c.digest == digest, scan_findings.c.severity == CRITICAL_SEVERITY
                    )
                )
                gained = [v for v in critical if v not in {row.vulnerability_id for row in known.all()}]
                if gained:
                    by = summary.scanned_by
                    payload = {"vulnerabilities": gained, "scanner": by.name if by is not None else "built-in"}
                    await conn.execute(
                        insert(event_outbox), [outbox_row(CRITICAL_VULNERABILITY_FOUND, None, digest, payload)]
                    )
            await conn.execute(delete(scan_findings).where(scan_findings.c.digest == digest))
            if rows:
                await conn.execute(insert(scan_findings), rows)
            await conn.execute(upsert)

    async def findings(self, digest: str) -> list[StoredFinding]:
        async with self._read() as conn:
            rows = await conn.execute(
                select(*_FINDING_COLUMNS)
                .where(scan_findings.c.digest == digest)
                .order_by(scan_findings.c.severity.desc(), scan_findings.c.vulnerability_id, scan_findings.c.package)
            )
            return [_finding(row) for row in rows.all()]

    async def summary(self, digest: str) -> ScanSummary | None:
        async with self._read() as conn:
            row = (await conn.execute(select(*_SUMMARY_COLUMNS).where(scan_summaries.c.digest == digest))).first()
        return _summary(row) if row is not None else None

    async def with_vulnerability(
        self, vulnerability_id: str, projects: Sequence[str] | None, limit: int
    ) -> list[ArtifactFinding]:
        condition = or_(
            scan_findings.c.vulnerability_id == vulnerability_id, scan_findings.c.advisory_id == vulnerability_id
        )
        return await self._held(condition, projects, limit)

    async def with_package(self, purl: str, projects: Sequence[str] | None, limit: int) -> list[ArtifactPackage]:
        name, version = purl_parts(purl)
        # A purl without a version names every version of the package.
        condition = scan_packages.c.purl_name == name
        if version is not None:
            condition = and_(condition, scan_packages.c.purl == f"{name}@{version}")
        if projects is not None and not projects:
            return []
        statement = (
            select(repositories.c.name.label("repository"), scan_packages)
            .select_from(
                scan_packages.join(repo_manifests, repo_manifests.c.digest == scan_packages.c.digest).join(
                    repositories, repositories.c.id == repo_manifests.c.repo_id
                )
            )
            .where(condition, _in_projects(projects))
            .order_by(repositories.c.name, scan_packages.c.digest, scan_packages.c.path)
            .limit(limit)
        )
        async with self._read() as conn:
            rows = (await conn.execute(statement)).all()
            digests = sorted({row.digest for row in rows})
            found = (
                (
                    await conn.execute(
                        select(scan_findings.c.digest, *_FINDING_COLUMNS).where(
                            scan_findings.c.digest.in_(digests), scan_findings.c.purl.startswith(name + "@")
                        )
                    )
                ).all()
                if digests
                else []
            )
        by_package: dict[tuple[str, str, str], list[StoredFinding]] = {}
        for row in found:
            by_package.setdefault((row.digest, row.path, row.version), []).append(_finding(row))
        return [
            ArtifactPackage(
                row.repository,
                row.digest,
                StoredPackage(row.ecosystem, row.name, row.version, row.purl, row.path, row.layer),
                tuple(by_package.get((row.digest, row.path, row.version), ())),
            )
            for row in rows
        ]

    async def security_summary(self, projects: Sequence[str] | None, top: int) -> SecuritySummary:
        if projects is not None and not projects:
            return SecuritySummary(0, 0, {}, 0, (), ())
        held = repo_manifests.join(repositories, repositories.c.id == repo_manifests.c.repo_id)
        within = _in_projects(projects)
        with_findings = held.join(scan_findings, scan_findings.c.digest == repo_manifests.c.digest)
        severe = [
            func.sum(case((scan_findings.c.severity == level, 1), else_=0)).label(f"s{level}") for level in (5, 4, 3)
        ]
        async with self._read() as conn:
            total = await conn.scalar(select(func.count()).select_from(held).where(within))
            scanned = await conn.scalar(
                select(func.count())
                .select_from(held.join(scan_summaries, scan_summaries.c.digest == repo_manifests.c.digest))
                .where(within)
            )
            by_severity = (
                await conn.execute(
                    select(
                        scan_findings.c.severity,
                        func.count(),
                        func.sum(case((scan_findings.c.fixed_version.is_not(None), 1), else_=0)),
                    )
                    .select_from(with_findings)
                    .where(within)
                    .group_by(scan_findings.c.severity)
                )
            ).all()
            # The worst findings, one per vulnerability: read in order of harm until `top`
            # distinct ones are in hand (a bounded read, not every finding).
            worst = (
                await conn.execute(
                    select(repositories.c.name.label("repository"), scan_findings.c.digest, *_FINDING_COLUMNS)
                    .select_from(with_findings)
                    .where(within)
                    .order_by(
                        desc(scan_findings.c.severity),
                        desc(func.coalesce(scan_findings.c.cvss_score, -1.0)),
                        scan_findings.c.vulnerability_id,
                    )
                    .limit(top * 50)
                )
            ).all()
            artifacts = (
                await conn.execute(
                    select(repositories.c.name, repo_manifests.c.digest, *severe)
                    .select_from(with_findings)
                    .where(within)
                    .group_by(repositories.c.name, repo_manifests.c.digest)
                    .order_by(desc("s5"), desc("s4"), desc("s3"), repositories.c.name)
                    .limit(top)
                )
            ).all()
        dangerous: dict[str, ArtifactFinding] = {}
        for row in worst:
            if len(dangerous) == top:
                break
            dangerous.setdefault(row.vulnerability_id, ArtifactFinding(row.repository, row.digest, _finding(row)))
        return SecuritySummary(
            total_artifacts=total or 0,
            scanned_artifacts=scanned or 0,
            counts={severity: count for severity, count, _ in by_severity},
            fixable=sum(fixable or 0 for _, _, fixable in by_severity),
            dangerous_findings=tuple(dangerous.values()),
            dangerous_artifacts=tuple(
                (row[0], row[1], {5: row.s5 or 0, 4: row.s4 or 0, 3: row.s3 or 0})
                for row in artifacts
                if (row.s5 or 0) + (row.s4 or 0) + (row.s3 or 0) > 0
            ),
        )

    async def tag_scans(self, repository: str, vulnerability_id: str, offset: int, limit: int) -> Page[TagScan]:
        held = tags.join(repositories, repositories.c.id == tags.c.repo_id)
        within = repositories.c.name == repository
        async with self._read() as conn:
            total = await conn.scalar(select(func.count()).select_from(held).where(within))
            rows = (
                await conn.execute(
                    select(tags.c.name, tags.c.digest, tags.c.updated_at)
                    .select_from(held)
                    .where(within)
                    .order_by(desc(tags.c.updated_at), self._bytewise(tags.c.name))
                    .offset(offset)
                    .limit(limit)
                )
            ).all()
            # An index is scanned as its child manifests: theirs are its findings.
            children: dict[str, set[str]] = {row.digest: {row.digest} for row in rows}
            if children:
                refs = await conn.execute(
                    select(manifest_refs.c.parent, manifest_refs.c.child).where(
                        manifest_refs.c.parent.in_(sorted(children)), manifest_refs.c.kind == "manifest"
                    )
                )
                for parent, child in refs.all():
                    children[parent].add(child)
            every = sorted(set().union(*children.values())) if children else []
            scanned: set[str] = set()
            found: dict[str, list[StoredFinding]] = {}
            if every:
                summaries = select(scan_summaries.c.digest).where(scan_summaries.c.digest.in_(every))
                scanned = {digest for (digest,) in (await conn.execute(summaries)).all()}
                matching = await conn.execute(
                    select(scan_findings.c.digest, *_FINDING_COLUMNS)
                    .where(
                        scan_findings.c.digest.in_(every),
                        or_(
                            scan_findings.c.vulnerability_id == vulnerability_id,
                            scan_findings.c.advisory_id == vulnerability_id,
                        ),
                    )
                    .order_by(scan_findings.c.digest, scan_findings.c.package, scan_findings.c.id)
                )
                for row in matching.all():
                    found.setdefault(row.digest, []).append(_finding(row))
        return Page(
            [
                TagScan(
                    tag=row.name,
                    digest=row.digest,
                    pushed_at=utc(row.updated_at),
                    scanned=bool(children[row.digest] & scanned),
                    # One finding per (vulnerability, package, version): an index's children
                    # often hold the same package.
                    findings=tuple(
                        {
                            (f.vulnerability_id, f.package, f.version): f
                            for d in sorted(children[row.digest])
                            for f in found.get(d, ())
                        }.values()
                    ),
                )
                for row in rows
            ],
            total or 0,
        )

    async def _held(self, condition: Any, projects: Sequence[str] | None, limit: int) -> list[ArtifactFinding]:
        statement = (
            select(repositories.c.name.label("repository"), scan_findings.c.digest, *_FINDING_COLUMNS)
            .select_from(
                scan_findings.join(repo_manifests, repo_manifests.c.digest == scan_findings.c.digest).join(
                    repositories, repositories.c.id == repo_manifests.c.repo_id
                )
            )
            .where(condition)
            .order_by(repositories.c.name, scan_findings.c.digest, scan_findings.c.package)
            .limit(limit)
        )
        if projects is not None:
            if not projects:
                return []
            statement = statement.where(_in_projects(projects))
        async with self._read() as conn:
            return [
                ArtifactFinding(row.repository, row.digest, _finding(row))
                for row in (await conn.execute(statement)).all()
            ]


def _package_row(digest: str, package: StoredPackage) -> dict[str, Any]:
    name, version = purl_parts(package.purl)
    purl = name if version is None else f"{name}@{version}"
    return {
        "digest": digest,
        "ecosystem": package.ecosystem,
        "name": package.name,
        "version": package.version,
        "purl": purl,
        "purl_name": name,
        "path": package.path,
        "layer": package.layer,
    }


def _in_projects(projects: Sequence[str] | None) -> Any:
    """Repositories of `projects` (None: of every project)."""
    if projects is None:
        return true()
    return or_(false(), *(repositories.c.name.startswith(project + "/", autoescape=True) for project in projects))
