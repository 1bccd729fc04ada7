"""Scanning one artifact: read its manifest (each child of an index), stream its layers from
the blob store, take and keep the inventory, match it, keep the findings and their summary;
for an SBOM scan, also write the SBOMs and store them as OCI referrers of the image.

The inventory is kept per manifest digest, so an image held by two repositories is read
once, and matched again without reading its layers when the vulnerability database moves.
Everything that reads or writes the registry goes through its own services, so the SBOM
referrers count towards quotas, are seen by GC, and are listed by the referrers API.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from portside.errors import ManifestUnknown
from portside.meta.scans import ScannedBy, ScanStore, ScanSummary, StoredFinding, StoredPackage
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest
from portside.registry.blobs import BlobService
from portside.registry.manifests import ManifestService
from portside.registry.uploads import UploadService
from portside.scan.external import ExternalScanResult
from portside.scan.model import Finding, Inventory, LayerBlob, Severity

__all__ = [
    "CYCLONEDX_JSON",
    "NothingToScan",
    "SPDX_JSON",
    "SBOM_FORMATS",
    "ScanTools",
    "ScanService",
    "ScanOutcome",
    "ImageScan",
    "Journal",
    "is_image",
    "merge_findings",
    "summarise",
    "stored_finding",
]

SPDX_JSON = "application/spdx+json"
CYCLONEDX_JSON = "application/vnd.cyclonedx+json"
SBOM_FORMATS = (SPDX_JSON, CYCLONEDX_JSON)
_IMAGE_CONFIGS = frozenset(
    {"application/vnd.docker.container.image.v1+json", "application/vnd.oci.image.config.v1+json"}
)
_SBOM_DESCRIPTIONS = {SPDX_JSON: "SPDX 2.3 JSON SBOM", CYCLONEDX_JSON: "CycloneDX 1.6 JSON SBOM"}
_CHUNK = 1 << 20


class NothingToScan(Exception):
    """The artifact holds no image manifest to scan (Harbor's 422 for an index)."""


class Journal(Protocol):
    def info(self, message: str) -> None: ...

    async def checkpoint(self) -> None:
        """Raise when the scan was asked to stop."""


# An external adapter's scan of one image manifest: (digest, media type) → its report.
ImageScan = Callable[[str, str], Awaitable[ExternalScanResult]]


@dataclass(frozen=True)
class ScanTools:
    """The inventory, matching and SBOM functions the service uses, handed over by wiring.

    `generation`: the vulnerability database's generation, which moves with each import;
    `sbom`: (format media type, inventory, repository, digest, tags) → the document."""

    take_inventory: Callable[[Sequence[LayerBlob]], Awaitable[Inventory]]
    match: Callable[[Inventory], Awaitable[list[Finding]]]
    generation: Callable[[], Awaitable[int]]
    encode: Callable[[Inventory], bytes]
    decode: Callable[[bytes], Inventory]
    sbom: Callable[[str, Inventory, str, str, tuple[str, ...]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class ScanOutcome:
    summary: ScanSummary
    sbom_digest: str | None = None


def stored_finding(finding: Finding) -> StoredFinding:
    package = finding.package
    return StoredFinding(
        vulnerability_id=finding.vulnerability_id,
        advisory_id=finding.advisory_id,
        source=finding.source,
        ecosystem=str(package.ecosystem),
        package=package.name,
        version=package.version,
        purl=package.purl,
        path=package.path,
        layer=package.layer,
        fixed_version=finding.fixed_version,
        severity=int(finding.severity),
        cvss_score=finding.cvss_score,
        cvss_vector=finding.cvss_vector,
        description=finding.description,
        aliases=tuple(finding.aliases),
        cwe_ids=tuple(finding.cwe_ids),
        links=tuple(finding.links),
    )


def summarise(findings: Sequence[StoredFinding], generation: int) -> ScanSummary:
    """Harbor's summary: the worst severity, the total, how many have a fix, counts by label."""
    counts: dict[str, int] = {}
    for finding in findings:
        label = Severity(finding.severity).label
        counts[label] = counts.get(label, 0) + 1
    return ScanSummary(
        severity=max((f.severity for f in findings), default=int(Severity.UNKNOWN)),
        total=len(findings),
        fixable=sum(1 for f in findings if f.fixed_version),
        counts=counts,
        db_generation=generation,
        matched_at=datetime.now(UTC),
    )


def merge_findings(findings: Sequence[StoredFinding]) -> list[StoredFinding]:
    """The children's findings of an index, each (vulnerability, package, version) once."""
    seen: dict[tuple[str, str, str], StoredFinding] = {}
    for finding in findings:
        seen.setdefault((finding.vulnerability_id, finding.purl, finding.version), finding)
    return list(seen.values())


class ScanService:
    def __init__(
        self,
        store: ScanStore,
        manifests: ManifestService,
        blobs: BlobService,
        uploads: UploadService,
        tools: ScanTools,
        tool_version: str,
    ):
        self._store = store
        self._manifests = manifests
        self._blobs = blobs
        self._uploads = uploads
        self._tools = tools
        self._tool_version = tool_version

    async def scannable(self, repository: str, digest: str) -> list[str]:
        """The image manifests a scan of `digest` reads: itself, or an index's image children."""
        record = await self._manifests.get(repository, Digest.parse(digest))
        document = _json(record.payload)
        if record.media_type in mt.INDEXES:
            children = [
                str(child.get("digest"))
                for child in document.get("manifests", [])
                if isinstance(child, dict) and child.get("mediaType") in mt.IMAGE_MANIFESTS
            ]
            images = []
            for child in children:
                try:
                    child_record = await self._manifests.get(repository, Digest.parse(child))
                except ManifestUnknown:
                    continue
                if is_image(_json(child_record.payload)):
                    images.append(child)
            return images
        return [digest] if record.media_type in mt.IMAGE_MANIFESTS and is_image(document) else []

    async def scan(
        self, repository: str, digest: str, journal: Journal, *, sbom: bool = False, tags: tuple[str, ...] = ()
    ) -> ScanOutcome:
        images = await self.scannable(repository, digest)
        if not images:
            raise NothingToScan(f"{repository}@{digest} holds no image to scan")
        generation = await self._tools.generation()
        findings: list[StoredFinding] = []
        inventories: list[Inventory] = []
        for image in images:
            inventory = await self._inventory(repository, image, journal)
            inventories.append(inventory)
            found = [stored_finding(f) for f in await self._tools.match(inventory)]
            journal.info(f"{image}: {len(inventory.packages)} packages, {len(found)} findings")
            await self._store.replace_findings(image, found, summarise(found, generation))
            findings.extend(found)
            await journal.checkpoint()
        if images != [digest]:  # an index: its report is the merge of its images'
            findings = merge_findings(findings)
            await self._store.replace_findings(digest, findings, summarise(findings, generation))
        summary = summarise(findings, generation)
        sbom_digest = None
        if sbom:
            # An index's SBOM describes its first image (Harbor writes one per artifact).
            sbom_digest = await self._write_sboms(repository, images[0], inventories[0], tags, journal)
        return ScanOutcome(summary, sbom_digest)

    async def scan_externally(
        self, repository: str, digest: str, journal: Journal, scan_image: ImageScan, registration: str
    ) -> ScanOutcome:
        """Have an external adapter scan each image of the artifact (`scan_image`) and keep
        its findings under the adapter's name (`registration`: its uuid). No inventory is
        taken, so re-matching leaves them as the adapter reported them."""
        images = await self.scannable(repository, digest)
        if not images:
            raise NothingToScan(f"{repository}@{digest} holds no image to scan")
        generation = await self._tools.generation()
        findings: list[StoredFinding] = []
        scanned_by: ScannedBy | None = None
        for image in images:
            record = await self._manifests.get(repository, Digest.parse(image))
            journal.info(f"{image}: handed to the scanner adapter")
            result = await scan_image(image, record.media_type)
            scanned_by = ScannedBy(registration, result.scanner_name, result.scanner_vendor, result.scanner_version)
            journal.info(f"{image}: {result.scanner_name} {result.scanner_version} reported {len(result.findings)}")
            await self._store.replace_findings(
                image, result.findings, replace(summarise(result.findings, generation), scanned_by=scanned_by)
            )
            findings.extend(result.findings)
            await journal.checkpoint()
        if images != [digest]:
            findings = merge_findings(findings)
            await self._store.replace_findings(
                digest, findings, replace(summarise(findings, generation), scanned_by=scanned_by)
            )
        return ScanOutcome(replace(summarise(findings, generation), scanned_by=scanned_by))

    async def _inventory(self, repository: str, digest: str, journal: Journal) -> Inventory:
        stored = await self._store.get_inventory(digest)
        if stored is not None:
            journal.info(f"{digest}: inventory taken before, matched again")
            return self._tools.decode(stored)
        record = await self._manifests.get(repository, Digest.parse(digest))
        layers = [self._layer(repository, layer) for layer in _json(record.payload).get("layers", [])]
        journal.info(f"{digest}: reading {len(layers)} layers")
        inventory = await self._tools.take_inventory(layers)
        # The package index beside the inventory: "which artifacts hold this package".
        packages = [
            StoredPackage(p.ecosystem.value, p.name, p.version, p.purl, p.path, p.layer) for p in inventory.packages
        ]
        await self._store.put_inventory(digest, self._tools.encode(inventory), packages)
        return inventory

    def _layer(self, repository: str, descriptor: dict[str, Any]) -> LayerBlob:
        digest = Digest.parse(str(descriptor.get("digest")))

        async def open_layer() -> AsyncIterator[bytes]:
            handle = await self._blobs.open(repository, digest)
            async for chunk in handle.read():
                yield chunk

        return LayerBlob(str(digest), str(descriptor.get("mediaType", "")), int(descriptor.get("size", 0)), open_layer)

    async def rematch(self, digest: str, generation: int) -> ScanSummary | None:
        """Match a stored inventory again (no layers read); None when there is none."""
        stored = await self._store.get_inventory(digest)
        if stored is None:
            return None
        found = [stored_finding(f) for f in await self._tools.match(self._tools.decode(stored))]
        summary = summarise(found, generation)
        await self._store.replace_findings(digest, found, summary)
        return summary

    async def _write_sboms(
        self, repository: str, digest: str, inventory: Inventory, tags: tuple[str, ...], journal: Journal
    ) -> str:
        """Push one referrer per format, replacing the ones written before; the SPDX one's digest."""
        subject = await self._manifests.get(repository, Digest.parse(digest))
        written: dict[str, str] = {}
        for media_type in SBOM_FORMATS:
            for old in await self._manifests.referrers(repository, Digest.parse(digest), media_type):
                if old.annotations and old.annotations.get("created-by") == "Portside":
                    try:
                        await self._manifests.delete(repository, old.digest)
                    except ManifestUnknown:
                        pass  # deleted meanwhile
            document = self._tools.sbom(media_type, inventory, repository, digest, tags)
            written[media_type] = await self._push_referrer(
                repository, subject.media_type, subject.payload, media_type, document
            )
            journal.info(f"{digest}: {_SBOM_DESCRIPTIONS[media_type]} stored as {written[media_type]}")
        return written[SPDX_JSON]

    async def _push_referrer(
        self, repository: str, subject_type: str, subject_payload: bytes, media_type: str, document: dict[str, Any]
    ) -> str:
        body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        empty = b"{}"
        for blob in (body, empty):
            await self._uploads.upload_whole(repository, Digest.of(blob), _once(blob), len(blob))
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        manifest = {
            "schemaVersion": 2,
            "mediaType": mt.OCI_MANIFEST,
            "artifactType": media_type,
            "config": {"mediaType": mt.OCI_EMPTY, "digest": str(Digest.of(empty)), "size": len(empty)},
            "layers": [{"mediaType": media_type, "digest": str(Digest.of(body)), "size": len(body)}],
            "subject": {
                "mediaType": subject_type,
                "digest": str(Digest.of(subject_payload)),
                "size": len(subject_payload),
            },
            "annotations": {
                "created": created,
                "created-by": "Portside",
                "org.opencontainers.image.created": created,
                "org.opencontainers.image.description": _SBOM_DESCRIPTIONS[media_type],
            },
        }
        payload = json.dumps(manifest, separators=(",", ":")).encode()
        stored = await self._manifests.put(repository, Digest.of(payload), payload, mt.OCI_MANIFEST)
        return str(stored.digest)

    async def sbom_document(self, repository: str, sbom_digest: str) -> tuple[str, bytes]:
        """The media type and bytes of an SBOM referrer's document (its one layer)."""
        record = await self._manifests.get(repository, Digest.parse(sbom_digest))
        document = _json(record.payload)
        layers = document.get("layers") or []
        if document.get("artifactType") not in SBOM_FORMATS or not layers or not isinstance(layers[0], dict):
            raise ManifestUnknown(f"{repository}@{sbom_digest} is no SBOM")
        handle = await self._blobs.open(repository, Digest.parse(str(layers[0].get("digest"))))
        chunks = [chunk async for chunk in handle.read()]
        return str(document["artifactType"]), b"".join(chunks)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), _CHUNK):
        yield data[start : start + _CHUNK]


def _json(payload: bytes) -> dict[str, Any]:
    try:
        document = json.loads(payload)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def is_image(document: dict[str, Any]) -> bool:
    config = document.get("config")
    return isinstance(config, dict) and config.get("mediaType") in _IMAGE_CONFIGS
