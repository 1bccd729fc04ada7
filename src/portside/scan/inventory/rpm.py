"""rpm packages, from the rpm database: SQLite `rpmdb.sqlite` (rpm 4.16 and later) or the
Berkeley DB `Packages` file before it. Both store one rpm header blob per package."""

from __future__ import annotations

import posixpath
import sqlite3
from collections.abc import Iterable

from portside.scan.inventory.berkeley_db import BerkeleyDbError, hash_values
from portside.scan.inventory.detector import Detector, Found, MiB
from portside.scan.inventory.files import ImageFiles, KeptFile
from portside.scan.inventory.purls import purl
from portside.scan.inventory.rpm_header import RpmHeader, RpmHeaderError, parse_header
from portside.scan.model import Ecosystem, OperatingSystem, Package

__all__ = ["DETECTOR", "headers_in_berkeley_db", "headers_in_sqlite", "source_of"]

# Fedora keeps the database in /usr/lib/sysimage/rpm, with /var/lib/rpm a symlink to it.
_DIRECTORIES = ("/var/lib/rpm", "/usr/lib/sysimage/rpm")
_SQLITE, _BERKELEY_DB = "rpmdb.sqlite", "Packages"
# The key rpm's own database keeps its `gpg --import`ed keys under; they are not software.
_KEYS = "gpg-pubkey"


def _wants(path: str, mode: int) -> bool:
    directory, name = posixpath.split(path)
    return directory in _DIRECTORIES and name in (_SQLITE, _BERKELEY_DB)


def headers_in_sqlite(db: bytes) -> list[bytes]:
    # A database left in WAL mode cannot be opened from memory; bytes 18 and 19 of the
    # header say which journal mode to use, and the rollback journal (1) reads the same data.
    image = bytearray(db)
    if len(image) >= 20 and image[18:20] == b"\x02\x02":
        image[18:20] = b"\x01\x01"
    connection = sqlite3.connect(":memory:")
    try:
        connection.deserialize(bytes(image))
        return [bytes(row[0]) for row in connection.execute("SELECT blob FROM Packages ORDER BY hnum")]
    finally:
        connection.close()


def headers_in_berkeley_db(db: bytes) -> list[bytes]:
    # Besides headers the file holds small bookkeeping values (the next instance number).
    return [value for value in hash_values(db) if len(value) > 16]


def source_of(header: RpmHeader) -> tuple[str, str] | None:
    """`openssl-3.0.7-16.el9.src.rpm` -> (`openssl`, `3.0.7-16.el9`), with the binary's epoch."""
    if not header.source_rpm:
        return None
    stem = header.source_rpm
    for suffix in (".src.rpm", ".nosrc.rpm"):
        stem = stem.removesuffix(suffix)
    parts = stem.rsplit("-", 2)
    if len(parts) != 3:
        return None
    name, version, release = parts
    epoch = f"{header.epoch}:" if header.epoch is not None else ""
    return name, f"{epoch}{version}-{release}"


def _packages(headers: Iterable[RpmHeader], kept: KeptFile, os: OperatingSystem | None) -> list[Package]:
    namespace = os.id if os is not None else "redhat"
    distro = f"{os.id}-{os.version_id}" if os is not None and os.version_id else None
    found = []
    for header in headers:
        if header.name == _KEYS:
            continue
        source = source_of(header) or (header.name, header.evr)
        version_release = f"{header.version}-{header.release}" if header.release else header.version
        epoch = str(header.epoch) if header.epoch is not None else None
        found.append(
            Package(
                ecosystem=Ecosystem.RPM,
                name=header.name,
                version=header.evr,
                purl=purl("rpm", header.name, version_release, namespace, arch=header.arch, epoch=epoch, distro=distro),
                path=kept.path,
                layer=kept.layer,
                source_name=source[0],
                source_version=source[1],
                arch=header.arch,
                licenses=(header.license,) if header.license else (),
            )
        )
    return found


def _detect(files: ImageFiles, os: OperatingSystem | None) -> Found:
    packages: list[Package] = []
    notes: list[str] = []
    databases = list(files.kept_for(DETECTOR.name))
    # An image converted to the SQLite backend may still carry the old file; SQLite wins.
    if any(kept.path.endswith(_SQLITE) for kept in databases):
        databases = [kept for kept in databases if kept.path.endswith(_SQLITE)]
    for kept in databases:
        try:
            blobs = headers_in_sqlite(kept.data) if kept.path.endswith(_SQLITE) else headers_in_berkeley_db(kept.data)
        except (sqlite3.Error, BerkeleyDbError) as exc:
            notes.append(f"the rpm database {kept.path} could not be read: {exc}")
            continue
        headers = []
        for blob in blobs:
            try:
                headers.append(parse_header(blob))
            except RpmHeaderError as exc:
                notes.append(f"an rpm header in {kept.path} could not be read: {exc}")
        packages.extend(_packages(headers, kept, os))
    return Found(packages=tuple(packages), notes=tuple(notes))


DETECTOR = Detector(name="rpm", wants=_wants, detect=_detect, size_cap=512 * MiB)
