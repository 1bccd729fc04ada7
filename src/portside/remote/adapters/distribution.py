"""`docker-registry`: any registry that speaks the Distribution API (CNCF Distribution,
zot, a cloud registry reached as a plain one). Harbor calls this adapter "native"."""

from __future__ import annotations

from portside.remote.adapters.base import (
    FilterStyle,
    ProviderInfo,
    RegistryInfo,
    Target,
    ping_distribution,
    standard_url,
)

__all__ = ["DistributionAdapter"]


class DistributionAdapter:
    type = "docker-registry"

    def normalise(self, url: str) -> str:
        return standard_url(url)

    def registry_url(self, url: str) -> str:
        return url

    def repository(self, name: str) -> str:
        return name

    def info(self) -> RegistryInfo:
        # Names and tags are all the Distribution API lists; it has no labels. Its uploads
        # take chunks (PATCH), so replication may copy by chunk.
        return RegistryInfo(
            type=self.type,
            description="Any registry that serves the Distribution API",
            filters=(FilterStyle("name", "input"), FilterStyle("tag", "input")),
            triggers=("manual", "scheduled"),
            copy_by_chunk=True,
        )

    def provider(self) -> ProviderInfo:
        return ProviderInfo(endpoint_type="EndpointPatternTypeStandard")

    async def ping(self, target: Target) -> None:
        await ping_distribution(target)
