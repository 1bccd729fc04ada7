"""npm packages, from the `package.json` at the top of each package directory under a
`node_modules` (nested ones too: `node_modules/a/node_modules/b`). Files deeper inside a
package (its tests, its own fixtures) are not packages and are not read."""

from __future__ import annotations

import json
import re
from typing import Any

from portside.scan.inventory.detector import Detector, Found, MiB
from portside.scan.inventory.files import ImageFiles
from portside.scan.inventory.purls import purl
from portside.scan.model import Ecosystem, OperatingSystem, Package

__all__ = ["DETECTOR"]

_MANIFEST = re.compile(r"/node_modules/(?:@[^/]+/)?[^/@][^/]*/package\.json$")


def _wants(path: str, mode: int) -> bool:
    return _MANIFEST.search(path) is not None


def _licenses(manifest: dict[str, Any]) -> tuple[str, ...]:
    declared = manifest.get("license")
    if isinstance(declared, str) and declared:
        return (declared,)
    if isinstance(declared, dict) and isinstance(declared.get("type"), str):
        return (declared["type"],)
    listed = manifest.get("licenses")  # the old form: a list of {"type": ..., "url": ...}
    if isinstance(listed, list):
        return tuple(item["type"] for item in listed if isinstance(item, dict) and isinstance(item.get("type"), str))
    return ()


def _detect(files: ImageFiles, os: OperatingSystem | None) -> Found:
    packages = []
    notes = []
    for kept in files.kept_for(DETECTOR.name):
        try:
            manifest = json.loads(kept.data)
        except ValueError:
            notes.append(f"{kept.path} is not valid JSON")
            continue
        if not isinstance(manifest, dict):
            continue
        full_name, version = manifest.get("name"), manifest.get("version")
        if not isinstance(full_name, str) or not isinstance(version, str) or not full_name or not version:
            continue
        namespace, _, name = full_name.rpartition("/")
        packages.append(
            Package(
                ecosystem=Ecosystem.NPM,
                name=full_name,
                version=version,
                purl=purl("npm", name, version, namespace or None),
                path=kept.path,
                layer=kept.layer,
                licenses=_licenses(manifest),
            )
        )
    return Found(packages=tuple(packages), notes=tuple(notes))


DETECTOR = Detector(name="npm", wants=_wants, detect=_detect, size_cap=4 * MiB)
