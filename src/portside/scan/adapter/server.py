"""Portside as a scanner adapter: the serving side of Harbor's pluggable scanner API, so a
Harbor (or another Portside) can register Portside as its scanner.

A scan request names a registry, the Authorization to send it and an artifact. It is kept
in the metadata store (so any process of any instance answers for its report) and scanned
in the background by the process that accepted it, a bounded number at once: the artifact
is pulled from that registry (each child image of an index), its inventory taken and
matched with the built-in scanner's own functions. The Authorization stays in that
process's memory only; a request whose process died (no heartbeat for a while) answers
that it failed instead of staying pending for ever.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

from portside.meta.adapter_scans import AdapterScan, AdapterScans, NewAdapterScan
from portside.meta.scans import StoredFinding
from portside.oci import mediatypes as mt
from portside.remote import (
    RemoteError,
    RemoteNotFound,
    RemoteRegistry,
    RemoteUnauthorized,
    RemoteUnreachable,
)
from portside.scan.adapter.errors import RequestRefused
from portside.scan.adapter.wire import (
    RAW_REPORT,
    SBOM_MEDIA_TYPES,
    SBOM_REPORT,
    VULNERABILITY_REPORT_MIMES,
    Capability,
    Pending,
    ScannerInfo,
    ScannerMetadata,
    ScanRequest,
    Vulnerability,
    sbom_report_json,
    vulnerability_report_json,
)
from portside.scan.model import Inventory, LayerBlob, Severity
from portside.scan.service import NothingToScan, ScanTools, is_image, merge_findings, stored_finding
from portside.scan.vulndb.status import DatabaseStatus

__all__ = ["CONSUMED_MIME_TYPES", "AdapterServer", "Report"]

log = logging.getLogger("portside.scan.adapter")

# What the adapter scans: image manifests, and indexes (their image children).
CONSUMED_MIME_TYPES = (mt.OCI_MANIFEST, mt.DOCKER_MANIFEST, mt.OCI_INDEX, mt.DOCKER_MANIFEST_LIST)
_ENDED = ("done", "failed")


@dataclass(frozen=True, slots=True)
class Report:
    """A report to answer: its MIME type and body."""

    mime_type: str
    body: dict[str, Any]


Connect = Callable[[str, str | None], RemoteRegistry]


class AdapterServer:
    def __init__(
        self,
        store: AdapterScans,
        tools: ScanTools,
        database: Callable[[], Awaitable[DatabaseStatus | None]],
        scanner: ScannerInfo,
        *,
        concurrency: int = 2,
        refresh_after: int = 3,
        heartbeat_seconds: float = 30.0,
        abandoned_seconds: float = 300.0,
        retention_seconds: float = 86400.0,
        connect: Connect = RemoteRegistry,
    ) -> None:
        self._store = store
        self._tools = tools
        self._database = database
        self.scanner = scanner
        self._slots = asyncio.Semaphore(concurrency)
        self.refresh_after = refresh_after
        self.heartbeat_seconds = heartbeat_seconds
        self._abandoned = timedelta(seconds=abandoned_seconds)
        self._retention = timedelta(seconds=retention_seconds)
        self._connect = connect
        self._running: dict[str, asyncio.Task[None]] = {}

    # -- the API's operations ------------------------------------------------------------

    async def metadata(self) -> ScannerMetadata:
        consumes = CONSUMED_MIME_TYPES
        properties = {"harbor.scanner-adapter/scanner-type": "os-package-vulnerability"}
        properties.update(_database_properties(await self._database()))
        return ScannerMetadata(
            scanner=self.scanner,
            capabilities=(
                Capability("vulnerability", consumes, VULNERABILITY_REPORT_MIMES),
                Capability("sbom", consumes, (SBOM_REPORT,), SBOM_MEDIA_TYPES),
            ),
            properties=properties,
        )

    async def submit(self, request: ScanRequest) -> str:
        """Accept `request` and start its scan in the background; its id."""
        if request.mime_type not in CONSUMED_MIME_TYPES:
            raise RequestRefused(422, f"cannot scan artifacts of type {request.mime_type}")
        if not request.digest.startswith("sha256:") and not request.digest.startswith("sha512:"):
            raise RequestRefused(422, f"artifact.digest is not a digest: {request.digest!r}")
        kinds = tuple(dict.fromkeys(kind for kind, _ in request.capabilities))
        for kind, produces in request.capabilities:
            offered = VULNERABILITY_REPORT_MIMES if kind == "vulnerability" else (SBOM_REPORT,)
            refused = [mime for mime in produces if mime not in offered]
            if refused:
                raise RequestRefused(422, f"the {kind} capability produces no {refused[0]}")
        scan_id = str(uuid4())
        await self._store.create(
            NewAdapterScan(
                scan_id,
                request.registry_url,
                request.repository,
                request.digest,
                request.tag or "",
                request.mime_type,
                kinds,
            )
        )
        task = asyncio.create_task(self._run(scan_id, request), name=f"adapter-scan-{scan_id}")
        self._running[scan_id] = task
        task.add_done_callback(lambda _: self._running.pop(scan_id, None))
        return scan_id

    async def report(self, scan_id: str, mime_type: str | None, sbom_media_type: str | None) -> Report | Pending:
        """The report of `mime_type` (None: the Accept header named no report type), or
        Pending while the scan goes on; `RequestRefused` for the API's error answers."""
        if mime_type is None:
            raise RequestRefused(400, "Accept names no report type of this API")
        if mime_type == RAW_REPORT:
            raise RequestRefused(501, f"Portside produces no {RAW_REPORT}")
        if mime_type == SBOM_REPORT and sbom_media_type not in SBOM_MEDIA_TYPES:
            wanted = " or ".join(SBOM_MEDIA_TYPES)
            raise RequestRefused(400, f"an SBOM report needs ?sbom_media_type= {wanted}")
        scan = await self._store.get(scan_id)
        if scan is None:
            raise RequestRefused(404, f"no scan request {scan_id}")
        kind = "sbom" if mime_type == SBOM_REPORT else "vulnerability"
        if scan.capabilities and kind not in scan.capabilities:
            raise RequestRefused(400, f"scan request {scan_id} did not enable the {kind} capability")
        if scan.status not in _ENDED:
            if scan_id not in self._running and datetime.now(UTC) - scan.updated > self._abandoned:
                raise RequestRefused(
                    500, f"scan request {scan_id} was abandoned: its server stopped before the scan ended"
                )
            return Pending(float(self.refresh_after))
        if scan.status == "failed":
            raise RequestRefused(500, f"scan failed: {scan.error}")
        request = _request_of(scan)
        generated = scan.generated_at or scan.updated
        if kind == "sbom":
            assert sbom_media_type is not None
            if scan.inventory is None:
                raise RequestRefused(500, f"scan request {scan_id} kept no inventory to write an SBOM from")
            inventory: Inventory = self._tools.decode(scan.inventory)
            tags = (scan.tag,) if scan.tag else ()
            document = self._tools.sbom(sbom_media_type, inventory, scan.repository, scan.digest, tags)
            return Report(SBOM_REPORT, sbom_report_json(request, self.scanner, generated, sbom_media_type, document))
        findings = _read_findings(scan.findings)
        body = vulnerability_report_json(
            request,
            self.scanner,
            generated,
            [_vulnerability(finding) for finding in findings],
            [_vendor_attributes(finding) for finding in findings],
        )
        body["vendor_attributes"] = _database_properties(await self._database())
        return Report(mime_type, body)

    # -- upkeep --------------------------------------------------------------------------

    async def heartbeat(self) -> None:
        """Tell the store this process still holds its requests (run every
        `heartbeat_seconds`)."""
        await self._store.heartbeat(list(self._running))

    async def purge(self) -> int:
        now = datetime.now(UTC)
        return await self._store.purge(now - self._retention, now - self._retention)

    async def close(self) -> None:
        """Stop the scans in progress; their requests answer that they failed."""
        held = dict(self._running)
        for task in held.values():
            task.cancel()
        await asyncio.gather(*held.values(), return_exceptions=True)
        for scan_id in held:
            try:
                await self._store.fail(scan_id, "the server stopped before the scan ended")
            except Exception:
                log.exception("could not mark adapter scan %s failed", scan_id)

    # -- the scan ------------------------------------------------------------------------

    async def _run(self, scan_id: str, request: ScanRequest) -> None:
        try:
            async with self._slots:
                await self._store.start(scan_id)
                findings, inventory = await self._scan(request)
                encoded = None if inventory is None else self._tools.encode(inventory)
                await self._store.finish(scan_id, json.dumps([asdict(f) for f in findings]), encoded)
                log.info(
                    "adapter scan %s of %s@%s: %d findings", scan_id, request.repository, request.digest, len(findings)
                )
        except asyncio.CancelledError:
            raise
        except Exception as error:
            message = _failure(request, error)
            if not isinstance(error, (RemoteError, NothingToScan)):
                log.exception("adapter scan %s failed", scan_id)
            try:
                await self._store.fail(scan_id, message)
            except Exception:
                log.exception("could not mark adapter scan %s failed", scan_id)

    async def _scan(self, request: ScanRequest) -> tuple[list[StoredFinding], Inventory | None]:
        async with self._connect(request.registry_url, request.authorization) as remote:
            images = await self._images(remote, request)
            if not images:
                raise NothingToScan(f"{request.repository}@{request.digest} holds no image to scan")
            findings: list[StoredFinding] = []
            first: Inventory | None = None
            for document in images:
                layers = [_layer(remote, request.repository, layer) for layer in document.get("layers", [])]
                inventory = await self._tools.take_inventory(layers)
                first = first or inventory
                findings.extend(stored_finding(finding) for finding in await self._tools.match(inventory))
            return (merge_findings(findings) if len(images) > 1 else findings), first

    async def _images(self, remote: RemoteRegistry, request: ScanRequest) -> list[dict[str, Any]]:
        """The image manifests to read: the artifact's, or an index's image children's."""
        manifest = await remote.manifest(request.repository, request.digest)
        document = _json(manifest.body)
        if manifest.media_type in mt.INDEXES or document.get("manifests") is not None:
            images = []
            for child in document.get("manifests") or []:
                if not isinstance(child, dict) or child.get("mediaType") not in mt.IMAGE_MANIFESTS:
                    continue
                try:
                    found = await remote.manifest(request.repository, str(child.get("digest")))
                except RemoteNotFound:
                    continue  # an index may name children the registry does not hold
                child_document = _json(found.body)
                if is_image(child_document):
                    images.append(child_document)
            return images
        return [document] if is_image(document) else []


def _layer(remote: RemoteRegistry, repository: str, descriptor: Any) -> LayerBlob:
    descriptor = descriptor if isinstance(descriptor, dict) else {}
    digest = str(descriptor.get("digest"))

    async def open_layer() -> AsyncIterator[bytes]:
        async for chunk in remote.blob(repository, digest):
            yield chunk

    size = descriptor.get("size")
    return LayerBlob(digest, str(descriptor.get("mediaType", "")), size if isinstance(size, int) else 0, open_layer)


def _failure(request: ScanRequest, error: Exception) -> str:
    """What the report says of a failed scan: the cause, in words, never a credential."""
    where = f"{request.registry_url}/{request.repository}@{request.digest}"
    if isinstance(error, RemoteUnauthorized):
        return f"the registry refused the credentials: {error}"
    if isinstance(error, RemoteNotFound):
        return f"not found in the registry: {where}: {error}"
    if isinstance(error, RemoteUnreachable):
        return f"the registry is unreachable: {error}"
    if isinstance(error, (RemoteError, NothingToScan)):
        return str(error)
    return f"internal error scanning {where}: {type(error).__name__}"


def _request_of(scan: AdapterScan) -> ScanRequest:
    return ScanRequest(scan.registry_url, scan.repository, scan.digest, scan.mime_type, scan.tag or None)


def _read_findings(stored: str | None) -> list[StoredFinding]:
    items = json.loads(stored or "[]")
    return [
        StoredFinding(
            **{
                **item,
                "aliases": tuple(item["aliases"]),
                "cwe_ids": tuple(item["cwe_ids"]),
                "links": tuple(item["links"]),
            }
        )
        for item in items
    ]


def _vulnerability(finding: StoredFinding) -> Vulnerability:
    return Vulnerability(
        id=finding.vulnerability_id,
        package=finding.package,
        version=finding.version,
        fix_version=finding.fixed_version,
        severity=Severity(finding.severity),
        description=finding.description,
        links=finding.links,
        cvss_score_v3=finding.cvss_score,
        cvss_vector_v3=finding.cvss_vector,
        cwe_ids=finding.cwe_ids,
    )


def _vendor_attributes(finding: StoredFinding) -> dict[str, Any]:
    return {
        "advisory_id": finding.advisory_id,
        "aliases": list(finding.aliases),
        "source": finding.source,
        "ecosystem": finding.ecosystem,
        "purl": finding.purl,
        "layer": finding.layer,
        "path": finding.path,
    }


def _database_properties(status: DatabaseStatus | None) -> dict[str, str]:
    """The vulnerability database's age, as the API's properties name it."""
    if status is None or not status.sources or status.updated_at is None:
        return {"harbor.scanner-adapter/vulnerability-database-imported": "false"}
    updated = status.updated_at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "harbor.scanner-adapter/vulnerability-database-updated-at": updated,
        "harbor.scanner-adapter/vulnerability-database-stale": "true" if status.stale else "false",
        "harbor.scanner-adapter/vulnerability-database-generation": str(status.generation),
    }


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
