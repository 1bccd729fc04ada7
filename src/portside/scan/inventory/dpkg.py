"""Debian and Ubuntu packages, from dpkg's database: `/var/lib/dpkg/status`, and the
one-file-per-package `/var/lib/dpkg/status.d/` that distroless images carry instead."""

from __future__ import annotations

import posixpath
import re

from portside.scan.inventory.control import stanzas
from portside.scan.inventory.detector import Detector, Found
from portside.scan.inventory.files import ImageFiles, KeptFile
from portside.scan.inventory.purls import os_package_purl
from portside.scan.model import Ecosystem, OperatingSystem, Package

__all__ = ["DETECTOR", "packages_in"]

_STATUS = "/var/lib/dpkg/status"
_STATUS_D = "/var/lib/dpkg/status.d"
_INSTALLED = "install ok installed"
_SOURCE = re.compile(r"^(?P<name>\S+)(?:\s+\((?P<version>[^)]+)\))?$")


def _wants(path: str, mode: int) -> bool:
    if path == _STATUS:
        return True
    # status.d holds `<pkg>` (control stanza) beside `<pkg>.md5sums`; only the stanzas matter.
    return posixpath.dirname(path) == _STATUS_D and not path.endswith(".md5sums")


def packages_in(kept: KeptFile, os: OperatingSystem | None) -> list[Package]:
    ecosystem = Ecosystem.UBUNTU if os is not None and os.id == "ubuntu" else Ecosystem.DEBIAN
    # distroless's status.d stanzas have no Status field: every one of them is installed.
    needs_status = kept.path == _STATUS
    found = []
    for fields in stanzas(kept.data.decode("utf-8", "replace")):
        name, version = fields.get("Package"), fields.get("Version")
        if not name or not version:
            continue
        status = " ".join(fields.get("Status", "").split())
        if status != _INSTALLED and (needs_status or status):
            continue
        source_name, source_version = name, version
        if (match := _SOURCE.match(fields.get("Source", ""))) is not None:
            source_name = match["name"]
            source_version = match["version"] or version
        arch = fields.get("Architecture") or None
        found.append(
            Package(
                ecosystem=ecosystem,
                name=name,
                version=version,
                purl=os_package_purl("deb", ecosystem, os, name, version, arch),
                path=kept.path,
                layer=kept.layer,
                source_name=source_name,
                source_version=source_version,
                arch=arch,
            )
        )
    return found


def _detect(files: ImageFiles, os: OperatingSystem | None) -> Found:
    packages: list[Package] = []
    for kept in files.kept_for(DETECTOR.name):
        packages.extend(packages_in(kept, os))
    return Found(packages=tuple(packages))


DETECTOR = Detector(name="dpkg", wants=_wants, detect=_detect)
