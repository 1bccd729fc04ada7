"""Protocol of the CVE exports' files: the CSV each export job wrote, kept for its owner
until it expires (the jobs themselves are `meta.upkeep.JobStore`'s)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Protocol

__all__ = ["ExportFiles"]


class ExportFiles(Protocol):
    async def put_file(self, job_id: int, owner: str, content: bytes, rows: int) -> None:
        """Keep job `job_id`'s file (`content` as it will be downloaded), replacing any."""

    async def get_file(self, job_id: int, owner: str) -> bytes | None:
        """The file of `owner`'s job `job_id`; None when there is none (or it is another's)."""

    async def present(self, job_ids: Collection[int]) -> set[int]:
        """Which of `job_ids` still have their file."""

    async def expire_files(self, before: datetime) -> int:
        """Forget the files written before `before`; how many."""
