"""SPDX 2.3 JSON for an image: a root package for the image, one package for the operating
system, one per installed package, and the relationships between them.

The document's namespace is derived from the image digest and a hash of the document's own
content, so the same inventory of the same image always gets the same namespace, and any
change of content gets a new one (SPDX asks that a namespace name one document only)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from portside.scan.model import Inventory, OperatingSystem, Package
from portside.scan.sbom.licenses import LicenseTerm, license_ref, read_licenses
from portside.scan.sbom.subject import OS_ECOSYSTEMS, SbomSubject, package_key, sorted_packages

__all__ = ["SPDX_JSON", "spdx_document"]

SPDX_JSON = "application/spdx+json"

NOASSERTION = "NOASSERTION"
DOCUMENT_ID = "SPDXRef-DOCUMENT"
IMAGE_ID = "SPDXRef-Image"
OS_ID = "SPDXRef-OperatingSystem"
# Where namespaces live when the subject names no registry: `.invalid` can never resolve,
# which is honest, since a namespace is a name and not a place to fetch from.
DEFAULT_NAMESPACE_BASE = "https://portside.invalid/spdxdocs"

_UNSAFE_ID = re.compile(r"[^A-Za-z0-9.\-]+")


def spdx_document(inventory: Inventory, subject: SbomSubject) -> dict[str, Any]:
    """The SPDX 2.3 document (a JSON-ready dict) for `inventory`, the contents of `subject`."""
    packages = sorted_packages(inventory)
    terms = {package: read_licenses(package.licenses) for package in packages}
    refs = _license_refs(term for package_terms in terms.values() for term in package_terms)

    spdx_packages: list[dict[str, Any]] = [_image_package(subject)]
    relationships = [_relationship(DOCUMENT_ID, "DESCRIBES", IMAGE_ID)]
    if inventory.os is not None:
        spdx_packages.append(_os_package(inventory.os))
        relationships.append(_relationship(IMAGE_ID, "CONTAINS", OS_ID))
    for package in packages:
        package_id = _package_id(package)
        spdx_packages.append(_package(package, package_id, terms[package], refs))
        # Distribution packages belong to the OS; the rest (language packages) to the image.
        parent = OS_ID if inventory.os is not None and package.ecosystem in OS_ECOSYSTEMS else IMAGE_ID
        relationships.append(_relationship(parent, "CONTAINS", package_id))

    document: dict[str, Any] = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": DOCUMENT_ID,
        "name": f"{subject.repository}@{subject.digest}",
        "creationInfo": {
            "created": subject.created_utc.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "creators": [f"Tool: portside-{subject.tool_version}"],
        },
        "documentDescribes": [IMAGE_ID],
        "packages": spdx_packages,
        "relationships": relationships,
    }
    if inventory.notes:
        # What could not be read: a reader of the SBOM should know it may be incomplete.
        document["comment"] = "Not read: " + "; ".join(inventory.notes)
    if refs:
        document["hasExtractedLicensingInfos"] = [
            {"licenseId": ref, "extractedText": text, "name": text} for text, ref in sorted(refs.items())
        ]
    document["documentNamespace"] = _namespace(subject, document)
    return document


def _namespace(subject: SbomSubject, document: dict[str, Any]) -> str:
    content = hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    base = f"https://{subject.registry}/spdxdocs" if subject.registry else DEFAULT_NAMESPACE_BASE
    algorithm, _, digest_hex = subject.digest.partition(":")
    return f"{base}/{quote(subject.repository, safe='/')}/{algorithm}-{digest_hex}/{content[:32]}"


def _image_package(subject: SbomSubject) -> dict[str, Any]:
    package: dict[str, Any] = {
        "SPDXID": IMAGE_ID,
        "name": subject.repository,
        "versionInfo": subject.digest,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "CONTAINER",
        "externalRefs": [_purl_ref(subject.purl)],
    }
    if subject.tags:
        package["comment"] = "tags: " + ", ".join(sorted(subject.tags))
    return package


def _os_package(os: OperatingSystem) -> dict[str, Any]:
    package: dict[str, Any] = {
        "SPDXID": OS_ID,
        "name": os.id,
        "versionInfo": os.version_id,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": NOASSERTION,
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "OPERATING_SYSTEM",
    }
    if os.pretty_name:
        package["description"] = os.pretty_name
    return package


def _package(package: Package, package_id: str, terms: tuple[LicenseTerm, ...], refs: dict[str, str]) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "SPDXID": package_id,
        "name": package.name,
        "versionInfo": package.version,
        "downloadLocation": NOASSERTION,
        "filesAnalyzed": False,
        # Portside reads what a package declares; it concludes nothing of its own.
        "licenseConcluded": NOASSERTION,
        "licenseDeclared": _declared(terms, refs),
        "copyrightText": NOASSERTION,
        "primaryPackagePurpose": "LIBRARY",
        "sourceInfo": f"layer {package.layer}, file {package.path}",
    }
    if package.purl:
        entry["externalRefs"] = [_purl_ref(package.purl)]
    if package.source_name and (package.source_name, package.source_version) != (package.name, package.version):
        entry["sourceInfo"] += f"; built from source package {package.source_name} {package.advisory_version}"
    return entry


def _declared(terms: tuple[LicenseTerm, ...], refs: dict[str, str]) -> str:
    """All declared licences joined with AND (a package under several applies them all), the
    unknown ones by their `LicenseRef-`; NOASSERTION when the package declares none."""
    parts = [term.spdx if term.spdx is not None else refs[term.text] for term in terms]
    if not parts:
        return NOASSERTION
    if len(parts) == 1:
        return parts[0]
    return " AND ".join(f"({part})" if " " in part else part for part in parts)


def _license_refs(terms: Iterable[LicenseTerm]) -> dict[str, str]:
    """Text → `LicenseRef-` id for every text that names no SPDX licence."""
    return {term.text: license_ref(term.text) for term in terms if term.spdx is None}


def _package_id(package: Package) -> str:
    """Readable, made of the characters SPDX allows, and unique: the same name and version can
    be installed twice (two `node_modules` trees), so a hash of the whole package ends it."""
    readable = _UNSAFE_ID.sub("-", f"{package.ecosystem.value}-{package.name}-{package.version}").strip("-")
    identity = hashlib.sha256("\0".join(package_key(package)).encode()).hexdigest()[:12]
    return f"SPDXRef-Package-{readable}-{identity}"


def _purl_ref(purl: str) -> dict[str, str]:
    return {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": purl}


def _relationship(element: str, kind: str, related: str) -> dict[str, str]:
    return {"spdxElementId": element, "relationshipType": kind, "relatedSpdxElement": related}
