"""Software bills of materials for an image: SPDX 2.3 and CycloneDX 1.6 JSON, written from
the image's `Inventory`. Both writers are pure and deterministic: the same inventory and
subject give the same bytes, so a stored SBOM can be compared with a fresh one."""

from portside.scan.sbom.cyclonedx import CYCLONEDX_JSON, cyclonedx_document
from portside.scan.sbom.spdx import SPDX_JSON, spdx_document
from portside.scan.sbom.subject import SbomSubject

__all__ = ["CYCLONEDX_JSON", "SPDX_JSON", "SbomSubject", "cyclonedx_document", "spdx_document"]
