"""The detectors an inventory runs, in the order they are offered each file (the first that
wants a file reads it; the Rust and Go detectors, which want any file that turns out to be
ELF, are last, and both read such a file: Rust first, as it seeks to the section table at
the file's end, which the Go detector's front-to-back scan then reads from the recording)."""

from __future__ import annotations

from portside.scan.inventory import apk, dpkg, go_binaries, java, npm, os_release, python_dists, rpm, rust_binaries
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
    rust_binaries.DETECTOR,
    go_binaries.DETECTOR,
)
