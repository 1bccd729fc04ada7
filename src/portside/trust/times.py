"""RFC 3339 times as the formats write them (nanoseconds, `Z` or an offset) → aware UTC datetimes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["parse_time"]

_FRACTION = re.compile(r"\.(\d+)")


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 date-time; fractions beyond microseconds are cut, not rounded."""
    value = text.strip().replace("z", "Z")
    value = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), value, count=1)
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return parsed.astimezone(UTC)
