"""Go programs: every ELF file is scanned for Go's build info as it streams past (only that
small blob is kept), giving the toolchain, which OSV names as the module `stdlib` with a bare
version (`go1.21.3` -> `1.21.3`), the main module and every dependency built in. A main
module built from a checkout reports the version `(devel)`, which names no release; it is
left out."""

from __future__ import annotations

import re

from portside.scan.inventory.detector import Detector, Found, MiB
from portside.scan.inventory.files import ImageFiles, KeptFile
from portside.scan.inventory.go_buildinfo import BuildInfoError, Module, excerpt, is_pointer_form, parse
from portside.scan.inventory.purls import purl
from portside.scan.model import Ecosystem, OperatingSystem, Package

__all__ = ["DETECTOR", "stdlib_version"]

_GO_RELEASE = re.compile(r"^go(?P<version>\d+(?:\.\d+){0,2}(?:-?(?:rc|beta)\.?\d+)?)")
_UNRELEASED = "(devel)"
_STDLIB = "stdlib"


def stdlib_version(go_version: str) -> str | None:
    """`go1.21.3` -> `1.21.3`, `go1.22.0 X:boringcrypto` -> `1.22.0`; None for `devel +abc`."""
    match = _GO_RELEASE.match(go_version.strip())
    return match["version"] if match is not None else None


def _wants(path: str, mode: int) -> bool:
    return True  # the file's content (ELF magic, then the build info) decides


def _package(module: Module, kept: KeptFile) -> Package:
    namespace, _, name = module.path.rpartition("/")
    return Package(
        ecosystem=Ecosystem.GO,
        name=module.path,
        version=module.version,
        purl=purl("golang", name, module.version, namespace or None),
        path=kept.path,
        layer=kept.layer,
    )


def _detect(files: ImageFiles, os: OperatingSystem | None) -> Found:
    packages: list[Package] = []
    notes: list[str] = []
    for kept in files.kept_for(DETECTOR.name):
        if is_pointer_form(kept.data):
            notes.append(f"{kept.path} is a Go binary from before Go 1.18; its build info was not read")
            continue
        try:
            info = parse(kept.data)
        except BuildInfoError as exc:
            notes.append(f"the Go build info of {kept.path} could not be read: {exc}")
            continue
        version = stdlib_version(info.go_version)
        if version is None:
            notes.append(f"{kept.path} was built by an unreleased Go toolchain ({info.go_version})")
        else:
            packages.append(_package(Module(_STDLIB, version), kept))
        if info.main is not None and info.main.version != _UNRELEASED:
            packages.append(_package(info.main, kept))
        packages.extend(_package(dep, kept) for dep in info.deps)
    return Found(packages=tuple(packages), notes=tuple(notes))


DETECTOR = Detector(name="go", wants=_wants, detect=_detect, size_cap=512 * MiB, read=excerpt, guesses=True)
