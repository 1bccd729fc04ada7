"""Scan data follows its artifact: called inside the transaction that removes an artifact
(a manifest's link to a repository), so no report outlives the artifact it is of.

Reports are the artifact's (repository and digest) and go with it. Inventories, their
package index, findings and summaries are the content's (manifest digest, shared by every
repository holding it), so they go only when no repository holds the digest any more.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncConnection

from portside.meta.sql.schema import (
    repo_manifests,
    scan_findings,
    scan_inventories,
    scan_packages,
    scan_reports,
    scan_summaries,
)

__all__ = ["forget_artifact_scans", "forget_unheld_scans"]


async def forget_artifact_scans(conn: AsyncConnection, repository: str, digest: str) -> None:
    """The artifact `repository@digest` is gone (its link deleted in `conn`'s transaction)."""
    await conn.execute(
        delete(scan_reports).where(scan_reports.c.repository == repository, scan_reports.c.digest == digest)
    )
    await forget_unheld_scans(conn, (digest,))


async def forget_unheld_scans(conn: AsyncConnection, digests: Iterable[str]) -> None:
    """The content rows of those of `digests` no repository holds any more."""
    for digest in digests:
        held = exists(select(1).where(repo_manifests.c.digest == digest))
        if (await conn.execute(select(held))).scalar():
            continue
        for table in (scan_packages, scan_findings, scan_summaries, scan_inventories):
            await conn.execute(delete(table).where(table.c.digest == digest))
