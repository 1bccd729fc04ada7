"""The operating system, from `/etc/os-release` or, when that is absent, `/usr/lib/os-release`
(the freedesktop.org os-release format: shell-style `KEY=value` lines, values maybe quoted)."""

from __future__ import annotations

import shlex

from portside.scan.inventory.detector import Detector, Found, MiB
from portside.scan.inventory.files import ImageFiles
from portside.scan.model import OperatingSystem

__all__ = ["DETECTOR", "operating_system", "parse_os_release"]

_PATHS = ("/etc/os-release", "/usr/lib/os-release")


def parse_os_release(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, raw = line.partition("=")
        try:
            words = shlex.split(raw)
        except ValueError:  # an unbalanced quote: take the text as it stands
            words = [raw.strip("\"'")]
        fields[key.strip()] = " ".join(words)
    return fields


def operating_system(files: ImageFiles) -> OperatingSystem | None:
    for path in _PATHS:
        kept = files.get(path)
        if kept is None:
            continue
        fields = parse_os_release(kept.data.decode("utf-8", "replace"))
        if "ID" not in fields:
            continue
        return OperatingSystem(
            id=fields["ID"].lower(),
            version_id=fields.get("VERSION_ID", ""),
            codename=fields.get("VERSION_CODENAME") or None,
            pretty_name=fields.get("PRETTY_NAME") or None,
        )
    return None


def _wants(path: str, mode: int) -> bool:
    return path in _PATHS


def _detect(files: ImageFiles, os: OperatingSystem | None) -> Found:
    return Found()  # the OS itself is read by `operating_system`, before the package detectors


DETECTOR = Detector(name="os-release", wants=_wants, detect=_detect, size_cap=1 * MiB)
