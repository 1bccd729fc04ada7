"""The values of a Berkeley DB hash database, read from its pages (the format of rpm's
`/var/lib/rpm/Packages` before rpm 4.16): a metadata page, hash pages of key/data items,
and chains of overflow pages for values too big for one page, which rpm headers are."""

from __future__ import annotations

import struct
from collections.abc import Iterator

__all__ = ["BerkeleyDbError", "hash_values"]

_HASH_MAGIC = 0x061561
_PAGE_HEADER = 26
_P_HASH_UNSORTED, _P_OVERFLOW, _P_HASH = 2, 7, 13
_H_KEYDATA, _H_OFFPAGE = 1, 3


class BerkeleyDbError(ValueError):
    pass


def hash_values(db: bytes) -> Iterator[bytes]:
    """Every data item of a hash database, in page order (keys are skipped)."""
    if len(db) < 512:
        raise BerkeleyDbError("too short for a Berkeley DB file")
    for order in "<>":
        if struct.unpack_from(order + "I", db, 12)[0] == _HASH_MAGIC:
            break
    else:
        raise BerkeleyDbError("not a Berkeley DB hash database")
    page_size = struct.unpack_from(order + "I", db, 20)[0]
    if page_size < 512 or page_size & (page_size - 1):
        raise BerkeleyDbError(f"implausible page size {page_size}")
    header = struct.Struct(order + "8xIIIHHBB")
    offsets = order + "H"

    def page(number: int) -> tuple[bytes, tuple[int, ...]]:
        start = number * page_size
        data = db[start : start + page_size]
        if len(data) < _PAGE_HEADER:
            raise BerkeleyDbError(f"page {number} is past the end of the file")
        return data, header.unpack_from(data)

    def overflow(first: int, total: int) -> bytes:
        parts, number, seen = [], first, set()
        while number and total > 0:
            if number in seen:
                raise BerkeleyDbError("overflow pages loop")
            seen.add(number)
            data, (_, _, next_page, _, used, _, kind) = page(number)
            if kind != _P_OVERFLOW:
                raise BerkeleyDbError(f"page {number} should be an overflow page")
            parts.append(data[_PAGE_HEADER : _PAGE_HEADER + min(used, total)])
            total -= used
            number = next_page
        return b"".join(parts)

    for number in range(1, len(db) // page_size):
        data, (_, _, _, entries, _, _, kind) = page(number)
        if kind not in (_P_HASH, _P_HASH_UNSORTED):
            continue
        index = [struct.unpack_from(offsets, data, _PAGE_HEADER + 2 * i)[0] for i in range(entries)]
        # Items fill the page from its end down; each one ends where the previous one begins.
        for position in range(1, entries, 2):
            start, end = index[position], index[position - 1]
            if not _PAGE_HEADER <= start < end <= page_size:
                raise BerkeleyDbError(f"item {position} of page {number} is out of the page")
            item_kind = data[start]
            if item_kind == _H_KEYDATA:
                yield data[start + 1 : end]
            elif item_kind == _H_OFFPAGE:
                first, total = struct.unpack_from(order + "II", data, start + 4)
                yield overflow(first, total)
