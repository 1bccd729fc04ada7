"""What a detector is: which files it wants kept while layers stream past, how much of each,
and a pure function from the kept files to the packages they describe."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from portside.scan.inventory.files import ImageFiles
from portside.scan.model import OperatingSystem, Package

__all__ = ["MiB", "Detector", "Found", "read_whole"]

MiB = 1 << 20


@dataclass(frozen=True, slots=True)
class Found:
    """What one detector found: packages, and what it could not read, said plainly."""

    packages: tuple[Package, ...] = ()
    notes: tuple[str, ...] = ()


def read_whole(stream: IO[bytes], size: int, path: str) -> bytes | None:
    """Keep the whole file (the default for databases and metadata files)."""
    return stream.read(size)


@dataclass(frozen=True, slots=True)
class Detector:
    """`wants(path, mode)` is asked for every regular file of every layer; `read` turns a
    wanted file's stream into what is kept (the whole file, an excerpt, or None for "not
    mine after all"); files larger than `size_cap` are skipped with a note. A file goes to
    the first detector that wants it; if that one guesses, every later guessing detector
    that wants it reads it too, each from its first byte (one stream: what the first read
    is replayed to the next)."""

    name: str
    wants: Callable[[str, int], bool]
    detect: Callable[[ImageFiles, OperatingSystem | None], Found]
    size_cap: int = 64 * MiB
    read: Callable[[IO[bytes], int, str], bytes | None] = read_whole
    # A detector that guesses (asks for files it may only recognise by content, such as any
    # executable) is not told of files it could not have: over the cap, or hard links to them.
    guesses: bool = False
    # `read` seeks in the stream (back to what has passed, too): it is given one that can.
    seeks: bool = False
