"""Rust programs built with `cargo auditable`: every executable ELF file is asked for its
`.dep-v0` section (the compressed dependency list, `rust_audit`), and each crate built in
from crates.io is a package of that ecosystem (`pkg:cargo/<name>@<version>`), as RustSec's
advisories in OSV name them. Left out: build dependencies (build scripts and proc macros
run at build time, they are not in the program) and crates from anywhere but crates.io
(the workspace's own, git checkouts, other registries), whose versions name no crates.io
release; the root crate is reported only when it came from crates.io itself (a program
built by `cargo auditable install`).

The section table that says where `.dep-v0` is comes after the section, at the end of the
file, so this detector reads a file it can seek in (`Detector.seeks`); it shares the
stream with the Go detector, which reads the same files."""

from __future__ import annotations

from portside.scan.inventory.detector import Detector, Found, MiB
from portside.scan.inventory.files import ImageFiles, KeptFile
from portside.scan.inventory.purls import purl
from portside.scan.inventory.rust_audit import AuditDataError, Crate, excerpt, parse
from portside.scan.model import Ecosystem, OperatingSystem, Package

__all__ = ["DETECTOR"]

_CRATES_IO = "crates.io"


def _wants(path: str, mode: int) -> bool:
    # cargo auditable writes the list into the programs it links; a program is executable.
    return bool(mode & 0o111)


def _package(crate: Crate, kept: KeptFile) -> Package:
    return Package(
        ecosystem=Ecosystem.CRATES,
        name=crate.name,
        version=crate.version,
        purl=purl("cargo", crate.name, crate.version),
        path=kept.path,
        layer=kept.layer,
    )


def _detect(files: ImageFiles, os: OperatingSystem | None) -> Found:
    packages: list[Package] = []
    notes: list[str] = []
    for kept in files.kept_for(DETECTOR.name):
        try:
            crates, unnamed = parse(kept.data)
        except AuditDataError as exc:
            notes.append(f"the cargo auditable data of {kept.path} could not be read: {exc}")
            continue
        if unnamed:
            notes.append(f"{unnamed} entries of the cargo auditable data of {kept.path} name no crate and version")
        seen: set[tuple[str, str]] = set()
        for crate in crates:
            if crate.source != _CRATES_IO or crate.build_only or (crate.name, crate.version) in seen:
                continue
            seen.add((crate.name, crate.version))
            packages.append(_package(crate, kept))
    return Found(packages=tuple(packages), notes=tuple(notes))


DETECTOR = Detector(
    name="rust", wants=_wants, detect=_detect, size_cap=512 * MiB, read=excerpt, guesses=True, seeks=True
)
