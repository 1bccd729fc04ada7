"""What every importer shares: names as matching compares them, OSV ecosystems split
into ecosystem and release, timestamps, and the record types of the store protocol."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from portside.meta.vulndb import Advisory, AffectedPackage, Candidate, ImportedSource, SourceRecord

__all__ = [
    "Advisory",
    "AffectedPackage",
    "Candidate",
    "ImportedSource",
    "SourceRecord",
    "Parsed",
    "fixed_range",
    "package_key",
    "parse_time",
    "split_ecosystem",
]

_PEP503 = re.compile(r"[-_.]+")


def package_key(ecosystem: str, name: str) -> str:
    """`name` as stored and looked up: PyPI's PEP 503 normal form; other ecosystems
    compare names exactly (Go module paths, Maven `group:artifact`, npm `@scope/name`)."""
    if ecosystem == "PyPI":
        return _PEP503.sub("-", name).lower()
    return name


def split_ecosystem(text: str) -> tuple[str, str]:
    """OSV's `Debian:12` → (`Debian`, `12`); `Alpine:v3.18` → (`Alpine`, `v3.18`);
    `Ubuntu:22.04:LTS` → (`Ubuntu`, `22.04`); `PyPI` → (`PyPI`, ``)."""
    base, _, release = text.partition(":")
    if base == "Ubuntu":
        # Ubuntu's OSV ecosystems add `:LTS` or `:Pro`; the image's VERSION_ID is the release.
        release = release.split(":", 1)[0]
    return base, release


def parse_time(text: object) -> datetime | None:
    """An RFC 3339 timestamp (OSV `modified`), as aware UTC; None when absent or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def fixed_range(fixed: str | None) -> str:
    """A distro's "affected below `fixed`" (or, with no fix, every version) as OSV ranges."""
    events: list[dict[str, str]] = [{"introduced": "0"}]
    if fixed:
        events.append({"fixed": fixed})
    return json.dumps([{"type": "ECOSYSTEM", "events": events}], separators=(",", ":"))


class Parsed:
    """The advisories of one source read from some origin, before they are stored."""

    def __init__(self, name: str, origin: str, advisories: Iterable[Advisory] = ()):
        self.name = name
        self.origin = origin
        self.advisories: list[Advisory] = list(advisories)
        self.skipped: list[str] = []  # what was read but not understood, said plainly

    def __repr__(self) -> str:
        return f"Parsed({self.name!r}, {len(self.advisories)} advisories from {self.origin!r})"
