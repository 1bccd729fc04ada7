"""Building image layers for inventory tests: real tar (or tar.gz) bytes, deterministic
(fixed times, owners and order), handed over as `LayerBlob`s that stream in chunks."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from portside.scan.model import LayerBlob

TAR = "application/vnd.oci.image.layer.v1.tar"
TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Entry:
    """One tar member: a file (data), a directory, a symlink or a hard link (target)."""

    path: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    target: str = ""
    mode: int = 0o644


def file(path: str, data: bytes | str, mode: int = 0o644) -> Entry:
    return Entry(path, data.encode() if isinstance(data, str) else data, mode=mode)


def directory(path: str) -> Entry:
    return Entry(path, kind=tarfile.DIRTYPE, mode=0o755)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, kind=tarfile.SYMTYPE, target=target, mode=0o777)


def hardlink(path: str, target: str) -> Entry:
    return Entry(path, kind=tarfile.LNKTYPE, target=target)


def whiteout(path: str) -> Entry:
    parent, _, name = path.rpartition("/")
    return file(f"{parent}/.wh.{name}", b"")


def opaque(directory_path: str) -> Entry:
    return file(f"{directory_path.rstrip('/')}/.wh..wh..opq", b"")


def _info(entry: Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path.lstrip("/"))
    info.type = entry.kind
    info.mode = entry.mode
    info.mtime = 1_700_000_000
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.linkname = entry.target.lstrip("/") if entry.kind == tarfile.LNKTYPE else entry.target
    info.size = len(entry.data) if entry.kind == tarfile.REGTYPE else 0
    return info


def tar_bytes(entries: Iterable[Entry], *, compress: bool = False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = _info(entry)
            tar.addfile(info, io.BytesIO(entry.data) if entry.kind == tarfile.REGTYPE else None)
    data = buffer.getvalue()
    return gzip.compress(data, mtime=0) if compress else data


def layer(data: bytes, media_type: str = TAR, chunk: int = CHUNK) -> LayerBlob:
    """A blob of these bytes, streamed `chunk` bytes at a time."""

    async def chunks() -> AsyncIterator[bytes]:
        for at in range(0, len(data), chunk):
            yield data[at : at + chunk]

    return LayerBlob(
        digest=f"sha256:{hashlib.sha256(data).hexdigest()}", media_type=media_type, size=len(data), open=chunks
    )


def layer_of(*entries: Entry, compress: bool = False) -> LayerBlob:
    return layer(tar_bytes(entries, compress=compress), TAR_GZIP if compress else TAR)


def streamed_layer(digest: str, size: int, produce: Callable[[], Iterator[bytes]]) -> LayerBlob:
    """A blob whose bytes are made as they are read (for layers too big to hold)."""

    async def chunks() -> AsyncIterator[bytes]:
        for piece in produce():
            yield piece

    return LayerBlob(digest=digest, media_type=TAR, size=size, open=chunks)


def file_layer(path: Path, media_type: str = TAR) -> LayerBlob:
    """A tar file on disk as a blob, read chunk by chunk (its digest is computed once)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while piece := handle.read(1 << 20):
            digest.update(piece)

    async def chunks() -> AsyncIterator[bytes]:
        with path.open("rb") as handle:
            while piece := handle.read(1 << 20):
                yield piece

    return LayerBlob(
        digest=f"sha256:{digest.hexdigest()}", media_type=media_type, size=path.stat().st_size, open=chunks
    )
