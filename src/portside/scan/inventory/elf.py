"""Finding a named section in an ELF file (the System V gABI, "Object Files"): the file
header gives the class (32 or 64 bits), the byte order and where the section header table
is; the table gives each section's offset and size, and its names are in the section that
`e_shstrndx` points at. Linkers write the table after the sections it describes, at the end
of the file, so the reader must be able to seek back (`rewind.Rewindable` for a layer's
stream). Large section counts and string-table indexes (`e_shnum` 0, `e_shstrndx`
`SHN_XINDEX`) are taken from section 0, as the gABI extends them."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import IO

__all__ = ["MAGIC", "ElfError", "ElfHeader", "Section", "find_section", "header"]

MAGIC = b"\x7fELF"
_CLASS_32, _CLASS_64 = 1, 2
_DATA_LSB, _DATA_MSB = 1, 2
_IDENT = 16
# After e_ident: type, machine, version, entry, phoff, shoff, flags, ehsize, phentsize,
# phnum, shentsize, shnum, shstrndx.
_HEADER = {_CLASS_32: "HHIIIIIHHHHHH", _CLASS_64: "HHIQQQIHHHHHH"}
# name, type, flags, addr, offset, size, link, info, addralign, entsize.
_SECTION = {_CLASS_32: "IIIIIIIIII", _CLASS_64: "IIQQQQIIQQ"}
_SHN_XINDEX = 0xFFFF
_SHT_NOBITS = 8
# A section table or name table beyond these sizes is not an executable's.
_MAX_TABLE = 16 << 20
_MAX_NAMES = 16 << 20


class ElfError(ValueError):
    """The file says it is ELF, but its headers do not hold together."""


@dataclass(frozen=True, slots=True)
class ElfHeader:
    bits: int  # 32 or 64
    byte_order: str  # "<" little-endian, ">" big-endian (struct's notation)
    shoff: int  # where the section header table starts, 0 when there is none
    shentsize: int
    shnum: int  # as the file header has it (0 when section 0 holds the count)
    shstrndx: int  # as the file header has it (SHN_XINDEX when section 0 holds it)

    @property
    def size(self) -> int:
        return 52 if self.bits == 32 else 64

    @property
    def _class(self) -> int:
        return _CLASS_32 if self.bits == 32 else _CLASS_64


@dataclass(frozen=True, slots=True)
class Section:
    name: int  # offset of the name in the section name table
    type: int
    offset: int
    size: int
    link: int


def header(first: bytes) -> ElfHeader | None:
    """The file header from the first 64 bytes of a file; None when it is not ELF (or its
    class or byte order is none the gABI defines)."""
    if len(first) < _IDENT or not first.startswith(MAGIC):
        return None
    elf_class, data = first[4], first[5]
    if elf_class not in _HEADER or data not in (_DATA_LSB, _DATA_MSB):
        return None
    order = "<" if data == _DATA_LSB else ">"
    layout = order + _HEADER[elf_class]
    if len(first) < _IDENT + struct.calcsize(layout):
        return None
    fields = struct.unpack_from(layout, first, _IDENT)
    shoff, shentsize, shnum, shstrndx = fields[5], fields[10], fields[11], fields[12]
    return ElfHeader(
        bits=32 if elf_class == _CLASS_32 else 64,
        byte_order=order,
        shoff=shoff,
        shentsize=shentsize,
        shnum=shnum,
        shstrndx=shstrndx,
    )


def _read_at(stream: IO[bytes], offset: int, length: int, size: int, what: str) -> bytes:
    if offset < 0 or length < 0 or offset + length > size:
        raise ElfError(f"the {what} lies outside the file")
    stream.seek(offset)
    data = stream.read(length)
    if len(data) != length:
        raise ElfError(f"the file ends inside the {what}")
    return data


def _sections(stream: IO[bytes], head: ElfHeader, size: int) -> list[Section]:
    layout = head.byte_order + _SECTION[head._class]
    entry = struct.calcsize(layout)
    if head.shentsize < entry:
        raise ElfError(f"section headers of {head.shentsize} bytes are too small")

    def unpack(raw: bytes, at: int) -> Section:
        name, kind, _flags, _addr, offset, length, link, _info, _align, _entsize = struct.unpack_from(layout, raw, at)
        return Section(name=name, type=kind, offset=offset, size=length, link=link)

    count = head.shnum
    if count == 0:
        first = unpack(_read_at(stream, head.shoff, entry, size, "section header table"), 0)
        count = first.size
    if count * head.shentsize > _MAX_TABLE:
        raise ElfError(f"{count} section headers are too many")
    raw = _read_at(stream, head.shoff, count * head.shentsize, size, "section header table")
    return [unpack(raw, at) for at in range(0, len(raw), head.shentsize)]


def find_section(stream: IO[bytes], size: int, name: bytes, limit: int) -> bytes | None:
    """The content of the section called `name` in the ELF file `stream` (seekable, `size`
    bytes); None when the file is not ELF or has no such section. A section over `limit`
    bytes is returned empty (its presence still said). `ElfError` when the headers do not
    hold together."""
    stream.seek(0)
    head = header(stream.read(64))
    if head is None:
        return None
    if head.shoff == 0:
        return None  # no section header table (a stripped-down or hand-made file)
    sections = _sections(stream, head, size)
    if not sections:
        return None
    index = head.shstrndx if head.shstrndx != _SHN_XINDEX else sections[0].link
    if not 0 < index < len(sections):
        raise ElfError(f"the section name table index {index} is out of range")
    names = sections[index]
    if names.size > _MAX_NAMES:
        raise ElfError(f"a section name table of {names.size} bytes is too large")
    table = _read_at(stream, names.offset, names.size, size, "section name table")
    wanted = name + b"\0"
    for section in sections[1:]:
        if table[section.name : section.name + len(wanted)] != wanted:
            continue
        if section.type == _SHT_NOBITS or section.size > limit:
            return b""
        return _read_at(stream, section.offset, section.size, size, f"{name.decode()} section")
    return None
