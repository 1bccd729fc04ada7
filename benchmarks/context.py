"""What the scenarios of one run share: the plan, the running servers, the payloads, and
the data set up on each registry (pushed once, whichever scenario asks first)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.memory import PeakMemory
from benchmarks.payloads import Payloads, config_blob
from benchmarks.plan import Plan
from benchmarks.registry import RegistryClient
from benchmarks.servers import Nginx, Registry

__all__ = ["Bench", "BASE_REPO", "BASE_TAG"]

# The image holding the big blob, which the pull, manifest and HEAD scenarios read.
BASE_REPO = "bench/img"
BASE_TAG = "latest"


@dataclass
class Bench:
    plan: Plan
    root: Path
    payloads: Payloads
    registries: dict[tuple[str, str], Registry]  # (product, mode) → registry
    nginx: Nginx | None
    memory: PeakMemory
    base_digests: dict[tuple[str, str], str] = field(default_factory=dict)
    _counter: itertools.count[int] = field(default_factory=itertools.count)

    def registry(self, product: str, mode: str = "open") -> Registry:
        return self.registries[(product, mode)]

    def client(self, registry: Registry) -> RegistryClient:
        """A client for setting data up (with credentials when the registry needs them)."""
        return RegistryClient(registry.url, registry.seeding_auth())

    def unique(self, prefix: str) -> str:
        return f"{prefix}{next(self._counter)}"

    def base_image(self, registry: Registry) -> str:
        """Push `bench/img:latest` (a config and the big blob) once; its manifest digest."""
        key = (registry.product, registry.mode)
        if key not in self.base_digests:
            with self.client(registry) as client:
                self.base_digests[key] = client.push_image(
                    BASE_REPO, BASE_TAG, config_blob("base"), [self.payloads.big]
                )
        return self.base_digests[key]
