"""Applying an image's layers, base first, to an in-memory tree of only the wanted files.

Each layer is a tar stream (gzip, uncompressed, or zstd when `zstandard` is importable) read
once, front to back, on a worker thread. Whiteouts follow the OCI image spec: `.wh.<name>`
removes `<name>` (and all below it) as lower layers left it, `.wh..wh..opq` hides everything
lower layers put in its directory; entries the same layer writes stay, whatever their order
in the archive."""

from __future__ import annotations

import importlib
import posixpath
import tarfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import replace
from typing import IO, Any

from portside.scan.inventory.detector import Detector
from portside.scan.inventory.files import ImageFiles, KeptFile, normalise, resolve
from portside.scan.inventory.rewind import Rewindable
from portside.scan.inventory.stream import ChunkPipe

__all__ = ["ImageTree", "read_layer"]

_WHITEOUT = ".wh."
_OPAQUE = ".wh..wh..opq"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def _zstandard() -> Any | None:
    try:
        return importlib.import_module("zstandard")
    except ImportError:
        return None


class ImageTree:
    """The kept files and all symlinks, each with the index of the layer that wrote it."""

    def __init__(self, detectors: Sequence[Detector]) -> None:
        self._detectors = tuple(detectors)
        self._kept: dict[str, tuple[KeptFile, ...]] = {}
        self._symlinks: dict[str, str] = {}  # link path -> target
        self._written_in: dict[str, int] = {}  # path (kept file or link) -> layer index
        self.notes: list[str] = []

    def files(self) -> ImageFiles:
        return ImageFiles(self._kept, self._symlinks)

    def apply(self, tar: tarfile.TarFile, digest: str, index: int) -> None:
        for member in tar:
            named = normalise(member.name)
            if named == "/":
                continue
            parent, base = posixpath.split(named)
            # A lower layer's symlinked directory (`/lib -> usr/lib`) is written through,
            # as the runtime's unpacking does: the entry lives where the link leads.
            parent = resolve(parent, self._symlinks) or parent
            path = posixpath.join(parent, base)
            if base == _OPAQUE:
                self._hide(parent, index, including_itself=False)
                continue
            if base.startswith(_WHITEOUT):
                self._hide(posixpath.join(parent, base[len(_WHITEOUT) :]), index, including_itself=True)
                continue
            # Whatever was at this path before is replaced, whatever this entry is.
            self._forget(path)
            if member.issym():
                self._symlinks[path] = member.linkname
                self._written_in[path] = index
            elif member.islnk():
                target_parent, target_base = posixpath.split(normalise(member.linkname))
                target_parent = resolve(target_parent, self._symlinks) or target_parent
                self._link(path, posixpath.join(target_parent, target_base), digest, index)
            elif member.isreg():
                self._keep(tar, member, path, named, digest, index)

    def _forget(self, path: str) -> None:
        self._kept.pop(path, None)
        self._symlinks.pop(path, None)
        self._written_in.pop(path, None)

    def _hide(self, path: str, index: int, *, including_itself: bool) -> None:
        prefix = path.rstrip("/") + "/"

        def hidden(candidate: str, written_in: int) -> bool:
            if written_in >= index:
                return False
            return candidate.startswith(prefix) or (including_itself and candidate == path)

        for candidate in [p for p, i in self._written_in.items() if hidden(p, i)]:
            self._forget(candidate)

    def _link(self, path: str, target: str, digest: str, index: int) -> None:
        """A hard link shares its target's bytes; it can only share them if they were kept."""
        found = self._kept.get(target)
        if found is None:
            if any(d.wants(path, 0o644) for d in self._detectors if not d.guesses):
                self.notes.append(f"{path} in layer {digest} is a hard link to {target}, which was not kept")
            return
        self._kept[path] = tuple(replace(kept, path=path, layer=digest) for kept in found)
        self._written_in[path] = index

    def _keep(
        self, tar: tarfile.TarFile, member: tarfile.TarInfo, path: str, named: str, digest: str, index: int
    ) -> None:
        readers = self._readers(member, path, named, digest)
        if not readers:
            return
        stream = tar.extractfile(member)
        if stream is None:
            return
        kept: list[KeptFile] = []
        if len(readers) == 1 and not readers[0].seeks:
            kept.extend(self._read(readers[0], stream, member, path, digest))
        else:
            # One stream, several readers (or one that seeks): what passes is recorded, so
            # each reader starts from the first byte and may seek back.
            with Rewindable(stream, member.size) as shared:
                for detector in readers:
                    shared.seek(0)
                    kept.extend(self._read(detector, shared, member, path, digest))
        if kept:
            self._kept[path] = tuple(kept)
            self._written_in[path] = index

    def _readers(self, member: tarfile.TarInfo, path: str, named: str, digest: str) -> list[Detector]:
        """The first detector that wants the file and may read one its size; when that one
        guesses, every later guessing detector that does too."""
        readers: list[Detector] = []
        for detector in self._detectors:
            if readers and not (readers[0].guesses and detector.guesses):
                continue
            if not (detector.wants(path, member.mode) or detector.wants(named, member.mode)):
                continue
            if member.size > detector.size_cap:
                if not detector.guesses:
                    self.notes.append(
                        f"skipped {path} in layer {digest}: {member.size} bytes is over "
                        f"the {detector.size_cap}-byte limit for {detector.name}"
                    )
                continue
            readers.append(detector)
        return readers

    @staticmethod
    def _read(
        detector: Detector, stream: IO[bytes], member: tarfile.TarInfo, path: str, digest: str
    ) -> Iterator[KeptFile]:
        data = detector.read(stream, member.size, path)
        if data is not None:
            yield KeptFile(path=path, data=data, layer=digest, kept_for=detector.name, size=member.size)


def read_layer(pipe: ChunkPipe, tree: ImageTree, digest: str, index: int) -> None:
    """Apply one layer read from `pipe` (blocking: run it on a worker thread). A layer that
    cannot be read is noted, and what was read of it before the fault stays applied."""
    try:
        source: Any = pipe
        if pipe.peek(4) == _ZSTD_MAGIC:
            zstandard = _zstandard()
            if zstandard is None:
                tree.notes.append(
                    f"layer {digest} is zstd-compressed and the zstandard module is not installed; it was not read"
                )
                return
            source = zstandard.ZstdDecompressor().stream_reader(pipe)
        with tarfile.open(fileobj=source, mode="r|*") as tar:
            tree.apply(tar, digest, index)
    except (tarfile.TarError, EOFError, zlib.error, ValueError) as exc:
        tree.notes.append(f"layer {digest} could not be read to its end: {exc}")
    finally:
        pipe.drain()
