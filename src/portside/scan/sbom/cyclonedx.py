"""CycloneDX 1.6 JSON for an image, built with cyclonedx-python-lib's model and written by
its 1.6 JSON serialiser: the image is the BOM's subject (`metadata.component`, a container),
the OS an operating-system component, each package a library component, and the
dependencies say what contains what (image → OS and language packages, OS → its packages).

Where a package was found is said in properties under `portside:` (the namespace prefix
CycloneDX's property taxonomy asks tools to use for their own names)."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.bom_ref import BomRef
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.license import DisjunctiveLicense, License, LicenseExpression
from cyclonedx.output.json import JsonV1Dot6
from cyclonedx.spdx import is_supported_id
from packageurl import PackageURL

from portside.scan.model import Inventory, OperatingSystem, Package
from portside.scan.sbom.licenses import LicenseTerm, read_licenses
from portside.scan.sbom.subject import OS_ECOSYSTEMS, SbomSubject, package_key, sorted_packages

__all__ = ["CYCLONEDX_JSON", "cyclonedx_document"]

CYCLONEDX_JSON = "application/vnd.cyclonedx+json"

PROPERTY_LAYER = "portside:layer:digest"
PROPERTY_PATH = "portside:package:path"
PROPERTY_ECOSYSTEM = "portside:package:ecosystem"
PROPERTY_SOURCE_NAME = "portside:package:source_name"
PROPERTY_SOURCE_VERSION = "portside:package:source_version"
PROPERTY_ARCH = "portside:package:arch"
PROPERTY_TAG = "portside:image:tag"
PROPERTY_REPOSITORY = "portside:image:repository"
PROPERTY_NOTE = "portside:inventory:note"

# The serial number is a UUID derived from the content, so that the same BOM is the same
# bytes (a random one would make every rendering differ).
_SERIAL_NAMESPACE = uuid.UUID("5a0b6ae2-3f0c-4f5e-9d55-6f7274736964")


def cyclonedx_document(inventory: Inventory, subject: SbomSubject) -> dict[str, Any]:
    """The CycloneDX 1.6 BOM (a JSON-ready dict) for `inventory`, the contents of `subject`."""
    packages = sorted_packages(inventory)
    bom = Bom()
    bom.metadata.timestamp = subject.created_utc
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="portside", version=subject.tool_version)
    )
    # What could not be read: a reader of the BOM should know it may be incomplete.
    bom.metadata.properties.update(Property(name=PROPERTY_NOTE, value=note) for note in inventory.notes)
    image = _image_component(subject)
    bom.metadata.component = image

    os_component = _os_component(inventory.os) if inventory.os is not None else None
    image_children: list[Component] = []
    os_children: list[Component] = []
    if os_component is not None:
        bom.components.add(os_component)
        image_children.append(os_component)
    for package in packages:
        component = _package_component(package)
        bom.components.add(component)
        if os_component is not None and package.ecosystem in OS_ECOSYSTEMS:
            os_children.append(component)
        else:
            image_children.append(component)
    bom.register_dependency(image, image_children)
    if os_component is not None:
        bom.register_dependency(os_component, os_children)
    for child in (*image_children, *os_children):
        if child is not os_component:
            bom.register_dependency(child, [])

    bom.serial_number = uuid.UUID(int=0)
    provisional = JsonV1Dot6(bom).output_as_string()
    bom.serial_number = uuid.uuid5(_SERIAL_NAMESPACE, hashlib.sha256(provisional.encode()).hexdigest())
    document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    return document


def _image_component(subject: SbomSubject) -> Component:
    properties = [Property(name=PROPERTY_REPOSITORY, value=subject.repository_url)]
    properties += [Property(name=PROPERTY_TAG, value=tag) for tag in sorted(subject.tags)]
    return Component(
        type=ComponentType.CONTAINER,
        name=subject.repository,
        version=subject.digest,
        bom_ref=BomRef(subject.purl),
        purl=PackageURL.from_string(subject.purl),
        properties=properties,
    )


def _os_component(os: OperatingSystem) -> Component:
    return Component(
        type=ComponentType.OPERATING_SYSTEM,
        name=os.id,
        version=os.version_id,
        bom_ref=BomRef(f"os:{os.id}@{os.version_id}"),
        description=os.pretty_name,
    )


def _package_component(package: Package) -> Component:
    properties = [
        Property(name=PROPERTY_ECOSYSTEM, value=package.ecosystem.value),
        Property(name=PROPERTY_LAYER, value=package.layer),
        Property(name=PROPERTY_PATH, value=package.path),
    ]
    if package.source_name:
        properties.append(Property(name=PROPERTY_SOURCE_NAME, value=package.source_name))
    if package.source_version:
        properties.append(Property(name=PROPERTY_SOURCE_VERSION, value=package.source_version))
    if package.arch:
        properties.append(Property(name=PROPERTY_ARCH, value=package.arch))
    group, name = _group_and_name(package)
    return Component(
        type=ComponentType.LIBRARY,
        group=group,
        name=name,
        version=package.version,
        bom_ref=BomRef(_bom_ref(package)),
        purl=PackageURL.from_string(package.purl) if package.purl else None,
        licenses=_licenses(read_licenses(package.licenses)),
        properties=properties,
    )


def _group_and_name(package: Package) -> tuple[str | None, str]:
    """Maven's `group:artifact` is a group and a name in CycloneDX, as its purl has them."""
    if package.ecosystem.value == "Maven" and ":" in package.name:
        group, _, name = package.name.partition(":")
        return group, name
    return None, package.name


def _bom_ref(package: Package) -> str:
    """The purl, made unique: the same purl can be installed twice (two `node_modules`
    trees), so a hash of where it was found follows it."""
    identity = hashlib.sha256("\0".join(package_key(package)).encode()).hexdigest()[:12]
    return f"{package.purl or package.ecosystem.value + '/' + package.name}#{identity}"


def _licenses(terms: tuple[LicenseTerm, ...]) -> list[License]:
    """A lone SPDX expression stays one (CycloneDX allows one expression, alone); otherwise
    each term is a licence: by id when SPDX's list in CycloneDX's schema knows it, by name
    (the declared text) when not."""
    if len(terms) == 1 and terms[0].spdx is not None and not terms[0].is_single_id:
        return [LicenseExpression(terms[0].spdx)]
    licenses: list[License] = []
    for term in terms:
        if term.spdx is not None and term.is_single_id and is_supported_id(term.spdx):
            licenses.append(DisjunctiveLicense(id=term.spdx))
        else:
            licenses.append(DisjunctiveLicense(name=term.spdx or term.text))
    return licenses
