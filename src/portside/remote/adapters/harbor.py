"""`harbor`: a Harbor, or a Portside (which answers Harbor's API). Beside the Distribution
API it has Harbor's management API, whose `/api/v2.0/ping` tells it from a plain registry,
and labels and resource types to filter on."""

from __future__ import annotations

import httpx

from portside.remote.adapters.base import FilterStyle, RegistryInfo, Target, ping_distribution
from portside.remote.adapters.distribution import DistributionAdapter
from portside.remote.errors import RemoteProtocolError, RemoteUnreachable

__all__ = ["HarborAdapter"]


class HarborAdapter(DistributionAdapter):
    """A Distribution registry (its URLs and names are the same) with Harbor's API beside."""

    type = "harbor"

    def info(self) -> RegistryInfo:
        return RegistryInfo(
            type=self.type,
            description="Harbor, or another Portside",
            filters=(
                FilterStyle("name", "input"),
                FilterStyle("tag", "input"),
                FilterStyle("label", "list"),
                FilterStyle("resource", "radio", ("image", "artifact")),
            ),
            triggers=("manual", "scheduled"),
            copy_by_chunk=True,
        )

    async def ping(self, target: Target) -> None:
        # The management API first (anonymous, as Harbor's ping is): a registry without it
        # is no Harbor, whatever its /v2/ says. Then /v2/ with the credential.
        url = f"{target.url}/api/v2.0/ping"
        try:
            async with httpx.AsyncClient(timeout=target.timeout, verify=target.verify) as http:
                answer = await http.get(url)
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise RemoteUnreachable(f"{target.url} is unreachable: {error}") from error
        if answer.status_code != 200:
            raise RemoteProtocolError(f"{target.url} has no Harbor API ({url} answered {answer.status_code})")
        await ping_distribution(target)
