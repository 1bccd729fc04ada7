"""The services one app serves, handed to the HTTP layer by `wiring`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from portside.auth.access import Authorizer
from portside.auth.controller import AccessController
from portside.http.accel import NginxBlobLocation
from portside.http.filerange import SliceSlots
from portside.proxy.cache import PullThroughCache
from portside.registry.blobs import BlobService
from portside.registry.catalog import CatalogService
from portside.registry.manifests import ManifestService
from portside.registry.trail import AuditTrail
from portside.registry.uploads import UploadService

__all__ = ["Services"]


@dataclass(frozen=True)
class Services:
    blobs: BlobService
    uploads: UploadService
    manifests: ManifestService
    catalog: CatalogService
    authorizer: Authorizer
    # Issues registry tokens at /service/token; None for an open registry.
    token_issuer: AccessController | None = None
    trail: AuditTrail | None = None
    # Each returns normally when its dependency is usable, with a note on its state when it
    # has one (the storage's free space); used by /readyz.
    readiness_checks: dict[str, Callable[[], Awaitable[str | None]]] = field(default_factory=dict)
    log_requests: bool = True
    # Request bodies other than blob uploads and manifests (see http/bodies.py).
    max_body_bytes: int = 1024 * 1024
    body_timeout_seconds: float = 60.0
    # Set when nginx in front sends the filesystem store's blobs (X-Accel-Redirect).
    nginx_blobs: NginxBlobLocation | None = None
    # How many whole blobs this process sends in slices of its own reading at once.
    blob_slices: SliceSlots | None = None
    # Serves the projects that proxy another registry; None: no project may.
    proxy: PullThroughCache | None = None
