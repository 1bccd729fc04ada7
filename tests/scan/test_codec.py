"""Stored inventories and findings: they round-trip exactly, they are compact, and a reader
of this format version reads bytes written long ago and refuses what it cannot read."""

from __future__ import annotations

import json
import zlib

import pytest

from portside.scan.codec import (
    FORMAT_VERSION,
    CodecError,
    decode_findings,
    decode_inventory,
    encode_findings,
    encode_inventory,
)
from portside.scan.model import Ecosystem, Finding, Inventory, OperatingSystem, Package, Severity
from tests.scan.test_sbom import debian_minbase_inventory, every_ecosystem_inventory


def test_inventory_round_trips_every_field() -> None:
    inventory = every_ecosystem_inventory()
    inventory = Inventory(os=inventory.os, packages=inventory.packages, notes=("rpmdb: corrupt page 4",))
    assert decode_inventory(encode_inventory(inventory)) == inventory


@pytest.mark.parametrize(
    "inventory",
    [
        Inventory(os=None, packages=()),
        Inventory(os=OperatingSystem("alpine", "3.18.4"), packages=()),
        debian_minbase_inventory(),
    ],
    ids=["empty", "os-only", "debian-minbase"],
)
def test_inventory_round_trips(inventory: Inventory) -> None:
    assert decode_inventory(encode_inventory(inventory)) == inventory


def test_encoding_is_compact_and_versioned() -> None:
    inventory = debian_minbase_inventory()
    data = encode_inventory(inventory)
    envelope = json.loads(zlib.decompress(data))
    assert envelope["version"] == FORMAT_VERSION
    assert envelope["kind"] == "portside.inventory"
    # The repeated path, layer and distro compress well: far smaller than the JSON itself.
    assert len(data) * 4 < len(zlib.decompress(data))
    assert encode_inventory(inventory) == data  # the same inventory, the same bytes


def test_reads_bytes_written_by_format_1() -> None:
    """Bytes as format 1 writes them, spelled out here: later readers must keep reading them."""
    stored = {
        "kind": "portside.inventory",
        "version": 1,
        "body": {
            "os": {"id": "debian", "version_id": "12", "codename": "bookworm"},
            "packages": [
                {
                    "ecosystem": "Debian",
                    "name": "login",
                    "version": "1:4.13+dfsg1-1+deb12u2",
                    "purl": "pkg:deb/debian/login@1%3A4.13%2Bdfsg1-1%2Bdeb12u2?arch=amd64&distro=debian-12",
                    "path": "/var/lib/dpkg/status",
                    "layer": "sha256:" + "1" * 64,
                    "source_name": "shadow",
                    "arch": "amd64",
                },
                {"ecosystem": "npm", "name": "@scope/pkg", "version": "1.0.0", "licenses": ["MIT"]},
            ],
        },
    }
    inventory = decode_inventory(zlib.compress(json.dumps(stored).encode()))
    assert inventory.os == OperatingSystem("debian", "12", "bookworm")
    login, scoped = inventory.packages
    assert (login.advisory_name, login.advisory_version) == ("shadow", "1:4.13+dfsg1-1+deb12u2")
    assert login.ecosystem is Ecosystem.DEBIAN
    assert (scoped.ecosystem, scoped.licenses, scoped.path, scoped.source_name) == (Ecosystem.NPM, ("MIT",), "", None)


def finding(package: Package, **changes: object) -> Finding:
    values: dict[str, object] = {
        "vulnerability_id": "CVE-2023-4641",
        "package": package,
        "severity": Severity.MEDIUM,
        "fixed_version": None,
        "advisory_id": "CVE-2023-4641",
        "source": "debian-tracker",
    }
    values.update(changes)
    return Finding(**values)  # type: ignore[arg-type]


def test_findings_round_trip() -> None:
    packages = every_ecosystem_inventory().packages
    findings = [
        finding(packages[0]),
        finding(
            packages[4],
            vulnerability_id="CVE-2019-10906",
            advisory_id="PYSEC-2019-217",
            source="osv",
            severity=Severity.HIGH,
            fixed_version="2.10.1",
            description="sandbox escape",
            links=("https://osv.dev/vulnerability/PYSEC-2019-217",),
            cvss_vector="CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:N",
            cvss_score=8.6,
            cwe_ids=("CWE-693",),
            aliases=("CVE-2019-10906", "GHSA-462w-v97r-4m45"),
        ),
        finding(packages[2], severity=Severity.UNKNOWN, cvss_score=0.0),
    ]
    assert decode_findings(encode_findings(findings)) == findings
    assert decode_findings(encode_findings([])) == []


@pytest.mark.parametrize(
    "data",
    [
        b"not zlib at all",
        zlib.compress(b"not json"),
        zlib.compress(b"[1, 2]"),
        zlib.compress(json.dumps({"kind": "portside.inventory", "version": 99, "body": {}}).encode()),
        zlib.compress(json.dumps({"kind": "portside.inventory", "version": 1, "body": {"packages": [{}]}}).encode()),
        zlib.compress(
            json.dumps(
                {"kind": "portside.inventory", "version": 1, "body": {"packages": [{"ecosystem": "Hackage"}]}}
            ).encode()
        ),
    ],
    ids=["garbage", "not-json", "not-an-envelope", "future-version", "missing-fields", "unknown-ecosystem"],
)
def test_refuses_what_it_cannot_read(data: bytes) -> None:
    with pytest.raises(CodecError):
        decode_inventory(data)


def test_findings_are_not_an_inventory() -> None:
    findings = encode_findings([finding(every_ecosystem_inventory().packages[0])])
    with pytest.raises(CodecError, match="not an encoded portside.inventory"):
        decode_inventory(findings)
    with pytest.raises(CodecError):
        decode_findings(encode_inventory(every_ecosystem_inventory()))
    broken = zlib.compress(
        json.dumps({"kind": "portside.findings", "version": 1, "body": [{"severity": "DIRE"}]}).encode()
    )
    with pytest.raises(CodecError):
        decode_findings(broken)
