"""The build information the Go linker embeds in every binary (Go's `debug/buildinfo`): a
32-byte header starting `\\xff Go buildinf:`, then, since Go 1.18, the toolchain version and
the module information inline as varint-length-prefixed strings. Before 1.18 the header held
pointers into the binary instead; that form is recognised and reported, not resolved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO

__all__ = ["MAGIC", "BuildInfo", "BuildInfoError", "Module", "excerpt", "is_pointer_form", "parse"]

MAGIC = b"\xff Go buildinf:"
_HEADER = 32
_FLAG_INLINE = 0x2
_CHUNK = 1 << 20
# Module info runs to tens of kilobytes for the largest programs; far beyond is not build info.
_MAX_STRING = 4 << 20
# The module info is framed by 16 bytes on either side (cmd/go's modinfo sentinels).
_SENTINEL = 16


class BuildInfoError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Module:
    path: str
    version: str


@dataclass(frozen=True, slots=True)
class BuildInfo:
    go_version: str  # go1.21.3
    command: str | None  # the main package's import path
    main: Module | None
    deps: tuple[Module, ...]


def _uvarint(data: bytes, at: int) -> tuple[int, int] | None:
    """(value, offset after it), or None when `data` ends inside the varint."""
    value = shift = 0
    while at < len(data):
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at += 1
        if byte < 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise BuildInfoError("varint too long")
    return None


def _inline_length(data: bytes, at: int) -> int | None:
    """The length of an inline blob starting at `at`; None if `data` ends before we know."""
    position = at + _HEADER
    for _ in range(2):
        decoded = _uvarint(data, position)
        if decoded is None:
            return None
        length, position = decoded
        if length > _MAX_STRING:
            raise BuildInfoError("string too long")
        position += length
    return position - at


def _plausible(data: bytes, at: int) -> bool | None:
    """Whether the header at `at` is real build info, None if more bytes are needed. The
    magic also occurs as a string constant in programs that read build info themselves."""
    if len(data) < at + _HEADER + 3:
        return None
    pointer_size, flags = data[at + 14], data[at + 15]
    if pointer_size not in (4, 8) or flags & ~0x3:
        return False
    if not flags & _FLAG_INLINE:
        return True
    decoded = _uvarint(data, at + _HEADER)
    if decoded is None:
        return None
    length, start = decoded
    head = data[start : start + min(length, 5)]
    if len(head) < min(length, 5):
        return None
    return 2 <= length <= 64 and (head.startswith(b"go") or head.startswith(b"devel"))


def excerpt(stream: IO[bytes], size: int, path: str = "") -> bytes | None:
    """Scan an ELF file as it streams past and keep only its build info blob (or the
    pre-1.18 header), so no binary is held in memory whole. None for anything else."""
    if stream.read(4) != b"\x7fELF":
        return None
    data = b""
    searched = 0  # offsets below this hold no magic that starts a real header
    pointer_form: bytes | None = None
    exhausted = False
    while True:
        at = data.find(MAGIC, searched)
        if at < 0:
            if exhausted:
                return pointer_form
            keep = max(0, len(data) - len(MAGIC) + 1)
            data, searched = data[keep:], 0
            chunk = stream.read(_CHUNK)
            exhausted = not chunk
            data += chunk
            continue
        try:
            plausible = _plausible(data, at)
            length = _inline_length(data, at) if plausible and data[at + 15] & _FLAG_INLINE else _HEADER
        except BuildInfoError:
            plausible, length = False, 0
        if (plausible is None or length is None or len(data) < at + length) and not exhausted:
            chunk = stream.read(_CHUNK)
            exhausted = not chunk
            data += chunk
            continue
        if plausible and length is not None and len(data) >= at + length:
            blob = data[at : at + length]
            if blob[15] & _FLAG_INLINE:
                return blob
            pointer_form = pointer_form or blob
        searched = at + 1


def _string(data: bytes, at: int) -> tuple[bytes, int]:
    decoded = _uvarint(data, at)
    if decoded is None:
        raise BuildInfoError("truncated")
    length, start = decoded
    if start + length > len(data):
        raise BuildInfoError("truncated")
    return data[start : start + length], start + length


def is_pointer_form(blob: bytes) -> bool:
    return len(blob) >= _HEADER and blob.startswith(MAGIC) and not blob[15] & _FLAG_INLINE


def parse(blob: bytes) -> BuildInfo:
    if not blob.startswith(MAGIC) or len(blob) < _HEADER:
        raise BuildInfoError("no build info header")
    if is_pointer_form(blob):
        raise BuildInfoError("build info in the pointer form of Go before 1.18")
    version, after = _string(blob, _HEADER)
    raw, _ = _string(blob, after)
    if len(raw) >= 2 * _SENTINEL + 1 and raw[-_SENTINEL - 1] == ord("\n"):
        raw = raw[_SENTINEL:-_SENTINEL]
    else:
        raw = b""
    return _modules(version.decode("utf-8", "replace"), raw.decode("utf-8", "replace"))


def _modules(go_version: str, text: str) -> BuildInfo:
    command: str | None = None
    main: Module | None = None
    deps: list[Module] = []
    for line in text.splitlines():
        fields = line.split("\t")
        kind = fields[0]
        if kind == "path" and len(fields) >= 2:
            command = fields[1]
        elif kind == "mod" and len(fields) >= 3:
            main = Module(fields[1], fields[2])
        elif kind == "dep" and len(fields) >= 3:
            deps.append(Module(fields[1], fields[2]))
        elif kind == "=>" and len(fields) >= 2:
            # What was built in is the replacement; a replacement by a local directory
            # (no version, or `(devel)`) is no published release, so the original stands.
            if len(fields) < 3 or fields[2] in ("", "(devel)"):
                continue
            if deps:
                deps[-1] = Module(fields[1], fields[2])
            elif main is not None:
                main = Module(fields[1], fields[2])
    return BuildInfo(go_version=go_version, command=command, main=main, deps=tuple(deps))
