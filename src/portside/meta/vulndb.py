"""Protocol of the vulnerability database: advisories by source, the packages they name,
and the sources' bookkeeping.

An advisory is keyed by (source, id); each of its `AffectedPackage` entries by
(ecosystem, package name, release), which is what matching looks up: all the names of
one ecosystem and release at once. Version ranges stay in OSV's shape (JSON text), since
only the matcher reads them. An import replaces a source's advisories in one transaction
and moves the database's generation, which tells the scan service that stored
inventories need matching again.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

__all__ = [
    "AffectedPackage",
    "Advisory",
    "Candidate",
    "ImportedSource",
    "SourceRecord",
    "VulnerabilityStore",
]


@dataclass(frozen=True, slots=True)
class AffectedPackage:
    """One package an advisory names, in one ecosystem (and release, for distributions).

    `ranges` is OSV's `affected[].ranges` as JSON text (a distro's "fixed in X" becomes an
    ECOSYSTEM range `introduced 0, fixed X`); `versions` OSV's `versions[]` as JSON text.
    `release` is "" where the ecosystem has none, or where the entry holds for every
    release without an entry of its own (the Debian tracker's unstable line)."""

    ecosystem: str  # OSV's name without the release: PyPI, npm, Go, Debian, Alpine, ...
    package: str  # as matching compares it (PyPI names PEP 503 normalised)
    release: str = ""  # bookworm, 12, v3.18, 22.04
    ranges: str = "[]"
    versions: str = "[]"
    fixed: str | None = None  # the distro's fixed version, or the first OSV `fixed`
    severity: str | None = None  # the distro's urgency for this package
    not_affected: bool = False  # the release is said never to have been affected


@dataclass(frozen=True, slots=True)
class Advisory:
    """One record of a source: an OSV entry, a Debian CVE or DSA, an Alpine secfix id."""

    id: str
    affected: tuple[AffectedPackage, ...]
    aliases: tuple[str, ...] = ()  # CVE ids and other names of the same vulnerability
    summary: str = ""
    details: str = ""
    references: tuple[str, ...] = ()
    cvss_vector: str | None = None
    cvss_score: float | None = None
    cwe_ids: tuple[str, ...] = ()
    severity: str | None = None  # the record's own word (OSV `database_specific.severity`)
    modified: datetime | None = None
    withdrawn: bool = False


@dataclass(frozen=True, slots=True)
class ImportedSource:
    """What an import says of the source it replaces."""

    name: str  # osv:PyPI, debian-tracker, alpine-secdb:v3.18-main, ...
    origin: str  # the path or URL it came from
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class SourceRecord:
    name: str
    record_count: int
    imported_at: datetime
    modified: datetime | None  # the newest `modified` of its records, where they say
    origin: str
    etag: str | None
    last_modified: str | None
    generation: int  # the database generation its last import made


@dataclass(frozen=True, slots=True)
class Candidate:
    """An affected entry found for a looked-up name, with what a finding reports of its advisory."""

    source: str
    advisory: Advisory  # `affected` holds only the entry that was found
    entry: AffectedPackage = field(repr=False)


class VulnerabilityStore(Protocol):
    async def replace_source(self, source: ImportedSource, advisories: Iterable[Advisory]) -> SourceRecord:
        """Make `advisories` the whole of `source`, in one transaction."""
        ...

    async def update_source(
        self, source: ImportedSource, advisories: Iterable[Advisory], removed: Collection[str] = ()
    ) -> SourceRecord:
        """Replace just these advisories of `source` (and drop the `removed` ids): an
        incremental update. The source must exist."""
        ...

    async def touch_source(self, name: str, etag: str | None, last_modified: str | None) -> None:
        """Record that `name`'s origin was checked and had not changed."""
        ...

    async def candidates(self, ecosystem: str, releases: Sequence[str], names: Collection[str]) -> list[Candidate]:
        """The entries of `ecosystem` in any of `releases` naming any of `names`
        (withdrawn advisories left out)."""
        ...

    async def sources(self) -> list[SourceRecord]: ...

    async def generation(self) -> int:
        """Moves with every import; 0 for an empty database."""
        ...
