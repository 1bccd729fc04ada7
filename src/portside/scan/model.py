"""What scanning speaks of: the packages found in an image, the advisories that name them,
and the findings that join the two. Plain values, shared by the inventory, the
vulnerability database, the matcher, the SBOM writers and the services above them."""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

__all__ = [
    "Ecosystem",
    "Finding",
    "Inventory",
    "LayerBlob",
    "OperatingSystem",
    "Package",
    "Severity",
]


class Ecosystem(enum.StrEnum):
    """Package ecosystems, named as OSV names them (without a release suffix: the release
    of an OS package's ecosystem comes from the image's `OperatingSystem`)."""

    DEBIAN = "Debian"
    UBUNTU = "Ubuntu"
    ALPINE = "Alpine"
    RPM = "Red Hat"  # rpm-based distributions; advisories name the distribution itself
    PYPI = "PyPI"
    NPM = "npm"
    GO = "Go"
    MAVEN = "Maven"
    CRATES = "crates.io"


class Severity(enum.IntEnum):
    """Harbor's order (src/pkg/scan/vuln/severity.go); the names are Harbor's words."""

    UNKNOWN = 0
    NEGLIGIBLE = 1
    LOW = 2
    MEDIUM = 3
    HIGH = 4
    CRITICAL = 5

    @property
    def label(self) -> str:
        return self.name.capitalize()

    @classmethod
    def of(cls, text: str | None) -> Severity:
        """From a word any source uses (`high`, `HIGH`, `Moderate`, `important`, ...)."""
        word = (text or "").strip().rstrip("*").lower()
        return _SEVERITY_WORDS.get(word, cls.UNKNOWN)


_SEVERITY_WORDS = {
    "unknown": Severity.UNKNOWN,
    "not yet assigned": Severity.UNKNOWN,
    "none": Severity.UNKNOWN,
    "negligible": Severity.NEGLIGIBLE,
    "unimportant": Severity.NEGLIGIBLE,
    "low": Severity.LOW,
    "medium": Severity.MEDIUM,
    "moderate": Severity.MEDIUM,
    "high": Severity.HIGH,
    "important": Severity.HIGH,
    "critical": Severity.CRITICAL,
}


@dataclass(frozen=True, slots=True)
class OperatingSystem:
    """From `/etc/os-release` (or `/usr/lib/os-release`): `ID`, `VERSION_ID`, and the
    codename where there is one (`bookworm`), which the Debian tracker keys releases by."""

    id: str  # debian, alpine, ubuntu, rhel, fedora, ...
    version_id: str  # 12, 3.18.4, 22.04
    codename: str | None = None
    pretty_name: str | None = None


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package, where it was found, and what advisories call it.

    For OS packages `source_name`/`source_version` are the source package's (dpkg's
    `Source:`, apk's origin, the source rpm's name), which is what Debian's and Alpine's
    advisories name; they equal `name`/`version` when the package names no other."""

    ecosystem: Ecosystem
    name: str
    version: str
    purl: str
    path: str  # the file the package was read from, absolute in the image
    layer: str  # digest of the layer that last wrote that file
    source_name: str | None = None
    source_version: str | None = None
    arch: str | None = None
    licenses: tuple[str, ...] = ()

    @property
    def advisory_name(self) -> str:
        return self.source_name or self.name

    @property
    def advisory_version(self) -> str:
        return self.source_version or self.version


@dataclass(frozen=True, slots=True)
class Inventory:
    """What is in one image manifest (not an index: each child has its own)."""

    os: OperatingSystem | None
    packages: tuple[Package, ...]
    # Go toolchain versions of the Go binaries found (stdlib is matched as a package too).
    notes: tuple[str, ...] = ()  # what could not be read, said plainly (a corrupt rpmdb, ...)


@dataclass(frozen=True, slots=True)
class Finding:
    """An advisory that applies to an installed package."""

    vulnerability_id: str  # the CVE when the advisory has one, else its own id
    package: Package
    severity: Severity
    fixed_version: str | None  # None: no fix released
    advisory_id: str  # the record matched (DSA-..., GHSA-..., CVE-...)
    source: str  # debian-tracker, alpine-secdb, osv
    description: str = ""
    links: tuple[str, ...] = ()
    cvss_vector: str | None = None
    cvss_score: float | None = None
    cwe_ids: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class LayerBlob:
    """A layer to read: its digest, media type and how to stream its (compressed) bytes."""

    digest: str
    media_type: str
    size: int
    open: Callable[[], AsyncIterator[bytes]]
