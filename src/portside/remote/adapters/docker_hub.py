"""`docker-hub`: Docker Hub, by its published API. It is configured as `https://hub.docker.com`
(Harbor's one endpoint for the type), its Distribution API is `registry-1.docker.io`, and its
tokens come from `auth.docker.io` for the service `registry.docker.io` (the realm its 401s
name, which the client follows). Official images live under `library/`: a one-component
name such as `busybox` is `library/busybox` there."""

from __future__ import annotations

from urllib.parse import urlsplit

from portside.remote.adapters.base import FilterStyle, ProviderInfo, RegistryInfo, Target, ping_distribution

__all__ = ["DockerHubAdapter", "HUB_URL", "REGISTRY_URL", "TOKEN_REALM", "TOKEN_SERVICE"]

HUB_URL = "https://hub.docker.com"
REGISTRY_URL = "https://registry-1.docker.io"
TOKEN_REALM = "https://auth.docker.io/token"
TOKEN_SERVICE = "registry.docker.io"
# The names people give Docker Hub; each is stored as HUB_URL.
_HOSTS = frozenset(
    {"hub.docker.com", "docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
)


class DockerHubAdapter:
    type = "docker-hub"

    def normalise(self, url: str) -> str:
        text = url.strip() or HUB_URL
        host = urlsplit(text if "://" in text else f"https://{text}").hostname or ""
        if host.lower() not in _HOSTS:
            raise ValueError(f"a docker-hub registry is {HUB_URL}, not {url[:200]!r}")
        return HUB_URL

    def registry_url(self, url: str) -> str:
        return REGISTRY_URL

    def repository(self, name: str) -> str:
        return name if "/" in name else f"library/{name}"

    def info(self) -> RegistryInfo:
        return RegistryInfo(
            type=self.type,
            description="Docker Hub (registry-1.docker.io)",
            filters=(FilterStyle("name", "input"), FilterStyle("tag", "input")),
            triggers=("manual", "scheduled"),
            copy_by_chunk=False,
        )

    def provider(self) -> ProviderInfo:
        return ProviderInfo(endpoint_type="EndpointPatternTypeFix", endpoints=(("hub.docker.com", HUB_URL),))

    async def ping(self, target: Target) -> None:
        await ping_distribution(target)
