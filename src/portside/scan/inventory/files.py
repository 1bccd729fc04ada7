"""The files of an image that detectors asked for, as the applied layers leave them.

Only kept files carry bytes; symlinks are remembered for every path so that a lookup such
as `/etc/os-release -> ../usr/lib/os-release` lands on the file the layers actually wrote."""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ImageFiles", "KeptFile", "normalise", "resolve"]

# A symlink chain longer than this is a loop (Linux gives up at 40 as well).
_MAX_SYMLINK_HOPS = 40


def normalise(name: str) -> str:
    """A tar member name (`./etc/x`, `etc/x/`) as an absolute, clean image path."""
    path = posixpath.normpath("/" + name.lstrip("/"))
    # normpath keeps a leading `//`, which POSIX allows to mean something else; images do not.
    return "/" + path.lstrip("/")


@dataclass(frozen=True, slots=True)
class KeptFile:
    """One file a detector asked for: its bytes (or the excerpt its detector keeps), and the
    digest of the layer that last wrote it."""

    path: str
    data: bytes
    layer: str
    kept_for: str  # the detector that asked for it
    size: int  # the file's full size in the image (data may be an excerpt)


class ImageFiles:
    """A read-only view of the kept files, resolving symlinks the way the kernel would.
    A path may be kept for several detectors (an ELF file for both Go and Rust), each
    with what it keeps of it."""

    def __init__(self, kept: Mapping[str, Sequence[KeptFile]], symlinks: Mapping[str, str]) -> None:
        self._kept = {path: tuple(files) for path, files in kept.items() if files}
        self._symlinks = dict(symlinks)

    def __len__(self) -> int:
        return len(self._kept)

    def kept_for(self, detector: str) -> Iterator[KeptFile]:
        """The files kept for one detector, in path order (so results are deterministic)."""
        for path in sorted(self._kept):
            for kept in self._kept[path]:
                if kept.kept_for == detector:
                    yield kept

    def get(self, path: str) -> KeptFile | None:
        """The kept file at `path` (what its first reader kept), following symlinks in any
        component; None when absent."""
        resolved = self.resolve(path)
        found = None if resolved is None else self._kept.get(resolved)
        return found[0] if found else None

    def resolve(self, path: str) -> str | None:
        """`path` with every symlink along it followed; None for a loop."""
        return resolve(path, self._symlinks)


def resolve(path: str, symlinks: Mapping[str, str]) -> str | None:
    """`path` with every symlink along it (`symlinks`: link path -> target) followed, the
    way the kernel would; None for a loop."""
    parts = [p for p in normalise(path).split("/") if p]
    done = ""
    hops = 0
    while parts:
        part = parts.pop(0)
        candidate = f"{done}/{part}"
        target = symlinks.get(candidate)
        if target is None:
            done = candidate
            continue
        hops += 1
        if hops > _MAX_SYMLINK_HOPS:
            return None
        base = "" if target.startswith("/") else done
        rest = [p for p in normalise(f"{base}/{target}").split("/") if p]
        parts = rest + parts
        done = ""
    return done or "/"
