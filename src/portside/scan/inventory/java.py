"""Java archives (`.jar`, `.war`, `.ear`): Maven's `META-INF/maven/<g>/<a>/pom.properties`,
else the manifest's `Implementation-*` or OSGi `Bundle-*` headers, else the file name; and
the archives nested inside (`BOOT-INF/lib/`, `WEB-INF/lib/`, an ear's modules).

An image may hold gigabytes of jars, so each one is summarised as it streams past (its
coordinates and what could not be read, as a little JSON) and only the summary is kept."""

from __future__ import annotations

import io
import json
import re
import zipfile
import zlib
from collections.abc import Iterator
from typing import IO

from portside.scan.inventory.detector import Detector, Found, MiB
from portside.scan.inventory.files import ImageFiles, KeptFile
from portside.scan.inventory.purls import purl
from portside.scan.model import Ecosystem, OperatingSystem, Package

__all__ = ["DETECTOR", "artifacts_in", "summarise"]

_ARCHIVE = (".jar", ".war", ".ear")
_NESTED_CAP = 64 * MiB
_MAX_DEPTH = 4  # archives in archives in archives in archives: beyond that, a zip bomb
_FILE_NAME = re.compile(r"^(?P<artifact>.+?)-(?P<version>\d[^/]*?)\.[jwe]ar$")

Coordinates = tuple[str | None, str, str]  # groupId (when known), artifactId, version


def _wants(path: str, mode: int) -> bool:
    return path.lower().endswith(_ARCHIVE)


def _properties(text: str) -> dict[str, str]:
    fields = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, _, value = line.partition("=")
            fields[key.strip()] = value.strip()
    return fields


def _manifest(text: str) -> dict[str, str]:
    """A JAR manifest's main section (lines wrap at 72 bytes, continued after one space)."""
    fields: dict[str, str] = {}
    last = None
    for line in text.splitlines():
        if not line:
            break  # the main section ends at the first blank line
        if line.startswith(" ") and last is not None:
            fields[last] += line[1:]
        elif ":" in line:
            last, _, value = line.partition(":")
            fields[last] = value.strip()
    return fields


def artifacts_in(archive: zipfile.ZipFile, file_name: str) -> list[Coordinates]:
    """(groupId, artifactId, version) of what one archive is, not counting nested archives."""
    found = []
    for entry in archive.namelist():
        if entry.startswith("META-INF/maven/") and entry.endswith("/pom.properties"):
            fields = _properties(archive.read(entry).decode("utf-8", "replace"))
            if fields.get("artifactId") and fields.get("version"):
                found.append((fields.get("groupId") or None, fields["artifactId"], fields["version"]))
    if found:
        return sorted(set(found), key=lambda gav: (gav[0] or "", gav[1], gav[2]))
    manifest = {}
    if "META-INF/MANIFEST.MF" in archive.namelist():
        manifest = _manifest(archive.read("META-INF/MANIFEST.MF").decode("utf-8", "replace"))
    symbolic = manifest.get("Bundle-SymbolicName", "").split(";")[0].strip()
    version = manifest.get("Implementation-Version") or manifest.get("Bundle-Version")
    artifact = manifest.get("Implementation-Title") or symbolic
    group = manifest.get("Implementation-Vendor-Id") or None
    if symbolic and "." in symbolic and group is None:
        group, _, artifact = symbolic.rpartition(".")
    from_name = _FILE_NAME.match(file_name)
    if from_name is not None:
        artifact = artifact or from_name["artifact"]
        version = version or from_name["version"]
    if artifact and version:
        return [(group, artifact, version)]
    return []


def _walk(data: bytes, file_name: str, depth: int, notes: list[str], where: str) -> Iterator[Coordinates]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as exc:
        notes.append(f"{where} is not a readable zip archive: {exc}")
        return
    with archive:
        try:
            yield from artifacts_in(archive, file_name)
        except (zipfile.BadZipFile, zlib.error, OSError) as exc:
            notes.append(f"the metadata in {where} could not be read: {exc}")
        if depth >= _MAX_DEPTH:
            return
        for info in archive.infolist():
            if not info.filename.lower().endswith(_ARCHIVE):
                continue
            if info.file_size > _NESTED_CAP:
                notes.append(f"skipped {where}!/{info.filename}: {info.file_size} bytes is over the nested limit")
                continue
            try:
                inner = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, OSError) as exc:
                notes.append(f"{where}!/{info.filename} could not be read: {exc}")
                continue
            yield from _walk(inner, info.filename.rsplit("/", 1)[-1], depth + 1, notes, f"{where}!/{info.filename}")


def summarise(stream: IO[bytes], size: int, path: str) -> bytes:
    """What is kept of an archive: `{"artifacts": [[g, a, v], ...], "notes": [...]}`."""
    notes: list[str] = []
    artifacts: list[Coordinates] = []
    for coordinates in _walk(stream.read(size), path.rsplit("/", 1)[-1], 0, notes, path):
        if coordinates not in artifacts:
            artifacts.append(coordinates)
    return json.dumps({"artifacts": artifacts, "notes": notes}).encode()


def _packages(kept: KeptFile, notes: list[str]) -> list[Package]:
    summary = json.loads(kept.data)
    notes.extend(str(note) for note in summary["notes"])
    packages = []
    for group, artifact, version in summary["artifacts"]:
        packages.append(
            Package(
                ecosystem=Ecosystem.MAVEN,
                name=f"{group}:{artifact}" if group else artifact,
                version=version,
                purl=purl("maven", artifact, version, group),
                path=kept.path,
                layer=kept.layer,
            )
        )
    return packages


def _detect(files: ImageFiles, os: OperatingSystem | None) -> Found:
    packages: list[Package] = []
    notes: list[str] = []
    for kept in files.kept_for(DETECTOR.name):
        packages.extend(_packages(kept, notes))
    return Found(packages=tuple(packages), notes=tuple(notes))


DETECTOR = Detector(name="java", wants=_wants, detect=_detect, size_cap=64 * MiB, read=summarise)
