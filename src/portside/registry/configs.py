"""Image configs as the management API shows them: read once through the blob service,
kept in a small cache keyed by digest (a config never changes under its digest).

Only image configs are read, and only up to `MAX_CONFIG_BYTES`; what is kept is the part
Harbor shows (`extra_attrs`, the build history), within a byte budget.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from portside.errors import BlobUnknown
from portside.oci.digest import Digest
from portside.registry.blobs import BlobService

__all__ = ["ImageConfigs", "IMAGE_CONFIG_TYPES", "MAX_CONFIG_BYTES"]

IMAGE_CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
MAX_CONFIG_BYTES = 1024 * 1024
_KEPT = ("architecture", "os", "os.version", "variant", "config", "author", "created", "history")
_CACHE_BYTES = 16 * 1024 * 1024


class ImageConfigs:
    def __init__(self, blobs: BlobService, cache_bytes: int = _CACHE_BYTES):
        self._blobs = blobs
        self._cache: OrderedDict[str, tuple[Mapping[str, Any], int]] = OrderedDict()
        self._cached_bytes = 0
        self._budget = cache_bytes

    async def get(self, repo: str, digest: str) -> Mapping[str, Any] | None:
        """The config blob `digest` of `repo`, parsed; None when it is not an image config
        Portside can read (missing, too large, not a JSON object)."""
        found = self._cache.get(digest)
        if found is not None:
            self._cache.move_to_end(digest)
            return found[0]
        try:
            handle = await self._blobs.open(repo, Digest.parse(digest))
        except BlobUnknown:
            return None
        if handle.size > MAX_CONFIG_BYTES:
            return None
        data = b"".join([chunk async for chunk in handle.read()])
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):  # not JSON, or nested past the parser's depth
            return None
        if not isinstance(document, dict):
            return None
        kept = {k: document[k] for k in _KEPT if k in document}
        self._remember(digest, kept, len(data))
        return kept

    def _remember(self, digest: str, config: Mapping[str, Any], size: int) -> None:
        if size > self._budget or digest in self._cache:  # too large, or read meanwhile
            return
        self._cache[digest] = (config, size)
        self._cached_bytes += size
        while self._cached_bytes > self._budget:
            _, (_, dropped) = self._cache.popitem(last=False)
            self._cached_bytes -= dropped
