"""P2P providers (Harbor's preheat drivers): the systems Portside asks to fetch an image
ahead of the pulls, behind one small interface, `Driver` (health, preheat, a job's
status). One module per provider: `dragonfly`, `kraken`."""

from __future__ import annotations

from collections.abc import Mapping

from portside.remote.p2p.base import (
    FAILURE,
    RUNNING,
    SUCCESS,
    Connection,
    Driver,
    DriverInfo,
    Image,
    JobStatus,
    P2PError,
)
from portside.remote.p2p.dragonfly import DragonflyDriver
from portside.remote.p2p.kraken import KrakenDriver

__all__ = [
    "FAILURE",
    "RUNNING",
    "SUCCESS",
    "Connection",
    "Driver",
    "DriverInfo",
    "Image",
    "JobStatus",
    "P2PError",
    "default_drivers",
]


def default_drivers() -> Mapping[str, Driver]:
    """Every provider Portside offers, by Harbor's vendor name."""
    drivers: list[Driver] = [DragonflyDriver(), KrakenDriver()]
    return {driver.vendor: driver for driver in drivers}
