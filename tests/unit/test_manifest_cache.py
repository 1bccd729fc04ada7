import asyncio
import subprocess
import sys

from portside.coord.counters import MachineChangeCounter
from portside.meta.stores import ManifestRecord
from portside.oci.digest import Digest
from portside.registry.cache import ManifestCache


class Counter:
    def __init__(self) -> None:
        self.value: int | None = 1

    async def current(self) -> int | None:
        return self.value


def _record(text: bytes) -> ManifestRecord:
    return ManifestRecord(Digest.of(text), "application/vnd.oci.image.manifest.v1+json", text)


async def test_hits_until_anything_changes():
    counter, loads = Counter(), []
    cache = ManifestCache(counter)

    async def load():
        loads.append(1)
        return _record(b"v1")

    assert (await cache.lookup("r", "latest", load)).payload == b"v1"
    assert (await cache.lookup("r", "latest", load)).payload == b"v1"
    assert len(loads) == 1
    counter.value = 2  # a commit somewhere: the tag may have moved
    await cache.lookup("r", "latest", load)
    assert len(loads) == 2


async def test_a_lookup_racing_a_change_is_not_kept():
    counter = Counter()
    cache = ManifestCache(counter)

    async def load_while_a_commit_lands():
        counter.value = 5
        return _record(b"old")

    await cache.lookup("r", "t", load_while_a_commit_lands)
    fresh = []

    async def load():
        fresh.append(1)
        return _record(b"new")

    assert (await cache.lookup("r", "t", load)).payload == b"new" and fresh


async def test_misses_and_unknown_state_are_not_cached():
    counter = Counter()
    cache = ManifestCache(counter)
    calls = []

    async def missing():
        calls.append(1)
        return None

    await cache.lookup("r", "t", missing)
    await cache.lookup("r", "t", missing)
    assert len(calls) == 2
    counter.value = None
    await cache.lookup("r", "u", lambda: _async(_record(b"x")))
    assert not cache._entries


async def _async(value):
    return value


def test_machine_counter_is_shared_by_processes(tmp_path):
    """Bumps in one process are seen at once by another mapping the same file; a process
    that starts bumps once (its predecessor may have died between a commit and its bump)."""
    path = tmp_path / "registry.generation"
    reader = MachineChangeCounter(path)
    first = asyncio.run(reader.current())
    script = (
        "import asyncio, sys; from pathlib import Path; from portside.coord.counters import MachineChangeCounter;"
        "c = MachineChangeCounter(Path(sys.argv[1])); asyncio.run(c.bump()); asyncio.run(c.bump())"
    )
    subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    assert asyncio.run(reader.current()) == first + 3  # its start, then two bumps
    reader.close()
