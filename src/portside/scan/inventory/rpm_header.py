"""rpm's header structure, as the rpm database stores it (no lead, no header magic): two
big-endian int32s (index entry count, data store size), 16-byte index entries (tag, type,
offset into the store, count), then the data store."""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["RpmHeader", "RpmHeaderError", "parse_header"]

NAME, VERSION, RELEASE, EPOCH, LICENSE, ARCH, SOURCERPM = 1000, 1001, 1002, 1003, 1014, 1022, 1044

_INT32, _STRING, _STRING_ARRAY, _I18NSTRING = 4, 6, 8, 9
_ENTRY = struct.Struct(">iiii")
# A package has a few hundred tags at most; a count far beyond that is not a header.
_MAX_ENTRIES = 1 << 16
_MAGIC = b"\x8e\xad\xe8\x01\x00\x00\x00\x00"


class RpmHeaderError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class RpmHeader:
    name: str
    version: str
    release: str
    epoch: int | None
    arch: str | None
    source_rpm: str | None
    license: str | None

    @property
    def evr(self) -> str:
        """`epoch:version-release`, the epoch only when the package has one."""
        version_release = f"{self.version}-{self.release}" if self.release else self.version
        return f"{self.epoch}:{version_release}" if self.epoch is not None else version_release


def parse_header(blob: bytes) -> RpmHeader:
    if blob.startswith(_MAGIC):  # a header as it appears in a .rpm file, magic and all
        blob = blob[len(_MAGIC) :]
    if len(blob) < 8:
        raise RpmHeaderError("header shorter than its own size fields")
    count, store_size = struct.unpack_from(">ii", blob)
    store_at = 8 + count * _ENTRY.size
    if not 0 < count < _MAX_ENTRIES or store_size < 0 or store_at + store_size > len(blob):
        raise RpmHeaderError(f"header sizes do not fit the blob ({count} entries, {store_size} bytes)")
    store = blob[store_at : store_at + store_size]
    strings: dict[int, str] = {}
    numbers: dict[int, int] = {}
    for index in range(count):
        tag, kind, offset, items = _ENTRY.unpack_from(blob, 8 + index * _ENTRY.size)
        if not 0 <= offset < len(store):
            continue
        if kind in (_STRING, _STRING_ARRAY, _I18NSTRING):
            end = store.find(b"\0", offset)
            strings[tag] = store[offset : end if end >= 0 else len(store)].decode("utf-8", "replace")
        elif kind == _INT32 and items >= 1 and offset + 4 <= len(store):
            numbers[tag] = struct.unpack_from(">i", store, offset)[0]
    if NAME not in strings or VERSION not in strings:
        raise RpmHeaderError("header has no name or version")
    return RpmHeader(
        name=strings[NAME],
        version=strings[VERSION],
        release=strings.get(RELEASE, ""),
        epoch=numbers.get(EPOCH),
        arch=strings.get(ARCH) or None,
        source_rpm=strings.get(SOURCERPM) or None,
        license=strings.get(LICENSE) or None,
    )
