"""Harbor's paging (`page`, `page_size`) and its `q` query language.

`q` is `key=value,key=~fuzzy,key=[low~high],key={a b},key=(a b)`: exact, fuzzy, range,
all-of and any-of matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from portside.errors import BadRequest
from portside.meta.accounts import Page
from portside.mgmt.limits import MAX_INTEGER

__all__ = ["Paging", "Match", "parse_q", "page_of", "parse_sort", "MAX_PAGE", "MAX_PAGE_SIZE"]

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
# Keeps every offset (at most about 2**37) within the 64 bits both databases take for one.
MAX_PAGE = MAX_INTEGER


@dataclass(frozen=True, slots=True)
class Paging:
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    def __post_init__(self) -> None:
        if not 1 <= self.page <= MAX_PAGE:
            raise BadRequest(f"page must be between 1 and {MAX_PAGE}")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise BadRequest(f"page_size must be between 1 and {MAX_PAGE_SIZE}")

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    @property
    def limit(self) -> int:
        return self.page_size


@dataclass(frozen=True, slots=True)
class Match:
    kind: str  # "exact", "fuzzy", "range", "all", "any"
    values: tuple[str, ...]

    @property
    def value(self) -> str:
        return self.values[0] if self.values else ""


def _split(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def parse_q(q: str | None, allowed: Sequence[str]) -> dict[str, Match]:
    """Parse `q`; keys outside `allowed` (case-insensitive) are a BAD_REQUEST."""
    out: dict[str, Match] = {}
    names = {a.lower(): a for a in allowed}
    for part in _split(q or ""):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key.lower() not in names:
            raise BadRequest(f"unsupported query {part!r}; supported keys: {', '.join(allowed)}")
        value = value.strip()
        if value.startswith("~"):
            match = Match("fuzzy", (value[1:],))
        elif value.startswith("[") and value.endswith("]"):
            low, _, high = value[1:-1].partition("~")
            match = Match("range", (low.strip(), high.strip()))
        elif value.startswith("{") and value.endswith("}"):
            match = Match("all", tuple(value[1:-1].split()))
        elif value.startswith("(") and value.endswith(")"):
            match = Match("any", tuple(value[1:-1].split()))
        else:
            match = Match("exact", (value,))
        out[names[key.lower()]] = match
    return out


def parse_sort(sort: str | None, allowed: Sequence[str]) -> list[tuple[str, bool]]:
    """Harbor's `sort`: comma-separated fields, `-` before a field for descending."""
    out = []
    for field in (sort or "").split(","):
        field = field.strip()
        if not field:
            continue
        descending = field.startswith("-")
        name = field.lstrip("-")
        if name not in allowed:
            raise BadRequest(f"cannot sort by {name!r}; supported: {', '.join(allowed)}")
        out.append((name, descending))
    return out


def page_of(items: Sequence[T], paging: Paging) -> Page[T]:
    """A page of a list already in memory (small listings filtered in Python)."""
    return Page(list(items[paging.offset : paging.offset + paging.limit]), len(items))
