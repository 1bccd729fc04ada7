"""The dependency list `cargo auditable` embeds in the programs it builds: an ELF section
`.dep-v0` holding zlib-compressed JSON, `{"packages": [...]}`, one object per package of
the build with its `name`, `version`, `source` (`crates.io`, `git`, `local`, `registry`, or
something newer), `kind` (`build` or `runtime`, absent meaning runtime), `dependencies`
(indexes into the list) and `root` (absent meaning false), as the format's JSON schema
(cargo-auditable.schema.json) defines them."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from typing import IO, Any

from portside.scan.inventory.elf import MAGIC, ElfError, find_section

__all__ = ["SECTION", "AuditDataError", "Crate", "excerpt", "parse"]

SECTION = b".dep-v0"
# Real lists are a few kilobytes for hundreds of crates; the bounds are far above that.
_MAX_COMPRESSED = 4 << 20
_MAX_JSON = 64 << 20


class AuditDataError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Crate:
    name: str
    version: str
    source: str  # crates.io, git, local, registry, ...
    build_only: bool  # a build dependency (build scripts, proc macros): not linked in
    root: bool


def excerpt(stream: IO[bytes], size: int, path: str = "") -> bytes | None:
    """The compressed content of an ELF file's `.dep-v0` section (empty when it is empty or
    too large to keep); None for anything that is not an ELF file with that section.
    `stream` must be seekable: the section table that says where the section is comes at
    the end of the file, after the section."""
    if stream.read(4) != MAGIC:
        return None
    try:
        return find_section(stream, size, SECTION, _MAX_COMPRESSED)
    except ElfError:
        return None  # not a well-formed ELF file: nothing says it carries the list


def _inflate(blob: bytes) -> bytes:
    if not blob:
        raise AuditDataError(f"the section is empty or over {_MAX_COMPRESSED} bytes")
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(blob, _MAX_JSON)
    except zlib.error as exc:
        raise AuditDataError(f"not zlib data ({exc})") from None
    if inflater.unconsumed_tail:
        raise AuditDataError(f"it inflates to more than {_MAX_JSON} bytes")
    if not inflater.eof:
        raise AuditDataError("the zlib stream is truncated")
    return data


def _crate(entry: Any) -> Crate | None:
    if not isinstance(entry, dict):
        return None
    name, version, source = entry.get("name"), entry.get("version"), entry.get("source")
    if not (isinstance(name, str) and name and isinstance(version, str) and version):
        return None
    return Crate(
        name=name,
        version=version,
        # A source the schema adds later may be an object ({"Other": "..."}): not crates.io.
        source=source if isinstance(source, str) else json.dumps(source),
        build_only=entry.get("kind") == "build",
        root=entry.get("root") is True,
    )


def parse(blob: bytes) -> tuple[tuple[Crate, ...], int]:
    """The crates of a `.dep-v0` section's content, and how many entries named no crate
    (no name or version); `AuditDataError` when the section is not the format at all."""
    data = _inflate(blob)
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AuditDataError(f"not JSON ({exc})") from None
    packages = document.get("packages") if isinstance(document, dict) else None
    if not isinstance(packages, list):
        raise AuditDataError('no "packages" list')
    crates = [_crate(entry) for entry in packages]
    found = tuple(c for c in crates if c is not None)
    return found, len(crates) - len(found)
