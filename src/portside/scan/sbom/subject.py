"""The image an SBOM describes, and the facts both formats derive from it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from packageurl import PackageURL

from portside.scan.model import Ecosystem, Inventory, Package

__all__ = ["OS_ECOSYSTEMS", "SbomSubject", "package_key", "sorted_packages"]

# Packages that the distribution installed; the SBOMs place them under the OS.
OS_ECOSYSTEMS = frozenset({Ecosystem.DEBIAN, Ecosystem.UBUNTU, Ecosystem.ALPINE, Ecosystem.RPM})


@dataclass(frozen=True, slots=True)
class SbomSubject:
    """One image manifest: where it lives, what it is, and who writes its SBOM.

    `repository` is the repository's path in the registry (`library/nginx`); `registry` is
    the registry's host (`registry.example.com:5000`) when the SBOM should name it."""

    repository: str
    digest: str
    tags: tuple[str, ...]
    created: dt.datetime
    tool_version: str
    registry: str = ""

    @property
    def repository_url(self) -> str:
        return f"{self.registry}/{self.repository}" if self.registry else self.repository

    @property
    def purl(self) -> str:
        """`pkg:oci/<name>@<digest>?repository_url=<registry>/<repository>`, the OCI purl type:
        the name is the repository's last segment, lower-cased, and the URL says where it lives."""
        name = self.repository.rsplit("/", 1)[-1].lower()
        return PackageURL(
            type="oci", name=name, version=self.digest, qualifiers={"repository_url": self.repository_url}
        ).to_string()

    @property
    def created_utc(self) -> dt.datetime:
        """A naive time is taken as UTC; sub-second parts are dropped (SPDX wants seconds)."""
        moment = self.created if self.created.tzinfo else self.created.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).replace(microsecond=0)


def sorted_packages(inventory: Inventory) -> list[Package]:
    """The inventory's packages in one stable order, exact duplicates dropped."""
    return sorted(set(inventory.packages), key=package_key)


def package_key(package: Package) -> tuple[str, ...]:
    """Every field that tells two packages apart, in a fixed order."""
    return (
        package.ecosystem.value,
        package.name,
        package.version,
        package.path,
        package.layer,
        package.purl,
        package.arch or "",
        *package.licenses,
    )
