"""Reading advisory data from a path: an OSV zip, a directory, a single JSON file, a
bundle (see bundle.py), or a tar of any of these. Each JSON document is recognised by
its shape, so one directory may mix OSV records, Debian tracker files and Alpine secdb
files; what is not recognised is listed in the sources' `skipped`, never guessed at."""

from __future__ import annotations

import json
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from portside.scan.vulndb.alpine import SecdbSources, is_secdb, is_secdb_package
from portside.scan.vulndb.debian import TrackerList, is_tracker_entry, is_tracker_export, read_tracker_export
from portside.scan.vulndb.osv import group, is_osv
from portside.scan.vulndb.records import Parsed

__all__ = ["KINDS", "Collector", "kind_of", "read_path"]

# The kinds of document there are, as bundle.json names them.
KINDS = ("osv", "debian-tracker", "debian-tracker-list", "alpine-secdb")


def kind_of(document: object) -> str | None:
    if is_osv(document):
        return "osv"
    if is_tracker_entry(document):
        return "debian-tracker-list"
    if is_secdb(document) or is_secdb_package(document):
        return "alpine-secdb"
    if is_tracker_export(document):
        return "debian-tracker"
    return None


class Collector:
    """Documents of every kind, gathered into sources."""

    def __init__(self, origin: str):
        self.origin = origin
        self._osv: list[dict[str, Any]] = []
        self._tracker_list = TrackerList(origin)
        self._secdb = SecdbSources(origin)
        self._exports: list[Parsed] = []
        self.skipped: list[str] = []

    def add(self, document: object, where: str, expected: str | None = None) -> None:
        kind = kind_of(document)
        if kind is None or (expected is not None and kind != expected):
            wanted = f"a {expected} document" if expected else "a known advisory document"
            self.skipped.append(f"{where}: not {wanted}")
            return
        assert isinstance(document, dict)
        if kind == "osv":
            self._osv.append(document)
        elif kind == "debian-tracker-list":
            self._tracker_list.add(document, where)
        elif kind == "alpine-secdb":
            if is_secdb(document):
                self._secdb.add_secdb(document, where)
            else:
                self._secdb.add_package(document, where)
        else:
            self._exports.append(read_tracker_export(document, self.origin))

    def add_bytes(self, data: bytes, where: str, expected: str | None = None) -> None:
        try:
            document = json.loads(data)
        except ValueError:
            self.skipped.append(f"{where}: not JSON")
            return
        self.add(document, where, expected)

    def add_path(self, path: Path, expected: str | None = None) -> None:
        for where, data in _documents(path):
            self.add_bytes(data, where, expected)

    def sources(self) -> list[Parsed]:
        found: dict[str, Parsed] = {}
        parts = [*group(self._osv, self.origin), self._tracker_list.parsed, *self._secdb.sources(), *self._exports]
        for parsed in parts:
            if not parsed.advisories:
                continue
            if parsed.name in found:
                found[parsed.name].advisories.extend(parsed.advisories)
                found[parsed.name].skipped.extend(parsed.skipped)
            else:
                found[parsed.name] = parsed
        for parsed in found.values():
            parsed.skipped.extend(self.skipped)
        return list(found.values())


def _documents(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        for file in sorted(path.rglob("*")):
            if file.is_file() and (file.suffix == ".json" or file.suffix == ".zip") and file.name != "bundle.json":
                yield from _documents(file)
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith(".json") and not info.is_dir():
                    yield f"{path}!{info.filename}", archive.read(info)
    else:
        yield str(path), path.read_bytes()


def read_path(path: Path, origin: str | None = None) -> list[Parsed]:
    """The sources held at `path`. Raises FileNotFoundError, or ValueError for a
    bundle that says something it cannot mean."""
    from portside.scan.vulndb.bundle import BUNDLE_FILE, read_bundle  # bundle.py reads through this module

    origin = origin or str(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_dir() and (path / BUNDLE_FILE).is_file():
        return read_bundle(path, origin)
    if path.is_file() and not zipfile.is_zipfile(path) and tarfile.is_tarfile(path):
        with tempfile.TemporaryDirectory(prefix="portside-vulndb-") as unpacked:
            with tarfile.open(path) as archive:
                archive.extractall(unpacked, filter="data")
            return read_path(Path(unpacked), origin)
    collector = Collector(origin)
    collector.add_path(path)
    return collector.sources()
