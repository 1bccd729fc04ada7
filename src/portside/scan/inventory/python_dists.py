"""Python distributions, from their core metadata: `*.dist-info/METADATA` (wheels, pip) and
`*.egg-info/PKG-INFO` or a bare `*.egg-info` file (setuptools), in `site-packages` or
Debian's `dist-packages`."""

from __future__ import annotations

import re
from email.parser import HeaderParser

from portside.scan.inventory.detector import Detector, Found, MiB
from portside.scan.inventory.files import ImageFiles
from portside.scan.inventory.purls import purl
from portside.scan.model import Ecosystem, OperatingSystem, Package

__all__ = ["DETECTOR", "normalise_name"]

_LOCATION = re.compile(r"/(?:site|dist)-packages/[^/]+\.(?:dist-info/METADATA|egg-info/PKG-INFO|egg-info)$")
_LICENSE_CLASSIFIER = "License :: "


def normalise_name(name: str) -> str:
    """PEP 503: runs of `-`, `_` and `.` are one `-`, lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _wants(path: str, mode: int) -> bool:
    return _LOCATION.search(path) is not None


def _licenses(headers: dict[str, list[str]]) -> tuple[str, ...]:
    if expression := headers.get("License-Expression"):
        return (expression[0],)
    # `License:` is free text and often the whole licence; only a short one is a name.
    declared = [text for text in headers.get("License", []) if text and "\n" not in text and len(text) <= 100]
    if declared and declared[0].upper() != "UNKNOWN":
        return (declared[0],)
    classifiers = headers.get("Classifier", [])
    return tuple(c.split(" :: ")[-1] for c in classifiers if c.startswith(_LICENSE_CLASSIFIER))


def _detect(files: ImageFiles, os: OperatingSystem | None) -> Found:
    packages = []
    for kept in files.kept_for(DETECTOR.name):
        message = HeaderParser().parsestr(kept.data.decode("utf-8", "replace"))
        headers: dict[str, list[str]] = {}
        for key, value in message.items():
            headers.setdefault(key, []).append(str(value).strip())
        name, version = headers.get("Name", [""])[0], headers.get("Version", [""])[0]
        if not name or not version:
            continue
        packages.append(
            Package(
                ecosystem=Ecosystem.PYPI,
                name=normalise_name(name),
                version=version,
                purl=purl("pypi", normalise_name(name), version),
                path=kept.path,
                layer=kept.layer,
                licenses=_licenses(headers),
            )
        )
    return Found(packages=tuple(packages))


DETECTOR = Detector(name="python", wants=_wants, detect=_detect, size_cap=8 * MiB)
