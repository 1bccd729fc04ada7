"""Applying layers: whiteouts, opaque directories, links, compression, faults, and memory."""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import hashlib
import io
import random
import shutil
import subprocess
import tarfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator

import pytest

from portside.scan.inventory import python_dists, take_inventory
from portside.scan.inventory.layers import _zstandard
from portside.scan.inventory.registry import DETECTORS
from portside.scan.model import Ecosystem, LayerBlob
from tests.scan.layers_builder import (
    TAR,
    directory,
    file,
    hardlink,
    layer,
    layer_of,
    opaque,
    streamed_layer,
    symlink,
    tar_bytes,
    whiteout,
)
from tests.scan.shared import VULNDB_FIXTURES

STATUS = (VULNDB_FIXTURES / "debian12-minbase-status.txt").read_text()
BASH_STANZA = next(s for s in STATUS.split("\n\n") if s.startswith("Package: bash\n")) + "\n"
OS_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\n'
METADATA = "Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\nLicense: BSD-3-Clause\n"


def dpkg_names(inventory: object) -> set[str]:
    return {p.name for p in inventory.packages if p.ecosystem is Ecosystem.DEBIAN}  # type: ignore[attr-defined]


async def test_a_package_database_deleted_in_layer_2_yields_nothing_and_layer_3s_replacement_counts():
    base = layer_of(file("/etc/os-release", OS_RELEASE), file("/var/lib/dpkg/status", STATUS))
    deleted = layer_of(whiteout("/var/lib/dpkg/status"))
    replaced = layer_of(file("/var/lib/dpkg/status", BASH_STANZA))

    assert dpkg_names(await take_inventory([base])) == {s.split("\n")[0][9:] for s in STATUS.split("\n\n") if s}
    assert dpkg_names(await take_inventory([base, deleted])) == set()

    inventory = await take_inventory([base, deleted, replaced])
    [bash] = inventory.packages
    assert (bash.name, bash.version, bash.source_name, bash.source_version) == (
        "bash",
        "5.2.15-2+b13",
        "bash",
        "5.2.15-2",
    )
    assert bash.layer == replaced.digest
    assert bash.path == "/var/lib/dpkg/status"


async def test_a_whiteout_of_a_directory_removes_everything_below_it():
    base = layer_of(file("/var/lib/dpkg/status", STATUS), file("/var/lib/dpkg/status.d/bash", BASH_STANZA))
    inventory = await take_inventory([base, layer_of(whiteout("/var/lib/dpkg"))])
    assert inventory.packages == ()


async def test_an_opaque_directory_hides_lower_layers_but_not_its_own_entries_in_any_order():
    base = layer_of(file("/var/lib/dpkg/status", STATUS))
    # The new stanza comes before the opaque marker in the archive: it must survive it.
    upper = layer_of(
        directory("/var/lib/dpkg"), file("/var/lib/dpkg/status.d/bash", BASH_STANZA), opaque("/var/lib/dpkg")
    )
    inventory = await take_inventory([base, upper])
    assert [(p.name, p.path, p.layer) for p in inventory.packages] == [
        ("bash", "/var/lib/dpkg/status.d/bash", upper.digest)
    ]


async def test_os_release_through_a_relative_symlink_and_through_a_symlinked_directory():
    relative = layer_of(file("/usr/lib/os-release", OS_RELEASE), symlink("/etc/os-release", "../usr/lib/os-release"))
    inventory = await take_inventory([relative])
    assert inventory.os is not None
    assert (inventory.os.id, inventory.os.version_id, inventory.os.codename) == ("debian", "12", "bookworm")
    assert inventory.os.pretty_name == "Debian GNU/Linux 12 (bookworm)"

    # A later layer points /etc/os-release elsewhere (absolute link, through a linked dir).
    moved = layer_of(
        file("/opt/release/os-release", OS_RELEASE.replace('VERSION_ID="12"', 'VERSION_ID="12.9"')),
        symlink("/usr/share/release", "/opt/release"),
        symlink("/etc/os-release", "/usr/share/release/os-release"),
        file("/usr/lib/os-release", "ID=other\n"),
    )
    # /opt/release/os-release is not a path the os-release detector keeps: the link does
    # not make it one, so the fallback /usr/lib/os-release of the same layer is what counts.
    inventory = await take_inventory([relative, moved])
    assert inventory.os is not None and inventory.os.id == "other"


async def test_a_lower_layers_symlinked_directory_is_written_through():
    merged_usr = layer_of(directory("/usr/lib"), symlink("/lib", "usr/lib"))
    apk = "P:musl\nV:1.2.4-r2\nA:x86_64\no:musl\n\n"
    upper = layer_of(file("/lib/apk/db/installed", apk))
    [package] = (await take_inventory([merged_usr, upper])).packages
    assert (package.name, package.path, package.layer) == ("musl", "/usr/lib/apk/db/installed", upper.digest)
    # ... and a whiteout through the link removes the file where it really is.
    gone = layer_of(whiteout("/lib/apk/db/installed"))
    assert (await take_inventory([merged_usr, upper, gone])).packages == ()


async def test_a_symlink_loop_is_no_os_and_no_crash():
    inventory = await take_inventory(
        [layer_of(symlink("/etc/os-release", "/etc/a"), symlink("/etc/a", "/etc/os-release"))]
    )
    assert inventory.os is None


async def test_hard_links_share_the_bytes_of_a_kept_file_and_are_noted_when_they_cannot():
    metadata_path = "/usr/lib/python3/site-packages/Jinja2-3.1.2.dist-info/METADATA"
    linked_path = "/opt/venv/lib/python3.11/site-packages/Jinja2-3.1.2.dist-info/METADATA"
    inventory = await take_inventory([layer_of(file(metadata_path, METADATA), hardlink(linked_path, metadata_path))])
    assert sorted(p.path for p in inventory.packages) == [linked_path, metadata_path]
    assert {(p.name, p.version) for p in inventory.packages} == {("jinja2", "3.1.2")}

    inventory = await take_inventory(
        [layer_of(file("/tmp/METADATA", METADATA), hardlink(linked_path, "/tmp/METADATA"))]
    )
    assert inventory.packages == ()
    assert any("hard link" in note and linked_path in note for note in inventory.notes)


async def test_gzip_and_plain_tar_layers_read_the_same():
    entries = [file("/etc/os-release", OS_RELEASE), file("/var/lib/dpkg/status", STATUS)]
    plain = await take_inventory([layer_of(*entries)])
    zipped = await take_inventory([layer_of(*entries, compress=True)])
    assert plain.os == zipped.os
    assert [(p.name, p.version) for p in plain.packages] == [(p.name, p.version) for p in zipped.packages]
    assert len(plain.packages) == 88


@pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd command is needed to make a zstd layer")
async def test_a_zstd_layer_is_read_when_zstandard_is_installed_and_noted_when_not():
    data = tar_bytes([file("/var/lib/dpkg/status", BASH_STANZA)])
    compressed = subprocess.run(["zstd", "-q", "-c"], input=data, capture_output=True, check=True).stdout
    blob = layer(compressed, TAR + "+zstd")
    inventory = await take_inventory([blob])
    if _zstandard() is None:
        assert inventory.packages == ()
        assert [note for note in inventory.notes if "zstd" in note and blob.digest in note]
    else:
        assert [p.name for p in inventory.packages] == ["bash"]


async def test_a_corrupt_layer_is_noted_and_the_other_layers_still_count():
    whole = tar_bytes([file("/var/lib/dpkg/status.d/zz", "junk")], compress=True)
    truncated = layer(whole[: len(whole) // 2], TAR + "+gzip")
    good = layer_of(file("/var/lib/dpkg/status.d/bash", BASH_STANZA))
    inventory = await take_inventory([good, truncated])
    assert [p.name for p in inventory.packages] == ["bash"]
    assert [note for note in inventory.notes if truncated.digest in note]


async def test_a_storage_failure_mid_layer_propagates():
    async def failing() -> AsyncIterator[bytes]:
        yield tar_bytes([file("/etc/os-release", OS_RELEASE)])[:1024]
        raise OSError("disk gone")

    blob = LayerBlob(digest="sha256:" + "0" * 64, media_type=TAR, size=10_000, open=failing)
    with pytest.raises(OSError, match="disk gone"):
        await take_inventory([blob])


async def test_a_file_over_its_detectors_size_cap_is_skipped_with_a_note():
    small_python = dataclasses.replace(python_dists.DETECTOR, size_cap=16)
    detectors = tuple(small_python if d.name == "python" else d for d in DETECTORS)
    path = "/usr/lib/python3/site-packages/Jinja2-3.1.2.dist-info/METADATA"
    inventory = await take_inventory([layer_of(file(path, METADATA))], detectors)
    assert inventory.packages == ()
    assert [note for note in inventory.notes if path in note and "16-byte limit" in note]


def random_layer(total: int) -> tuple[LayerBlob, int]:
    """A tar of 8 MiB files of random bytes, made as it is read; it is never held whole.
    The bytes are drawn from a pool of random blocks made up front, so that producing them
    costs the event loop nothing (the test measures the loop's freedom, not the producer)."""
    file_size = 8 << 20
    count = total // file_size
    rng = random.Random(15)
    pool = [rng.randbytes(1 << 20) for _ in range(4)]

    def produce() -> Iterator[bytes]:
        for index in range(count):
            info = tarfile.TarInfo(f"data/blob-{index:03}.bin")
            info.size, info.mtime = file_size, 1_700_000_000
            yield info.tobuf(tarfile.PAX_FORMAT)
            for block in range(file_size // (1 << 20)):
                yield pool[(index + block) % len(pool)]
        yield b"\0" * tarfile.RECORDSIZE

    return streamed_layer("sha256:" + hashlib.sha256(b"random").hexdigest(), count * file_size, produce), count


async def test_a_200_mib_layer_of_random_files_is_not_held_in_memory_and_the_loop_stays_free():
    blob, count = random_layer(200 << 20)
    assert count * (8 << 20) >= 200 << 20
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    beat = asyncio.create_task(ticker())
    tracemalloc.start()
    started = time.monotonic()
    try:
        inventory = await take_inventory([blob])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        beat.cancel()
    elapsed = time.monotonic() - started
    assert inventory.packages == () and inventory.notes == ()
    # The queue holds a few 1 MiB chunks; 200 MiB held would be far above this.
    assert peak < 24 << 20, f"peak {peak >> 20} MiB"
    # The loop kept ticking while the layer was parsed (a blocked loop would tick ~never).
    assert ticks > 0.2 * elapsed / 0.005, f"{ticks} ticks in {elapsed:.2f} s"


async def test_a_layer_blob_streamed_in_odd_sized_chunks_reads_the_same():
    data = gzip.compress(tar_bytes([file("/var/lib/dpkg/status", STATUS)]), mtime=0)
    for chunk in (1, 7, 4096, 1 << 20):
        if chunk == 1:
            data_small = gzip.compress(tar_bytes([file("/var/lib/dpkg/status", BASH_STANZA)]), mtime=0)
            inventory = await take_inventory([layer(data_small, chunk=chunk)])
            assert [p.name for p in inventory.packages] == ["bash"]
            continue
        inventory = await take_inventory([layer(data, chunk=chunk)])
        assert len(inventory.packages) == 88


def test_builder_layers_are_deterministic():
    entries = [file("/a", "x"), symlink("/b", "a"), directory("/c")]
    assert tar_bytes(entries, compress=True) == tar_bytes(entries, compress=True)
    assert io.BytesIO(tar_bytes(entries)).getbuffer().nbytes % tarfile.RECORDSIZE == 0
