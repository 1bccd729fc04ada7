"""Harbor's paging (`page`, `page_size`), its `q` query language and `sort`, parsed once.

`q` is a comma-separated list of `key=value` conditions, as Harbor's `lib/q` reads it:

    k=v        exact          k=~v       fuzzy (contains)
    k=[a~b]    range (a <= value <= b; either end may be left open: [~b], [a~])
    k={a b}    any of them    k=(a b)    all of them

Values in ranges and lists are numbers, times (2024-01-31T23:59:59, or with a space) or
text (quotes around it are dropped); `\\` before an exact value keeps its first character
literal. `sort=a,-b` orders by a, then by b descending. Each resource names the keys it
understands (`Listing`); like Harbor, a list ignores keys and sort fields it does not
know, and answers BAD_REQUEST only for a condition it cannot read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar
from urllib.parse import unquote

from portside.errors import BadRequest
from portside.meta.accounts import Page
from portside.meta.criteria import Criteria, Match, MatchKind, Value
from portside.mgmt.limits import MAX_INTEGER

__all__ = ["Paging", "Listing", "parse_q", "parse_sort", "page_of", "MAX_PAGE", "MAX_PAGE_SIZE"]

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 100
_TIMES = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S")
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


def _split(text: str) -> list[str]:
    """Split at the commas outside brackets (a list of text may hold one)."""
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "[{(":
            depth += 1
        elif char in "]})":
            depth = max(depth - 1, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def _value(text: str) -> Value:
    """A value of a range or a list: a time, a number, or text without its quotes."""
    text = text.strip()
    for form in _TIMES:
        try:
            return datetime.strptime(text, form).replace(tzinfo=UTC)
        except ValueError:
            pass
    try:
        return int(text)
    except ValueError:
        return text.strip("\"'")


def _match(key: str, value: str) -> Match:
    if value.startswith("~"):
        if len(value) < 2:
            raise BadRequest(f"{key}=~ needs text to look for")
        return Match("fuzzy", (value[1:],))
    if value.startswith("["):
        if not value.endswith("]") or value.count("~") != 1:
            raise BadRequest(f"{key}: a range is [low~high], with one ~ (either end may be empty)")
        low, high = (part.strip() for part in value[1:-1].split("~"))
        if not low and not high:
            raise BadRequest(f"{key}: a range needs at least one end")
        return Match("range", (_value(low) if low else None, _value(high) if high else None))
    lists: tuple[tuple[str, str, MatchKind], ...] = (("{", "}", "any"), ("(", ")", "all"))
    for opening, closing, kind in lists:
        if value.startswith(opening):
            if not value.endswith(closing):
                raise BadRequest(f"{key}: a list starting with {opening} ends with {closing}")
            items = [_value(v) for v in value[1:-1].split(" ")]
            return Match(kind, tuple(v for v in items if v != ""))
    return Match("exact", (value[1:] if value.startswith("\\") else value,))


def parse_q(q: str | None, keys: Mapping[str, str]) -> Criteria:
    """The conditions of `q` on the keys this list knows (`keys`: Harbor key → field);
    other keys are ignored, as Harbor does."""
    criteria = Criteria()
    # Harbor unescapes q once more: clients send q=tags%3Dnil encoded twice.
    for part in _split(unquote(q or "")):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise BadRequest(f"invalid query {part!r}: each condition is key=value, and neither may be empty")
        match = _match(key, value)
        if key in keys:
            criteria = criteria.where(keys[key], match)
    return criteria


def parse_sort(sort: str | None, keys: Mapping[str, str]) -> tuple[tuple[str, bool], ...]:
    """Harbor's `sort`: comma-separated keys, `-` before one for descending; keys the list
    cannot sort by are ignored, as Harbor does."""
    out = []
    for item in (sort or "").split(","):
        item = item.strip()
        name = item.removeprefix("-")
        if name in keys:
            out.append((keys[name], item.startswith("-")))
    return tuple(out)


@dataclass(frozen=True)
class Listing:
    """What one resource's list understands: its `q` keys and its `sort` keys, each a
    Harbor spelling → the store's field (Harbor takes a model's field name and its
    column's, ProjectID and project_id)."""

    keys: Mapping[str, str]
    sorts: Mapping[str, str] = field(default_factory=dict)
    default_order: Sequence[tuple[str, bool]] = ()

    @classmethod
    def of(
        cls,
        fields: Sequence[str],
        sortable: Sequence[str],
        default_order: Sequence[tuple[str, bool]] = (),
        aliases: Mapping[str, str] | None = None,
    ) -> Listing:
        """Keys named as the store's fields, and `aliases` (another spelling → field)."""
        keys = {f: f for f in fields} | dict(aliases or {})
        sorts = {f: f for f in sortable} | {a: f for a, f in (aliases or {}).items() if f in sortable}
        return cls(keys, sorts, default_order)

    def criteria(self, q: str | None, sort: str | None) -> Criteria:
        order = parse_sort(sort, self.sorts) or tuple(self.default_order)
        return Criteria(parse_q(q, self.keys).matches, order)


def page_of(items: Sequence[T], paging: Paging) -> Page[T]:
    """A page of a list already in memory (small listings filtered in Python)."""
    return Page(list(items[paging.offset : paging.offset + paging.limit]), len(items))
