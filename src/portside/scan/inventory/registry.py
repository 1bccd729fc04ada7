"""The detectors an inventory runs, in the order they are offered each file (the first that
wants a file reads it; the Go detector, which wants any file that turns out to be ELF, is last)."""

from __future__ import annotations

from portside.scan.inventory import apk, dpkg, go_binaries, java, npm, os_release, python_dists, rpm
from portside.scan.inventory.detector import Detector

__all__ = ["DETECTORS"]

DETECTORS: tuple[Detector, ...] = (
    os_release.DETECTOR,
    dpkg.DETECTOR,
    apk.DETECTOR,
    rpm.DETECTOR,
    python_dists.DETECTOR,
    npm.DETECTOR,
    java.DETECTOR,
    go_binaries.DETECTOR,
)
