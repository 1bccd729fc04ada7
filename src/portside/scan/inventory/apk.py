"""Alpine packages, from apk's database `/lib/apk/db/installed` (one-letter keys: P name,
V version, A arch, o origin, L license)."""

from __future__ import annotations

from portside.scan.inventory.control import stanzas
from portside.scan.inventory.detector import Detector, Found
from portside.scan.inventory.files import ImageFiles
from portside.scan.inventory.purls import os_package_purl
from portside.scan.model import Ecosystem, OperatingSystem, Package

__all__ = ["DETECTOR"]

_INSTALLED = "/lib/apk/db/installed"


def _wants(path: str, mode: int) -> bool:
    return path == _INSTALLED


def _detect(files: ImageFiles, os: OperatingSystem | None) -> Found:
    packages = []
    for kept in files.kept_for(DETECTOR.name):
        for fields in stanzas(kept.data.decode("utf-8", "replace")):
            name, version = fields.get("P"), fields.get("V")
            if not name or not version:
                continue
            arch = fields.get("A") or None
            license_text = fields.get("L", "")
            packages.append(
                Package(
                    ecosystem=Ecosystem.ALPINE,
                    name=name,
                    version=version,
                    purl=os_package_purl("apk", Ecosystem.ALPINE, os, name, version, arch),
                    path=kept.path,
                    layer=kept.layer,
                    source_name=fields.get("o") or name,
                    source_version=version,
                    arch=arch,
                    licenses=(license_text,) if license_text else (),
                )
            )
    return Found(packages=tuple(packages))


DETECTOR = Detector(name="apk", wants=_wants, detect=_detect)
