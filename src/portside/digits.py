"""Decimal numbers in request text (headers, query strings, path segments): ASCII digits only.

`str.isdigit` accepts more than `int` reads ('²' is a digit to one and not the other), `int`
accepts more than HTTP's DIGIT rule ('٣', ' 7', '+7', '1_0'), and it refuses numbers of more than
4,300 digits. `parse_decimal` reads exactly the ASCII digits, whatever their number, so each
caller only compares the value against its own bound.
"""

from __future__ import annotations

__all__ = ["SATURATED", "is_decimal", "parse_decimal"]

# What a number past 64 bits reads as: above every bound a caller checks (ids, sizes, offsets,
# page lengths), so it is refused or capped like any other value out of range.
SATURATED = 2**63
_SATURATED_DIGITS = len(str(SATURATED))


def is_decimal(text: str) -> bool:
    """Whether `text` is one or more of the ASCII digits 0-9 and nothing else."""
    return text.isascii() and text.isdigit()


def parse_decimal(text: str) -> int | None:
    """The number `text` spells in ASCII digits, at most `SATURATED`; None if it is not one."""
    if not is_decimal(text):
        return None
    significant = text.lstrip("0")
    if len(significant) > _SATURATED_DIGITS:
        return SATURATED
    return min(int(significant or "0"), SATURATED)
