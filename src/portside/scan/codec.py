"""Inventories and findings as stored bytes: compact JSON, zlib-compressed, with a format
version, so an inventory stored today can be decoded and matched against tomorrow's
advisories, years from now, without reading the image again.

The JSON names every field (no positional arrays), so a later format that adds fields can
still read this one; a version it does not know is refused plainly, never guessed at."""

from __future__ import annotations

import json
import zlib
from typing import Any

from portside.scan.model import Ecosystem, Finding, Inventory, OperatingSystem, Package, Severity

__all__ = [
    "FORMAT_VERSION",
    "CodecError",
    "decode_findings",
    "decode_inventory",
    "encode_findings",
    "encode_inventory",
]

FORMAT_VERSION = 1
_INVENTORY = "portside.inventory"
_FINDINGS = "portside.findings"


class CodecError(ValueError):
    """The bytes are not an encoded inventory (or findings) this version can read."""


def encode_inventory(inventory: Inventory) -> bytes:
    return _pack(_INVENTORY, _inventory_json(inventory))


def decode_inventory(data: bytes) -> Inventory:
    body = _unpack(_INVENTORY, data)
    try:
        return _inventory_of(body)
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed inventory: {error!r}") from error


def encode_findings(findings: list[Finding] | tuple[Finding, ...]) -> bytes:
    return _pack(_FINDINGS, [_finding_json(finding) for finding in findings])


def decode_findings(data: bytes) -> list[Finding]:
    body = _unpack(_FINDINGS, data)
    try:
        return [_finding_of(item) for item in body]
    except (KeyError, TypeError, ValueError) as error:
        raise CodecError(f"malformed findings: {error!r}") from error


def _pack(kind: str, body: Any) -> bytes:
    text = json.dumps({"kind": kind, "version": FORMAT_VERSION, "body": body}, separators=(",", ":"))
    return zlib.compress(text.encode(), level=9)


def _unpack(kind: str, data: bytes) -> Any:
    try:
        envelope = json.loads(zlib.decompress(data))
    except (zlib.error, ValueError) as error:
        raise CodecError(f"not an encoded {kind}: {error}") from error
    if not isinstance(envelope, dict) or envelope.get("kind") != kind:
        raise CodecError(f"not an encoded {kind}")
    if envelope.get("version") != FORMAT_VERSION:
        raise CodecError(f"{kind} format version {envelope.get('version')!r} is not {FORMAT_VERSION}")
    return envelope["body"]


def _without_defaults(fields: dict[str, Any]) -> dict[str, Any]:
    """Leave out what is absent: most packages have no source, arch or licences."""
    return {key: value for key, value in fields.items() if value not in (None, [], "")}


def _inventory_json(inventory: Inventory) -> dict[str, Any]:
    os = inventory.os
    return _without_defaults(
        {
            "os": None
            if os is None
            else _without_defaults(
                {"id": os.id, "version_id": os.version_id, "codename": os.codename, "pretty_name": os.pretty_name}
            ),
            "packages": [_package_json(package) for package in inventory.packages],
            "notes": list(inventory.notes),
        }
    )


def _inventory_of(body: dict[str, Any]) -> Inventory:
    os = body.get("os")
    return Inventory(
        os=None
        if os is None
        else OperatingSystem(
            id=os["id"], version_id=os["version_id"], codename=os.get("codename"), pretty_name=os.get("pretty_name")
        ),
        packages=tuple(_package_of(item) for item in body.get("packages", [])),
        notes=tuple(body.get("notes", [])),
    )


def _package_json(package: Package) -> dict[str, Any]:
    return _without_defaults(
        {
            "ecosystem": package.ecosystem.value,
            "name": package.name,
            "version": package.version,
            "purl": package.purl,
            "path": package.path,
            "layer": package.layer,
            "source_name": package.source_name,
            "source_version": package.source_version,
            "arch": package.arch,
            "licenses": list(package.licenses),
        }
    )


def _package_of(item: dict[str, Any]) -> Package:
    return Package(
        ecosystem=Ecosystem(item["ecosystem"]),
        name=item["name"],
        version=item["version"],
        purl=item.get("purl", ""),
        path=item.get("path", ""),
        layer=item.get("layer", ""),
        source_name=item.get("source_name"),
        source_version=item.get("source_version"),
        arch=item.get("arch"),
        licenses=tuple(item.get("licenses", [])),
    )


def _finding_json(finding: Finding) -> dict[str, Any]:
    return _without_defaults(
        {
            "vulnerability_id": finding.vulnerability_id,
            "package": _package_json(finding.package),
            # By name, not number: the name is what stays meaningful if the scale grows.
            "severity": finding.severity.name,
            "fixed_version": finding.fixed_version,
            "advisory_id": finding.advisory_id,
            "source": finding.source,
            "description": finding.description,
            "links": list(finding.links),
            "cvss_vector": finding.cvss_vector,
            "cvss_score": finding.cvss_score,
            "cwe_ids": list(finding.cwe_ids),
            "aliases": list(finding.aliases),
        }
    )


def _finding_of(item: dict[str, Any]) -> Finding:
    return Finding(
        vulnerability_id=item["vulnerability_id"],
        package=_package_of(item["package"]),
        severity=Severity[item["severity"]],
        fixed_version=item.get("fixed_version"),
        advisory_id=item["advisory_id"],
        source=item["source"],
        description=item.get("description", ""),
        links=tuple(item.get("links", [])),
        cvss_vector=item.get("cvss_vector"),
        cvss_score=item.get("cvss_score"),
        cwe_ids=tuple(item.get("cwe_ids", [])),
        aliases=tuple(item.get("aliases", [])),
    )
