"""Real rpm databases for inventory tests: packages built by `rpmbuild`, recorded by `rpm
--justdb` (rpm 4.18 writes SQLite), and the same real header blobs loaded into a Berkeley DB
hash file by Berkeley DB's own `db_load` (Debian's rpm can read that format, not write it)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

SPEC = """\
Name: {name}
Version: {version}
Release: {release}
{epoch_line}
Summary: a test package
License: {license}
BuildArch: noarch

%description
A package built for Portside's inventory tests.

%files
"""

PACKAGES = (
    # name, epoch, version, release, license
    ("portside-probe", None, "1.2.3", "4.el9", "Apache-2.0"),
    ("portside-epoch", 2, "0.9", "1", "MIT"),
)


@dataclass(frozen=True)
class RpmDatabases:
    sqlite: Path  # rpmdb.sqlite
    berkeley_db: Path  # Packages
    query: list[str]  # `rpm -qa` of the SQLite database, one line per package


def tools_present() -> bool:
    return all(shutil.which(tool) for tool in ("rpm", "rpmbuild", "db5.3_load"))


def _escape(data: bytes) -> str:
    """db_load -T text: printable bytes as themselves, backslash doubled, others as \\hh."""
    return "".join(
        chr(byte) if 0x20 <= byte < 0x7F and byte != 0x5C else ("\\\\" if byte == 0x5C else f"\\{byte:02x}")
        for byte in data
    )


def build(work: Path) -> RpmDatabases:
    top = work / "rpmbuild"
    for name, epoch, version, release, license_name in PACKAGES:
        spec = work / f"{name}.spec"
        epoch_line = f"Epoch: {epoch}" if epoch is not None else ""
        spec.write_text(
            SPEC.format(name=name, version=version, release=release, epoch_line=epoch_line, license=license_name)
        )
        subprocess.run(["rpmbuild", "--define", f"_topdir {top}", "-bb", str(spec)], check=True, capture_output=True)
    rpms = sorted((top / "RPMS").rglob("*.rpm"))
    dbpath = work / "db"
    dbpath.mkdir()
    subprocess.run(["rpm", "--dbpath", str(dbpath), "--initdb"], check=True, capture_output=True)
    subprocess.run(
        ["rpm", "--dbpath", str(dbpath), "-i", "--nodeps", "--justdb", *map(str, rpms)], check=True, capture_output=True
    )
    query = subprocess.run(
        [
            "rpm",
            "--dbpath",
            str(dbpath),
            "-qa",
            "--qf",
            "%{NAME}|%{EPOCH}|%{VERSION}|%{RELEASE}|%{ARCH}|%{SOURCERPM}|%{LICENSE}\\n",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.splitlines()
    sqlite = dbpath / "rpmdb.sqlite"
    connection = sqlite3.connect(sqlite)
    try:
        rows = connection.execute("SELECT hnum, blob FROM Packages ORDER BY hnum").fetchall()
    finally:
        connection.close()
    lines = []
    for hnum, blob in rows:
        lines += [_escape(int(hnum).to_bytes(4, "little")), _escape(bytes(blob))]
    berkeley_db = work / "Packages"
    subprocess.run(
        ["db5.3_load", "-T", "-t", "hash", str(berkeley_db)], input="\n".join(lines) + "\n", text=True, check=True
    )
    return RpmDatabases(sqlite=sqlite, berkeley_db=berkeley_db, query=sorted(query))
