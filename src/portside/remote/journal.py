"""Where a copy notes the uploads it has open, so that a copy run again after its process
ended (killed, a lost connection, a laptop closed) resumes each blob it was sending from
the offset the destination holds, instead of sending the blob again from its first byte.

The engine asks for one thing of a journal (`UploadJournal`); `FileJournal` keeps it in one
JSON file, rewritten whole (and atomically) as uploads start, advance and end.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Protocol

__all__ = ["FileJournal", "UploadJournal"]


class UploadJournal(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, handle: str) -> None: ...

    def drop(self, key: str) -> None: ...


class FileJournal:
    """The open uploads, by `target/repository@digest`, in the JSON file at `path`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            loaded = {}
        self._entries: dict[str, str] = (
            {k: v for k, v in loaded.items() if isinstance(v, str)} if isinstance(loaded, dict) else {}
        )

    def get(self, key: str) -> str | None:
        return self._entries.get(key)

    def put(self, key: str, handle: str) -> None:
        if self._entries.get(key) != handle:
            self._entries[key] = handle
            self._save()

    def drop(self, key: str) -> None:
        if self._entries.pop(key, None) is not None:
            self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temporary = self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}")
        # The upload URLs carry no credentials, but a Distribution one is a capability to
        # write to that upload: readable by its owner only.
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(self._entries, out, indent=1)
        os.replace(temporary, self.path)
