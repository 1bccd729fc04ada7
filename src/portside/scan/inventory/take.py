"""Taking the inventory of one image manifest: stream its layers through the tree, base
first, then run every detector over the kept files."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

from portside.scan.inventory.detector import Detector, Found
from portside.scan.inventory.files import ImageFiles
from portside.scan.inventory.layers import ImageTree, read_layer
from portside.scan.inventory.os_release import operating_system
from portside.scan.inventory.registry import DETECTORS
from portside.scan.inventory.stream import ChunkPipe, LayerStreamBroken
from portside.scan.model import Inventory, LayerBlob, OperatingSystem, Package

__all__ = ["take_inventory"]


async def take_inventory(layers: Sequence[LayerBlob], detectors: Sequence[Detector] = DETECTORS) -> Inventory:
    """Decompression and tar parsing run on a worker thread per layer, fed through a bounded
    queue, so the event loop stays free and memory holds only the kept files. A failure to
    read a layer's bytes from storage propagates; a layer whose contents are malformed is
    noted and the rest goes on."""
    tree = ImageTree(detectors)
    for index, layer in enumerate(layers):
        pipe = ChunkPipe()
        worker = asyncio.ensure_future(asyncio.to_thread(read_layer, pipe, tree, layer.digest, index))
        try:
            await pipe.feed(layer.open())
        except BaseException:
            # The storage error is the one to report, not the reader's "stream ended early".
            with contextlib.suppress(LayerStreamBroken):
                await worker
            raise
        await worker
    return await asyncio.to_thread(_detect_all, tree.files(), tuple(tree.notes), tuple(detectors))


def _detect_all(files: ImageFiles, notes: tuple[str, ...], detectors: tuple[Detector, ...]) -> Inventory:
    os = operating_system(files)
    packages: list[Package] = []
    all_notes = list(notes)
    for detector in detectors:
        found = _run(detector, files, os)
        packages.extend(found.packages)
        all_notes.extend(found.notes)
    return Inventory(os=os, packages=tuple(packages), notes=tuple(all_notes))


def _run(detector: Detector, files: ImageFiles, os: OperatingSystem | None) -> Found:
    # Image contents are untrusted input: a detector tripping over them must not cost the
    # other detectors' findings, and the inventory says what went unread.
    try:
        return detector.detect(files, os)
    except Exception as exc:
        return Found(notes=(f"the {detector.name} detector failed: {type(exc).__name__}: {exc}",))
