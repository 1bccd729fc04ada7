"""Alpine's secdb (https://secdb.alpinelinux.org/v3.18/main.json) and its per-package
split (aquasecurity's vuln-list `alpine/3.18/main/<origin>.json`).

`secfixes` maps a fixed version to the ids it fixed, for an origin (source) package of
one branch: installed < fixed version means affected. The key "0" lists ids the branch
was never affected by; they are kept as not-affected entries. An id item may hold
several ids separated by spaces. Entries that are not a version and a list of ids are
skipped and said so. Source `alpine-secdb:<branch>-<repository>` (`v3.18-main`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from portside.scan.versions import UnreadableVersion, sort_key
from portside.scan.vulndb.records import Advisory, AffectedPackage, Parsed, fixed_range

__all__ = ["SecdbSources", "is_secdb", "is_secdb_package"]


def is_secdb(document: object) -> bool:
    return isinstance(document, dict) and isinstance(document.get("packages"), list) and "distroversion" in document


def is_secdb_package(document: object) -> bool:
    return isinstance(document, dict) and isinstance(document.get("secfixes"), dict) and "name" in document


class SecdbSources:
    """Accumulates secdb documents (whole or per package) into a source per branch and repository."""

    def __init__(self, origin: str):
        self.origin = origin
        # source name → advisory id → entries
        self._entries: dict[str, dict[str, list[AffectedPackage]]] = {}
        self._skipped: dict[str, list[str]] = {}

    def add_secdb(self, document: Mapping[str, Any], where: str) -> None:
        for item in document.get("packages") or []:
            package = item.get("pkg") if isinstance(item, dict) else None
            if isinstance(package, dict):
                self._add(document, package, where)
            else:
                self._skip(document, f"{where}: a package entry that is not {{'pkg': …}}")

    def add_package(self, document: Mapping[str, Any], where: str) -> None:
        self._add(document, document, where)

    def _name(self, document: Mapping[str, Any]) -> tuple[str, str]:
        branch = str(document.get("distroversion") or "unknown")
        return f"alpine-secdb:{branch}-{document.get('reponame') or 'main'}", branch

    def _skip(self, document: Mapping[str, Any], why: str) -> None:
        self._skipped.setdefault(self._name(document)[0], []).append(why)

    def _add(self, document: Mapping[str, Any], package: Mapping[str, Any], where: str) -> None:
        source, branch = self._name(document)
        name, secfixes = package.get("name"), package.get("secfixes")
        if not isinstance(name, str) or not isinstance(secfixes, dict):
            self._skip(document, f"{where}: a package without a name or secfixes")
            return
        advisories = self._entries.setdefault(source, {})
        for version, ids in secfixes.items():
            never = version == "0"
            if not isinstance(ids, list) or not isinstance(version, str):
                self._skip(document, f"{where}: {name} {version!r}: not a list of ids")
                continue
            if not never:
                try:
                    sort_key("Alpine", version)
                except UnreadableVersion:
                    self._skip(document, f"{where}: {name}: {version!r} is not an apk version")
                    continue
            entry = AffectedPackage(
                ecosystem="Alpine",
                package=name,
                release=branch,
                ranges=fixed_range(None if never else version),
                fixed=None if never else version,
                not_affected=never,
            )
            for item in ids:
                for advisory_id in str(item).split():
                    advisories.setdefault(advisory_id, []).append(entry)

    def sources(self) -> list[Parsed]:
        found = []
        for name, advisories in self._entries.items():
            parsed = Parsed(name, self.origin)
            parsed.advisories = [
                Advisory(id=advisory_id, affected=tuple(dict.fromkeys(entries)))
                for advisory_id, entries in advisories.items()
            ]
            parsed.skipped = self._skipped.get(name, [])
            found.append(parsed)
        return found
