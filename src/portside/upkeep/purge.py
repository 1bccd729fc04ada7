"""Ending upload sessions nobody finishes, and staging areas no session owns.

A session idle longer than `upload_max_idle_seconds` loses its row (a conditional delete:
a request that touched it meanwhile keeps it) and then its staging area; so does the
tombstone of an ended session, by then its id has expired too. A staging area that no
live session owns and that has not changed for as long is a leftover (a crash between a
completion's commit and its cleanup, a first chunk that died before its session was
recorded, an abandoned S3 multipart upload). A session's first request makes its staging
area before its row, so a younger area without a row may be in use and is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from portside.meta.upkeep import UploadSweepStore
from portside.storage.driver import BlobStore
from portside.upkeep.jobs import Journal, PlainJournal

__all__ = ["PurgeResult", "UploadPurger"]


@dataclass(frozen=True, slots=True)
class PurgeResult:
    sessions: int
    staging_areas: int


class UploadPurger:
    def __init__(self, uploads: UploadSweepStore, store: BlobStore, max_idle_seconds: float):
        self._uploads = uploads
        self._store = store
        self._max_idle = timedelta(seconds=max_idle_seconds)

    async def purge(
        self, journal: Journal | None = None, *, dry_run: bool = False, now: datetime | None = None
    ) -> PurgeResult:
        journal = journal or PlainJournal()
        idle_before = (now or datetime.now(UTC)) - self._max_idle
        areas = [area.upload_id async for area in self._store.list_uploads() if area.modified < idle_before]
        owned = await self._uploads.existing_uploads(areas)
        sessions = 0
        for upload_id in await self._uploads.idle_uploads(idle_before):
            await journal.checkpoint()
            if dry_run:
                journal.info(
                    f"would purge upload session {upload_id} (idle since before {idle_before:%Y-%m-%d %H:%M:%S})"
                )
            elif await self._uploads.delete_idle_upload(upload_id, idle_before):
                await self._store.discard_upload(upload_id)
                journal.info(f"purged upload session {upload_id}, idle since before {idle_before:%Y-%m-%d %H:%M:%S}")
            else:
                continue
            sessions += 1
        leftovers = [upload_id for upload_id in areas if upload_id not in owned]
        for upload_id in leftovers:
            await journal.checkpoint()
            if not dry_run:
                await self._store.discard_upload(upload_id)
            journal.info(f"{'would discard' if dry_run else 'discarded'} staging area {upload_id} (no session)")
        return PurgeResult(sessions, len(leftovers))
