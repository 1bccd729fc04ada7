"""A bundle: the advisory data an air-gapped site carries across, in one `.tar`,
`.tar.gz` or directory.

Layout::

    bundle.json
    osv/PyPI.zip                 an OSV export (all.zip of an ecosystem), or a directory of <ID>.json
    osv/Go/                      …
    debian/tracker.json          the security tracker's JSON export
    debian/vuln-list-debian/     the tracker's list entries, one JSON file per CVE or DSA
    alpine/v3.18-main.json       a secdb branch file
    alpine/3.18/main/            or secdb's per-package files

Only `bundle.json` has a fixed name; the rest is wherever it says::

    {
      "format": "portside-vulndb-bundle",
      "version": 1,
      "created": "2026-12-01T00:00:00Z",
      "files": [
        {"path": "osv/PyPI.zip", "kind": "osv"},
        {"path": "debian/tracker.json", "kind": "debian-tracker"},
        {"path": "debian/vuln-list-debian", "kind": "debian-tracker-list"},
        {"path": "alpine/v3.18-main.json", "kind": "alpine-secdb"}
      ]
    }

`kind` is one of `osv`, `debian-tracker`, `debian-tracker-list`, `alpine-secdb`; a
document under a path that is not of its declared kind is skipped and reported, so a
mislabelled file cannot be read as something else. Paths are relative to the bundle and
may not leave it.
"""

from __future__ import annotations

import json
from pathlib import Path

from portside.scan.vulndb.load import KINDS, Collector
from portside.scan.vulndb.records import Parsed

__all__ = ["BUNDLE_FILE", "BUNDLE_FORMAT", "read_bundle", "write_manifest"]

BUNDLE_FILE = "bundle.json"
BUNDLE_FORMAT = "portside-vulndb-bundle"


def read_bundle(root: Path, origin: str) -> list[Parsed]:
    try:
        manifest = json.loads((root / BUNDLE_FILE).read_bytes())
    except ValueError as error:
        raise ValueError(f"{root / BUNDLE_FILE}: not JSON ({error})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise ValueError(f"{root / BUNDLE_FILE}: not a {BUNDLE_FORMAT} manifest")
    if manifest.get("version") != 1:
        raise ValueError(f"{root / BUNDLE_FILE}: version {manifest.get('version')!r} is not known here (1 is)")
    collector = Collector(origin)
    base = root.resolve()
    for item in manifest.get("files") or []:
        if not isinstance(item, dict) or item.get("kind") not in KINDS or not isinstance(item.get("path"), str):
            raise ValueError(f"{root / BUNDLE_FILE}: a file entry needs a path and a kind of {', '.join(KINDS)}")
        path = (base / item["path"]).resolve()
        if not path.is_relative_to(base):
            raise ValueError(f"{root / BUNDLE_FILE}: {item['path']!r} leaves the bundle")
        if not path.exists():
            raise ValueError(f"{root / BUNDLE_FILE}: {item['path']!r} is not in the bundle")
        collector.add_path(path, expected=item["kind"])
    return collector.sources()


def write_manifest(root: Path, files: list[tuple[str, str]], created: str) -> Path:
    """Write `bundle.json` for (path, kind) pairs already under `root`."""
    for _path, kind in files:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}")
    document = {
        "format": BUNDLE_FORMAT,
        "version": 1,
        "created": created,
        "files": [{"path": path, "kind": kind} for path, kind in files],
    }
    target = root / BUNDLE_FILE
    target.write_text(json.dumps(document, indent=2) + "\n")
    return target
