"""Registry types (Harbor's replication adapters): what Portside knows about each kind of
registry it can talk to, behind one small interface, `Adapter`.

An adapter says how the URL a person configures is written down (`normalise`), where that
registry's Distribution API is (`registry_url`) and how a repository name is spelt there
(`repository`), whether it answers (`ping`), and what it supports (`info`, `provider`,
Harbor's RegistryInfo and RegistryProviderInfo). Each type is a module of its own:
`distribution` (docker-registry: any Distribution-API registry), `harbor` (Harbor, and
Portside), `docker_hub`. The pull-through cache and replication take the same adapters.
"""

from __future__ import annotations

from collections.abc import Mapping

from portside.remote.adapters.base import (
    Adapter,
    FilterStyle,
    ProviderInfo,
    RegistryInfo,
    Target,
    basic_authorization,
    tls_verify,
)
from portside.remote.adapters.distribution import DistributionAdapter
from portside.remote.adapters.docker_hub import DockerHubAdapter
from portside.remote.adapters.harbor import HarborAdapter

__all__ = [
    "Adapter",
    "FilterStyle",
    "ProviderInfo",
    "RegistryInfo",
    "Target",
    "basic_authorization",
    "default_adapters",
    "tls_verify",
]


def default_adapters() -> Mapping[str, Adapter]:
    """Every type Portside offers, by Harbor's type name, in the order Harbor lists them."""
    adapters: list[Adapter] = [HarborAdapter(), DockerHubAdapter(), DistributionAdapter()]
    return {adapter.type: adapter for adapter in adapters}
