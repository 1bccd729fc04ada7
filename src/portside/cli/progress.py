"""How a copy's progress is shown: bars on a terminal, lines otherwise (`portside copy`,
`portside sync`). Both are `ProgressListener`s of the copy engine, called on its event loop."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from portside.remote.copy import BlobOutcome, ManifestOutcome, ProgressListener

__all__ = ["LineProgress", "RichProgress"]


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


def _named(repository: str, reference: str) -> str:
    return f"{repository}@{reference}" if ":" in reference else f"{repository}:{reference}"


class RichProgress(ProgressListener):
    """A bar per blob in flight and one for the whole copy, with rate and time left; a blob's
    bar goes when it is done, leaving one line saying what happened to it."""

    def __init__(self) -> None:
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(file=sys.stderr),
        )
        self._total = self._progress.add_task("total", total=0)
        self._blobs: dict[str, TaskID] = {}
        self._done: dict[str, int] = {}
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def blob_started(self, digest: str, size: int) -> None:
        self._blobs[digest] = self._progress.add_task(_short(digest), total=size)
        self._done[digest] = 0
        total = self._progress.tasks[self._total].total or 0
        self._progress.update(self._total, total=total + size)

    def blob_progress(self, digest: str, done: int) -> None:
        task = self._blobs.get(digest)
        if task is None:
            return
        self._progress.update(task, completed=done)
        self._progress.advance(self._total, done - self._done[digest])
        self._done[digest] = done

    def blob_done(self, digest: str, size: int, outcome: BlobOutcome) -> None:
        task = self._blobs.pop(digest, None)
        if task is not None:
            self._progress.remove_task(task)
        self._progress.advance(self._total, size - self._done.pop(digest, 0))
        self._say(f"blob {_short(digest)} {outcome} ({size} bytes)")

    def manifest_done(self, repository: str, reference: str, digest: str, outcome: ManifestOutcome) -> None:
        if outcome != "present":
            self._say(f"manifest {_named(repository, reference)} {outcome}")

    def _say(self, line: str) -> None:
        # Said as is: names and digests are neither rich markup nor worth colouring.
        self._progress.console.print(line, markup=False, highlight=False)


class LineProgress(ProgressListener):
    """One line per blob and manifest on standard error, for logs and pipes."""

    def blob_done(self, digest: str, size: int, outcome: BlobOutcome) -> None:
        print(f"blob {digest} {outcome} {size}", file=sys.stderr, flush=True)

    def manifest_done(self, repository: str, reference: str, digest: str, outcome: ManifestOutcome) -> None:
        print(f"manifest {_named(repository, reference)} {digest} {outcome}", file=sys.stderr, flush=True)
