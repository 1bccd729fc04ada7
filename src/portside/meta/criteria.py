"""What a listing asks of its store: conditions on named fields and an order.

Harbor's `q` and `sort` are parsed once (`mgmt.paging`) into these; each store's listing
names the fields it knows and turns them into its own query (for SQL, `sql/criteria.py`),
so every list matches the same way and filters where the rows are, before paging.

A condition is one of Harbor's five kinds:

- `exact`  k=v            the field equals v
- `fuzzy`  k=~v           the field contains v, case-insensitively
- `range`  k=[a~b]        a <= field <= b; either end may be open ([~b], [a~])
- `any`    k={a b}        the field equals one of them
- `all`    k=(a b)        the field equals each of them (for a field of many values, such as
                          an artifact's tags: it has every one)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

__all__ = ["Value", "MatchKind", "Match", "Criteria", "EVERYTHING"]

Value = str | int | datetime
MatchKind = Literal["exact", "fuzzy", "range", "any", "all"]


@dataclass(frozen=True, slots=True)
class Match:
    kind: MatchKind
    # exact, fuzzy: one value; range: (low, high), None for an open end; any, all: the values
    values: tuple[Value | None, ...]

    @property
    def value(self) -> Value | None:
        return self.values[0] if self.values else None


@dataclass(frozen=True, slots=True)
class Criteria:
    """Conditions that all hold, on fields named as the listing documents them (a field may
    have several), and the order: (field, descending) pairs, the first one first."""

    matches: tuple[tuple[str, Match], ...] = ()
    order: tuple[tuple[str, bool], ...] = ()

    def where(self, field: str, match: Match) -> Criteria:
        return Criteria((*self.matches, (field, match)), self.order)

    def on(self, field: str) -> list[Match]:
        return [m for f, m in self.matches if f == field]

    def without(self, *fields: str) -> Criteria:
        """These criteria less the conditions on `fields` (which the caller handles itself)."""
        return Criteria(tuple((f, m) for f, m in self.matches if f not in fields), self.order)

    def ordered(self, *order: tuple[str, bool]) -> Criteria:
        """The order asked for, or `order` when none was."""
        return self if self.order else Criteria(self.matches, tuple(order))


EVERYTHING = Criteria()
