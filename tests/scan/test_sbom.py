"""SPDX 2.3 and CycloneDX 1.6 documents for an image, checked against the formats' own JSON
schemas (no network: the $refs resolve in a local registry), their identifiers, licences and
relationships, and their stability."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator
from license_expression import get_spdx_licensing  # type: ignore[import-untyped]
from packageurl import PackageURL
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from portside.scan.model import Ecosystem, Inventory, OperatingSystem, Package
from portside.scan.sbom import CYCLONEDX_JSON, SPDX_JSON, SbomSubject, cyclonedx_document, spdx_document
from tests.scan.shared import SPECS, VULNDB_FIXTURES

LAYER_OS = "sha256:" + "1" * 64
LAYER_APP = "sha256:" + "2" * 64
IMAGE_DIGEST = "sha256:" + "ab" * 32
OS_ECOSYSTEMS = {Ecosystem.DEBIAN, Ecosystem.UBUNTU, Ecosystem.ALPINE, Ecosystem.RPM}


def pkg(
    ecosystem: Ecosystem, name: str, version: str, purl: str, path: str, layer: str = LAYER_APP, **extra: Any
) -> Package:
    return Package(ecosystem=ecosystem, name=name, version=version, purl=purl, path=path, layer=layer, **extra)


def every_ecosystem_inventory() -> Inventory:
    """One package of each ecosystem, with the names and versions that trip writers up."""
    debian = OperatingSystem("debian", "12", "bookworm", "Debian GNU/Linux 12 (bookworm)")
    return Inventory(
        os=debian,
        packages=(
            pkg(
                Ecosystem.DEBIAN,
                "bsdutils",
                "1:2.38.1-5+b1",  # an epoch, and a binNMU suffix
                "pkg:deb/debian/bsdutils@1%3A2.38.1-5%2Bb1?arch=amd64&distro=debian-12",
                "/var/lib/dpkg/status",
                LAYER_OS,
                source_name="util-linux",
                source_version="2.38.1-5",
                arch="amd64",
                licenses=("GPL-2.0+", "BSD-like", "public-domain"),
            ),
            pkg(
                Ecosystem.UBUNTU,
                "libssl3",
                "3.0.2-0ubuntu1.10",
                "pkg:deb/ubuntu/libssl3@3.0.2-0ubuntu1.10?arch=amd64&distro=ubuntu-22.04",
                "/var/lib/dpkg/status",
                LAYER_OS,
                source_name="openssl",
                licenses=("Apache-2.0",),
            ),
            pkg(
                Ecosystem.ALPINE,
                "busybox",
                "1.36.1-r15",
                "pkg:apk/alpine/busybox@1.36.1-r15?arch=x86_64&distro=3.18",
                "/lib/apk/db/installed",
                LAYER_OS,
                licenses=("GPL-2.0-only",),
            ),
            pkg(
                Ecosystem.RPM,
                "vim-minimal",
                "2:8.2.2637-20.el9_1",
                "pkg:rpm/redhat/vim-minimal@8.2.2637-20.el9_1?arch=x86_64&epoch=2",
                "/var/lib/rpm/rpmdb.sqlite",
                LAYER_OS,
                source_name="vim",
                source_version="8.2.2637-20.el9_1",
                licenses=("Vim and MIT",),
            ),
            pkg(
                Ecosystem.PYPI,
                "Jinja2",
                "2.10",
                "pkg:pypi/jinja2@2.10",
                "/usr/lib/python3/dist-packages/Jinja2-2.10.dist-info/METADATA",
                licenses=("BSD",),  # what old METADATA says; no SPDX licence is called that
            ),
            pkg(
                Ecosystem.NPM,
                "@scope/pkg",
                "1.0.0-beta.1",
                "pkg:npm/%40scope/pkg@1.0.0-beta.1",
                "/app/node_modules/@scope/pkg/package.json",
                licenses=("(MIT OR Apache-2.0)",),
            ),
            # The same package twice, in two node_modules trees.
            pkg(
                Ecosystem.NPM,
                "lodash",
                "4.17.20",
                "pkg:npm/lodash@4.17.20",
                "/app/node_modules/lodash/package.json",
                licenses=("MIT",),
            ),
            pkg(
                Ecosystem.NPM,
                "lodash",
                "4.17.20",
                "pkg:npm/lodash@4.17.20",
                "/app/node_modules/a/node_modules/lodash/package.json",
                licenses=("mit",),
            ),
            pkg(
                Ecosystem.GO,
                "github.com/opencontainers/runc",
                "v1.1.4",
                "pkg:golang/github.com/opencontainers/runc@v1.1.4",
                "/usr/local/bin/runc",
            ),
            pkg(Ecosystem.GO, "stdlib", "1.21.5", "pkg:golang/stdlib@1.21.5", "/usr/local/bin/runc"),
            pkg(
                Ecosystem.MAVEN,
                "org.apache.logging.log4j:log4j-core",
                "2.14.1",
                "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
                "/app/lib/log4j-core-2.14.1.jar",
                licenses=("Apache License, Version 2.0",),
            ),
            pkg(
                Ecosystem.CRATES,
                "serde",
                "1.0.190",
                "pkg:cargo/serde@1.0.190",
                "/usr/local/bin/tool",
                licenses=("MIT OR Apache-2.0", "Public Domain", "Public-Domain"),
            ),
        ),
    )


def debian_minbase_inventory() -> Inventory:
    """The 88 packages of a real Debian 12 minbase dpkg status file."""
    stanzas = (VULNDB_FIXTURES / "debian12-minbase-status.txt").read_text().split("\n\n")
    packages = []
    for stanza in stanzas:
        fields = dict(line.split(": ", 1) for line in stanza.splitlines() if ": " in line and not line.startswith(" "))
        if "Package" not in fields:
            continue
        source, _, source_version = fields.get("Source", fields["Package"]).partition(" ")
        purl = PackageURL(
            "deb",
            "debian",
            fields["Package"],
            fields["Version"],
            {"arch": fields["Architecture"], "distro": "debian-12"},
        )
        packages.append(
            Package(
                Ecosystem.DEBIAN,
                fields["Package"],
                fields["Version"],
                purl.to_string(),
                "/var/lib/dpkg/status",
                LAYER_OS,
                source_name=source,
                source_version=source_version.strip("()") or fields["Version"],
                arch=fields["Architecture"],
            )
        )
    return Inventory(os=OperatingSystem("debian", "12", "bookworm"), packages=tuple(packages))


def subject(**changes: Any) -> SbomSubject:
    values: dict[str, Any] = {
        "repository": "team/web-app",
        "digest": IMAGE_DIGEST,
        "tags": ("v2", "latest"),
        "created": dt.datetime(2024, 5, 1, 12, 30, 45, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        "tool_version": "1.4.0",
        "registry": "registry.example.com:5000",
    }
    values.update(changes)
    return SbomSubject(**values)


def shuffled(inventory: Inventory) -> Inventory:
    packages = list(inventory.packages)
    random.Random(7).shuffle(packages)
    return Inventory(os=inventory.os, packages=tuple(reversed(packages)), notes=inventory.notes)


def schema_validator(path: Path, *others: Path) -> Draft7Validator:
    """A validator for the schema at `path` whose $refs resolve among `others` by their $id."""
    schemas = [json.loads(p.read_text()) for p in (path, *others)]
    registry: Registry[Any] = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema, default_specification=DRAFT7)) for schema in schemas
    )
    return Draft7Validator(schemas[0], registry=registry, format_checker=Draft7Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def spdx_schema() -> Draft7Validator:
    return schema_validator(SPECS / "spdx-2.3-schema.json")


@pytest.fixture(scope="module")
def cyclonedx_schema() -> Draft7Validator:
    folder = SPECS / "cyclonedx-1.6"
    return schema_validator(
        folder / "bom-1.6.schema.json", folder / "spdx.schema.json", folder / "jsf-0.82.schema.json"
    )


def assert_valid(validator: Draft7Validator, document: dict[str, Any]) -> None:
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


SPDX_ID = re.compile(r"^SPDXRef-[A-Za-z0-9.\-]+$")
LICENSE_REF = re.compile(r"LicenseRef-[A-Za-z0-9.\-]+")


# SPDX


def test_media_types() -> None:
    assert SPDX_JSON == "application/spdx+json"
    assert CYCLONEDX_JSON == "application/vnd.cyclonedx+json"


@pytest.mark.parametrize("inventory", [every_ecosystem_inventory(), debian_minbase_inventory()], ids=["all", "deb"])
def test_spdx_document_is_valid_spdx_2_3(inventory: Inventory, spdx_schema: Draft7Validator) -> None:
    document = spdx_document(inventory, subject())
    assert_valid(spdx_schema, document)
    assert document["spdxVersion"] == "SPDX-2.3"
    assert document["dataLicense"] == "CC0-1.0"
    assert document["creationInfo"]["creators"] == ["Tool: portside-1.4.0"]
    # In UTC, to the second, as SPDX writes times.
    assert document["creationInfo"]["created"] == "2024-05-01T10:30:45Z"

    ids = [package["SPDXID"] for package in document["packages"]]
    assert len(ids) == len(set(ids)), "SPDX identifiers must be unique"
    assert all(SPDX_ID.match(spdx_id) for spdx_id in ids), ids
    # One per distinct installed package, plus the image and its OS.
    assert len(ids) == len(set(inventory.packages)) + 2
    known = {*ids, "SPDXRef-DOCUMENT"}
    for relationship in document["relationships"]:
        assert relationship["spdxElementId"] in known
        assert relationship["relatedSpdxElement"] in known


def test_spdx_image_and_os_packages() -> None:
    document = spdx_document(every_ecosystem_inventory(), subject())
    by_id = {package["SPDXID"]: package for package in document["packages"]}
    (image_id,) = document["documentDescribes"]
    image = by_id[image_id]
    assert image["primaryPackagePurpose"] == "CONTAINER"
    (image_ref,) = image["externalRefs"]
    purl = PackageURL.from_string(image_ref["referenceLocator"])
    assert (purl.type, purl.name, purl.version) == ("oci", "web-app", IMAGE_DIGEST)
    assert purl.qualifiers == {"repository_url": "registry.example.com:5000/team/web-app"}
    assert {"spdxElementId": "SPDXRef-DOCUMENT", "relationshipType": "DESCRIBES", "relatedSpdxElement": image_id} in (
        document["relationships"]
    )

    (os_package,) = [p for p in document["packages"] if p.get("primaryPackagePurpose") == "OPERATING_SYSTEM"]
    assert (os_package["name"], os_package["versionInfo"]) == ("debian", "12")
    contains = {(r["spdxElementId"], r["relatedSpdxElement"]) for r in document["relationships"]}
    assert (image_id, os_package["SPDXID"]) in contains


def test_spdx_packages_say_what_and_where() -> None:
    inventory = every_ecosystem_inventory()
    document = spdx_document(inventory, subject())
    by_purl_and_path: dict[tuple[str, str], dict[str, Any]] = {}
    for package in document["packages"]:
        for ref in package.get("externalRefs", []):
            assert ref["referenceCategory"] == "PACKAGE-MANAGER"
            assert ref["referenceType"] == "purl"
            by_purl_and_path[ref["referenceLocator"], package.get("sourceInfo", "")] = package
    os_id = next(p["SPDXID"] for p in document["packages"] if p.get("primaryPackagePurpose") == "OPERATING_SYSTEM")
    image_id = document["documentDescribes"][0]
    contains = {(r["relatedSpdxElement"], r["spdxElementId"]) for r in document["relationships"]}
    for package in inventory.packages:
        matches = [
            entry
            for (purl, source_info), entry in by_purl_and_path.items()
            if purl == package.purl and package.layer in source_info and package.path in source_info
        ]
        assert len(matches) == 1, package
        (entry,) = matches
        assert (entry["name"], entry["versionInfo"]) == (package.name, package.version)
        assert entry["downloadLocation"] == "NOASSERTION"
        parent = os_id if package.ecosystem in OS_ECOSYSTEMS else image_id
        assert (entry["SPDXID"], parent) in contains


def _declared(document: dict[str, Any], name: str) -> str:
    (package,) = [p for p in document["packages"] if p["name"] == name]
    declared: str = package["licenseDeclared"]
    return declared


def test_spdx_licences_are_spdx_expressions_or_declared_refs() -> None:
    document = spdx_document(every_ecosystem_inventory(), subject())
    extracted = {info["licenseId"]: info for info in document["hasExtractedLicensingInfos"]}
    licensing = get_spdx_licensing()
    for package in document["packages"]:
        assert package["licenseConcluded"] == "NOASSERTION"
        declared = package["licenseDeclared"]
        if declared == "NOASSERTION":
            continue
        refs = LICENSE_REF.findall(declared)
        assert all(ref in extracted for ref in refs), (declared, sorted(extracted))
        # With each LicenseRef standing for a known id, the rest must be valid SPDX.
        assert not licensing.validate(LICENSE_REF.sub("MIT", declared)).errors, declared

    assert _declared(document, "stdlib") == "NOASSERTION"
    assert _declared(document, "busybox") == "GPL-2.0-only"
    assert _declared(document, "@scope/pkg") == "MIT OR Apache-2.0"
    assert _declared(document, "vim-minimal") == "Vim AND MIT"  # normalised operator case
    bsdutils = _declared(document, "bsdutils")
    assert "GPL-2.0-or-later" in bsdutils  # the deprecated `+` form, normalised
    assert "LicenseRef-BSD-like" in bsdutils
    assert extracted["LicenseRef-BSD-like"]["extractedText"] == "BSD-like"
    # Two texts that differ only in characters an id cannot hold stay two licences.
    serde_refs = set(LICENSE_REF.findall(_declared(document, "serde")))
    assert len(serde_refs) == 2
    assert {extracted[ref]["extractedText"] for ref in serde_refs} == {"Public Domain", "Public-Domain"}


def test_spdx_is_deterministic_and_its_namespace_names_its_content() -> None:
    inventory = every_ecosystem_inventory()
    first = spdx_document(inventory, subject())
    assert json.dumps(spdx_document(shuffled(inventory), subject())) == json.dumps(first)

    namespace = first["documentNamespace"]
    assert namespace.startswith("https://registry.example.com:5000/spdxdocs/team/web-app/sha256-")
    other_digest = spdx_document(inventory, subject(digest="sha256:" + "cd" * 32))
    fewer = Inventory(os=inventory.os, packages=inventory.packages[1:])
    assert (
        len({namespace, other_digest["documentNamespace"], spdx_document(fewer, subject())["documentNamespace"]}) == 3
    )
    no_registry = spdx_document(inventory, subject(registry=""))
    assert no_registry["documentNamespace"].startswith("https://portside.invalid/spdxdocs/team/web-app/")


def distroless_inventory() -> Inventory:
    """No OS, only what the Go binaries say, and a note of what could not be read."""
    return Inventory(
        os=None,
        packages=tuple(p for p in every_ecosystem_inventory().packages if p.ecosystem is Ecosystem.GO),
        notes=("/usr/local/bin/broken: not a readable ELF file",),
    )


def test_spdx_without_os(spdx_schema: Draft7Validator) -> None:
    """A distroless image: all of it is the image's, and what was not read is said."""
    inventory = distroless_inventory()
    document = spdx_document(inventory, subject(tags=()))
    assert_valid(spdx_schema, document)
    assert not any(p.get("primaryPackagePurpose") == "OPERATING_SYSTEM" for p in document["packages"])
    image_id = document["documentDescribes"][0]
    contained = [r for r in document["relationships"] if r["relationshipType"] == "CONTAINS"]
    assert len(contained) == 2
    assert all(r["spdxElementId"] == image_id for r in contained)
    assert "hasExtractedLicensingInfos" not in document
    assert document["comment"] == "Not read: /usr/local/bin/broken: not a readable ELF file"


# CycloneDX


@pytest.mark.parametrize("inventory", [every_ecosystem_inventory(), debian_minbase_inventory()], ids=["all", "deb"])
def test_cyclonedx_document_is_valid_cyclonedx_1_6(inventory: Inventory, cyclonedx_schema: Draft7Validator) -> None:
    document = cyclonedx_document(inventory, subject())
    assert_valid(cyclonedx_schema, document)
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")
    assert re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", document["serialNumber"])
    refs = [component["bom-ref"] for component in document["components"]]
    assert len(refs) == len(set(refs))
    assert len(refs) == len(set(inventory.packages)) + 1  # and the OS
    known = {*refs, document["metadata"]["component"]["bom-ref"]}
    for dependency in document["dependencies"]:
        assert dependency["ref"] in known
        assert set(dependency.get("dependsOn", [])) <= known


def test_cyclonedx_image_tool_and_os() -> None:
    document = cyclonedx_document(every_ecosystem_inventory(), subject())
    metadata = document["metadata"]
    image = metadata["component"]
    assert image["type"] == "container"
    purl = PackageURL.from_string(image["purl"])
    assert (purl.type, purl.name, purl.version) == ("oci", "web-app", IMAGE_DIGEST)
    tags = sorted(p["value"] for p in image["properties"] if p["name"] == "portside:image:tag")
    assert tags == ["latest", "v2"]
    assert metadata["tools"]["components"] == [{"type": "application", "name": "portside", "version": "1.4.0"}]
    assert dt.datetime.fromisoformat(metadata["timestamp"]) == dt.datetime(2024, 5, 1, 10, 30, 45, tzinfo=dt.UTC)

    (os_component,) = [c for c in document["components"] if c["type"] == "operating-system"]
    assert (os_component["name"], os_component["version"]) == ("debian", "12")
    dependencies = {d["ref"]: set(d.get("dependsOn", [])) for d in document["dependencies"]}
    assert os_component["bom-ref"] in dependencies[image["bom-ref"]]


def test_cyclonedx_components_say_what_and_where() -> None:
    inventory = every_ecosystem_inventory()
    document = cyclonedx_document(inventory, subject())
    image_ref = document["metadata"]["component"]["bom-ref"]
    (os_ref,) = [c["bom-ref"] for c in document["components"] if c["type"] == "operating-system"]
    dependencies = {d["ref"]: set(d.get("dependsOn", [])) for d in document["dependencies"]}
    libraries = [c for c in document["components"] if c["type"] == "library"]

    for package in inventory.packages:
        matches = []
        for component in libraries:
            properties = {p["name"]: p["value"] for p in component["properties"]}
            # Compared as purls, not strings: the library writes its own canonical form.
            same_purl = PackageURL.from_string(component["purl"]) == PackageURL.from_string(package.purl)
            if same_purl and properties["portside:package:path"] == package.path:
                matches.append((component, properties))
        assert len(matches) == 1, package
        ((component, properties),) = matches
        assert properties["portside:layer:digest"] == package.layer
        assert properties["portside:package:ecosystem"] == package.ecosystem.value
        assert component["version"] == package.version
        full_name = f"{component['group']}:{component['name']}" if "group" in component else component["name"]
        assert full_name == package.name
        parent = os_ref if package.ecosystem in OS_ECOSYSTEMS else image_ref
        assert component["bom-ref"] in dependencies[parent]
        assert all(p["name"].startswith("portside:") for p in component["properties"])


def _licenses(document: dict[str, Any], name: str) -> list[dict[str, Any]]:
    (component,) = [c for c in document["components"] if c["name"] == name]
    licenses: list[dict[str, Any]] = component.get("licenses", [])
    return licenses


def test_cyclonedx_licences() -> None:
    document = cyclonedx_document(every_ecosystem_inventory(), subject())
    assert _licenses(document, "busybox") == [{"license": {"id": "GPL-2.0-only"}}]
    assert _licenses(document, "@scope/pkg") == [{"expression": "MIT OR Apache-2.0"}]
    assert _licenses(document, "stdlib") == []
    bsdutils = _licenses(document, "bsdutils")
    assert {"license": {"id": "GPL-2.0-or-later"}} in bsdutils
    assert {"license": {"name": "BSD-like"}} in bsdutils
    # An expression cannot stand beside other licences in CycloneDX: it is named instead.
    serde = _licenses(document, "serde")
    assert {"license": {"name": "MIT OR Apache-2.0"}} in serde
    assert len(serde) == 3


def test_cyclonedx_is_deterministic() -> None:
    inventory = every_ecosystem_inventory()
    first = cyclonedx_document(inventory, subject())
    assert json.dumps(cyclonedx_document(shuffled(inventory), subject())) == json.dumps(first)
    fewer = Inventory(os=inventory.os, packages=inventory.packages[1:])
    assert cyclonedx_document(fewer, subject())["serialNumber"] != first["serialNumber"]


def test_cyclonedx_without_os(cyclonedx_schema: Draft7Validator) -> None:
    inventory = distroless_inventory()
    document = cyclonedx_document(inventory, subject(tags=()))
    assert_valid(cyclonedx_schema, document)
    assert {c["type"] for c in document["components"]} == {"library"}
    image_ref = document["metadata"]["component"]["bom-ref"]
    dependencies = {d["ref"]: set(d.get("dependsOn", [])) for d in document["dependencies"]}
    assert dependencies[image_ref] == {c["bom-ref"] for c in document["components"]}
    assert document["metadata"]["properties"] == [
        {"name": "portside:inventory:note", "value": "/usr/local/bin/broken: not a readable ELF file"}
    ]


@pytest.mark.parametrize("inventory", [every_ecosystem_inventory(), debian_minbase_inventory()], ids=["all", "deb"])
def test_spdx_document_passes_spdx_tools_validation(inventory: Inventory) -> None:
    """SPDX's own validator checks what the schema cannot: identifiers, that every
    LicenseRef is declared, that the namespace is a URI, that relationships resolve."""
    from spdx_tools.spdx.parser.jsonlikedict.json_like_dict_parser import JsonLikeDictParser
    from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

    parsed = JsonLikeDictParser().parse(spdx_document(inventory, subject()))
    messages = [message.validation_message for message in validate_full_spdx_document(parsed)]
    assert messages == []
    assert len(parsed.packages) == len(set(inventory.packages)) + 2
