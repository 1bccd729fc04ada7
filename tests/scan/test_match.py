"""Matching against the shared fixtures, with EXPECTED.json as the oracle: every entry's
`affected` ids are found (with the fixed version the records give), no `not_affected` id is.

The fixtures are imported through the real importers into a migrated SQLite database."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from portside.meta.sql.engine import create_engine
from portside.meta.sql.migrate import upgrade
from portside.meta.sql.vulndb import SqlVulnerabilities
from portside.scan.match import match, match_noting
from portside.scan.model import Ecosystem, Finding, Inventory, OperatingSystem, Package, Severity
from portside.scan.vulndb.update import import_path
from tests.scan.shared import VULNDB_FIXTURES

EXPECTED: dict[str, Any] = json.loads((VULNDB_FIXTURES / "EXPECTED.json").read_text())


@pytest.fixture(scope="module")
def database_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One database holding every fixture source, imported once for the module."""
    import asyncio

    path = tmp_path_factory.mktemp("vulndb") / "meta.db"

    async def fill() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(engine)
            store = SqlVulnerabilities(engine)
            for part in ("osv", "debian-tracker/vuln-list-debian", "alpine-secdb/v3.18-main.json"):
                await import_path(store, VULNDB_FIXTURES / part)
        finally:
            await engine.dispose()

    asyncio.run(fill())
    return path


@pytest.fixture
async def store(database_file: Path) -> AsyncIterator[SqlVulnerabilities]:
    engine = create_engine(f"sqlite+aiosqlite:///{database_file}")
    yield SqlVulnerabilities(engine)
    await engine.dispose()


def _package(ecosystem: Ecosystem, name: str, version: str, **extra: Any) -> Package:
    return Package(
        ecosystem=ecosystem,
        name=name,
        version=version,
        purl=f"pkg:generic/{name}@{version}",
        path="/test",
        layer="sha256:" + "0" * 64,
        **extra,
    )


def _ids(finding: Finding) -> set[str]:
    return {finding.vulnerability_id, finding.advisory_id, *finding.aliases}


def _check(findings: list[Finding], affected: list[str], not_affected: list[str]) -> None:
    found = set().union(*(_ids(f) for f in findings)) if findings else set()
    missing = [advisory for advisory in affected if advisory not in found]
    assert not missing, f"not reported: {missing}"
    wrong = [advisory for advisory in not_affected if advisory in found]
    assert not wrong, f"reported but not affected: {wrong}"


def _osv_fixed(advisory_id: str, name: str, version: str, ecosystem: str) -> str | None:
    """The fixed version the record itself gives for the range holding `version`, read
    straight from the fixture file (the lowest `fixed` above the installed version)."""
    from portside.scan.versions import SEMVER, sort_key

    record = json.loads((VULNDB_FIXTURES / "osv" / ecosystem / f"{advisory_id}.json").read_text())
    fixes = []
    for affected in record["affected"]:
        if affected["package"]["name"].lower().replace("_", "-") != name.lower():
            continue
        for item in affected.get("ranges", []):
            if item["type"] == "GIT":
                continue
            order = SEMVER if item["type"] == "SEMVER" else ecosystem
            for event in item["events"]:
                if "fixed" in event and sort_key(order, event["fixed"]) > sort_key(order, version):
                    fixes.append((sort_key(order, event["fixed"]), event["fixed"]))
    return min(fixes)[1] if fixes else None


@pytest.mark.parametrize("key", sorted(EXPECTED["osv"]))
async def test_language_packages(store: SqlVulnerabilities, key: str) -> None:
    case = EXPECTED["osv"][key]
    ecosystem = Ecosystem(case["ecosystem"])
    version = case["version"]
    if ecosystem is Ecosystem.GO and case["package"] == "stdlib":
        version = "go" + version  # as a binary's build info says it; OSV writes no prefix
    package = _package(ecosystem, case["package"], version)
    findings = await match(Inventory(os=None, packages=(package,)), store)
    _check(findings, case["affected"], case["not_affected"])
    by_advisory = {advisory: f for f in findings for advisory in _ids(f)}
    for advisory in case["affected"]:
        expected = _osv_fixed(advisory, case["package"], case["version"], case["ecosystem"])
        if expected is not None and by_advisory[advisory].advisory_id == advisory:
            assert by_advisory[advisory].fixed_version == expected, advisory
    assert all(f.package is package for f in findings)


def _dpkg_status(text: str) -> list[dict[str, str]]:
    """Stanzas of a dpkg status file (continuation lines dropped: nothing here needs them)."""
    stanzas = []
    for block in text.split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line and not line[0].isspace() and ":" in line:
                name, _, value = line.partition(":")
                fields[name] = value.strip()
        if fields.get("Package"):
            stanzas.append(fields)
    return stanzas


def _debian_packages() -> tuple[Package, ...]:
    packages = []
    for fields in _dpkg_status((VULNDB_FIXTURES / "debian12-minbase-status.txt").read_text()):
        if "installed" not in fields.get("Status", ""):
            continue
        source, _, source_version = fields.get("Source", fields["Package"]).partition(" ")
        packages.append(
            _package(
                Ecosystem.DEBIAN,
                fields["Package"],
                fields["Version"],
                source_name=source,
                source_version=source_version.strip("()") or fields["Version"],
            )
        )
    return tuple(packages)


async def test_debian_12_minbase(store: SqlVulnerabilities) -> None:
    case = EXPECTED["debian12_minbase"]
    packages = _debian_packages()
    installed = {p.advisory_name: p.advisory_version for p in packages}
    for record in case["records"]:  # the inventory is the one EXPECTED describes
        assert installed[record["source_package"]] == record["installed_source_version"]
    inventory = Inventory(os=OperatingSystem("debian", "12", "bookworm"), packages=packages)
    findings = await match(inventory, store)
    affected = [r["id"] for r in case["records"] if r["affected"]]
    _check(findings, affected, [r["id"] for r in case["records"] if not r["affected"]])
    for record in case["records"]:
        if not record["affected"]:
            continue
        hits = [f for f in findings if f.vulnerability_id == record["id"]]
        assert {f.package.advisory_name for f in hits} == {record["source_package"]}
        # The fix the rule applied names (an inherited unstable fix), else none (no-dsa, ignored, unfixed).
        fix = re.search(r"fixed (\S+)", record["rule_applied"])
        assert {f.fixed_version for f in hits} == {fix.group(1) if fix else None}, record["id"]
        if record["tracker_severity"] == "unimportant":
            assert all(f.severity is Severity.NEGLIGIBLE for f in hits)
    # One finding per (vulnerability, binary package): util-linux's binaries share its two CVEs.
    keys = [(f.vulnerability_id, f.package.name) for f in findings]
    assert len(keys) == len(set(keys))


async def test_debian_without_codename_uses_the_version(store: SqlVulnerabilities) -> None:
    zlib = next(p for p in _debian_packages() if p.advisory_name == "zlib")
    findings = await match(Inventory(os=OperatingSystem("debian", "12"), packages=(zlib,)), store)
    assert "CVE-2023-45853" in {f.vulnerability_id for f in findings}


@pytest.mark.parametrize("name", sorted(EXPECTED["alpine_v3.18_main"]["packages"]))
async def test_alpine_3_18(store: SqlVulnerabilities, name: str) -> None:
    case = EXPECTED["alpine_v3.18_main"]["packages"][name]
    package = _package(Ecosystem.ALPINE, name, case["version"], source_name=name)
    inventory = Inventory(os=OperatingSystem("alpine", "3.18.4"), packages=(package,))
    findings = await match(inventory, store)
    _check(findings, case["affected"], case["not_affected_fixed_at_or_before"] + case["not_affected_secfixes_0"])
    secfixes = json.loads((VULNDB_FIXTURES / "alpine-secdb/vuln-list/alpine/3.18/main" / f"{name}.json").read_text())
    fixed_in = {advisory: version for version, ids in secfixes["secfixes"].items() for advisory in ids}
    for finding in findings:
        assert finding.fixed_version == fixed_in[finding.vulnerability_id]
        assert finding.source == "alpine-secdb"


async def test_unreadable_versions_are_skipped_with_a_note(store: SqlVulnerabilities) -> None:
    broken = _package(Ecosystem.PYPI, "django", "not a version!")
    fine = _package(Ecosystem.PYPI, "requests", "2.19.1")
    findings, notes = await match_noting(Inventory(os=None, packages=(broken, fine)), store)
    assert {f.package.name for f in findings} == {"requests"}
    assert any("django" in note and "not a version!" in note for note in notes)


async def test_os_packages_without_an_os_are_noted(store: SqlVulnerabilities) -> None:
    package = _package(Ecosystem.DEBIAN, "zlib1g", "1:1.2.13.dfsg-1", source_name="zlib")
    findings, notes = await match_noting(Inventory(os=None, packages=(package,)), store)
    assert findings == []
    assert notes and "OS is unknown" in notes[0]


async def test_severity_from_cvss_vector(store: SqlVulnerabilities) -> None:
    lodash = _package(Ecosystem.NPM, "lodash", "4.17.15")
    findings = await match(Inventory(os=None, packages=(lodash,)), store)
    redos = next(f for f in findings if f.advisory_id == "GHSA-29mw-wpgm-hmr9")
    # CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L scores 5.3
    assert redos.cvss_score == 5.3
    assert redos.severity is Severity.MEDIUM
    assert redos.vulnerability_id == "CVE-2020-28500"


@pytest.fixture
async def own_store(tmp_path: Path) -> AsyncIterator[SqlVulnerabilities]:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'own.db'}")
    await upgrade(engine)
    yield SqlVulnerabilities(engine)
    await engine.dispose()


async def test_debian_tracker_export_by_codename(own_store: SqlVulnerabilities) -> None:
    sample = VULNDB_FIXTURES / "debian-tracker" / "tracker-json-sample.json"
    document = json.loads(sample.read_text())
    await import_path(own_store, sample)
    stretch = document["prototypejs"]["CVE-2008-7220"]["releases"]["stretch"]
    below = _package(Ecosystem.DEBIAN, "libjs-prototype", "1.6.0-1", source_name="prototypejs")
    inventory = Inventory(os=OperatingSystem("debian", "9", "stretch"), packages=(below,))
    findings = {f.vulnerability_id: f for f in await match(inventory, own_store)}
    # fixed_version "0" (CVE-2007-2383): stretch never had it
    assert set(findings) == {"CVE-2008-7220"}
    assert findings["CVE-2008-7220"].fixed_version == stretch["fixed_version"]
    assert findings["CVE-2008-7220"].severity is Severity.of(stretch["urgency"])
    at_fix = _package(Ecosystem.DEBIAN, "libjs-prototype", stretch["fixed_version"], source_name="prototypejs")
    assert await match(Inventory(os=inventory.os, packages=(at_fix,)), own_store) == []


async def test_one_finding_per_cve_across_sources(own_store: SqlVulnerabilities) -> None:
    from portside.meta.vulndb import Advisory, AffectedPackage, ImportedSource
    from portside.scan.vulndb.records import fixed_range

    def record(advisory_id: str, fixed: str, vector: str | None) -> Advisory:
        entry = AffectedPackage("PyPI", "demo-package", "", fixed_range(fixed), "[]", fixed)
        return Advisory(advisory_id, (entry,), aliases=("CVE-2099-0001",), cvss_vector=vector)

    await own_store.replace_source(ImportedSource("osv:PyPI", "a"), [record("PYSEC-2099-1", "1.5", None)])
    await own_store.replace_source(
        ImportedSource("osv:PyPI-ghsa", "b"),
        [record("GHSA-aaaa-bbbb-cccc", "1.5", "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H")],
    )
    package = _package(Ecosystem.PYPI, "Demo_Package", "1.0")
    (finding,) = await match(Inventory(os=None, packages=(package,)), own_store)
    assert finding.vulnerability_id == "CVE-2099-0001"
    assert {finding.advisory_id, *finding.aliases} == {"PYSEC-2099-1", "GHSA-aaaa-bbbb-cccc"}
    assert (finding.fixed_version, finding.severity, finding.cvss_score) == ("1.5", Severity.CRITICAL, 9.8)
