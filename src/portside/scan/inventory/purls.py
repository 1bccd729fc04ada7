"""Package URLs (github.com/package-url/purl-spec) for the packages detectors find."""

from __future__ import annotations

from packageurl import PackageURL

from portside.scan.model import Ecosystem, OperatingSystem

__all__ = ["os_package_purl", "purl"]


def purl(kind: str, name: str, version: str, namespace: str | None = None, **qualifiers: str | None) -> str:
    present = {key: value for key, value in qualifiers.items() if value}
    return str(PackageURL(type=kind, namespace=namespace, name=name, version=version, qualifiers=present or None))


def os_package_purl(
    kind: str, ecosystem: Ecosystem, os: OperatingSystem | None, name: str, version: str, arch: str | None
) -> str:
    """`pkg:deb/debian/bash@5.2.15-2+b2?arch=amd64&distro=debian-12` and its apk and rpm kin."""
    namespace = os.id if os is not None else ecosystem.value.lower().replace(" ", "")
    distro = f"{os.id}-{os.version_id}" if os is not None and os.version_id else None
    return purl(kind, name, version, namespace, arch=arch, distro=distro)
