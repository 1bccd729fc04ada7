"""How big and how long: the full suite's sizes, and the quick mode's that CI runs."""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["Plan", "FULL", "QUICK"]

MIB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    rounds: int
    blob_bytes: int  # the big blob pushed and pulled
    chunk_bytes: int  # PATCH size of the chunked push
    pulls_per_round: int  # a pull of the big blob is short; several per round, each a sample
    direct_pulls: int  # the direct-pull scenario's pulls per round, registry and mode
    load_seconds: float  # each wrk / ab run
    connections: int  # wrk and ab
    concurrent_clients: int
    image_layer_bytes: tuple[int, ...]  # the 3-layer image the concurrent clients pull
    small_images: int  # pushed in one go by one client
    small_layer_bytes: int
    tags: int  # in one repository, for the tags list
    repositories: int  # for the catalog
    listing_seconds: float  # wrk with one connection on the tags list and the catalog

    def with_rounds(self, rounds: int | None) -> Plan:
        return self if rounds is None else replace(self, rounds=rounds)


FULL = Plan(
    rounds=5,
    blob_bytes=256 * MIB,
    chunk_bytes=8 * MIB,
    pulls_per_round=3,
    direct_pulls=6,
    load_seconds=8,
    connections=64,
    concurrent_clients=32,
    image_layer_bytes=(48 * MIB, 12 * MIB, 4 * MIB),
    small_images=500,
    small_layer_bytes=16 * 1024,
    tags=10_000,
    repositories=1_000,
    listing_seconds=4,
)

QUICK = Plan(
    rounds=2,
    blob_bytes=16 * MIB,
    chunk_bytes=2 * MIB,
    pulls_per_round=2,
    direct_pulls=2,
    load_seconds=1,
    connections=64,
    concurrent_clients=32,
    image_layer_bytes=(2 * MIB, 1 * MIB, 256 * 1024),
    small_images=40,
    small_layer_bytes=16 * 1024,
    tags=300,
    repositories=60,
    listing_seconds=1,
)
