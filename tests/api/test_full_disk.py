"""A full disk: uploads are refused early while the free space is under the reserve, a
write that finds the disk full anyway is answered the same way and keeps nothing
half-written, /readyz says so, and freeing space is all that recovery takes.

The server's data directory is a tmpfs of a few tens of MiB (the suite runs as root), so
the disk really fills; the filesystem store only (S3 has no free space to run out of).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api import oci
from tests.servers import Portside

MIB = 1024 * 1024
DISK_MIB = 40
RESERVE_MIB = 8
LAYER = 4 * MIB


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK_MIB}m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"a tmpfs cannot be mounted here (needs root and CAP_SYS_ADMIN): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "--lazy", str(mount_point)], check=False)


@pytest.fixture
def server(disk: Path) -> Iterator[Portside]:
    # The data directory is the mount itself; the server's log goes beside it, off the disk.
    started = Portside(data_dir=disk, env={"PORTSIDE_STORAGE_RESERVE_MIB": str(RESERVE_MIB)})
    started.start()
    yield started
    started.stop()


@pytest.fixture
def client(server: Portside) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60.0) as c:
        yield c


def _free(disk: Path) -> int:
    stat = os.statvfs(disk)
    return stat.f_bavail * stat.f_frsize


def _storage_check(client: httpx.Client) -> tuple[int, str]:
    r = client.get("/readyz")
    return r.status_code, str(r.json()["checks"]["storage"])


def _assert_refused(r: httpx.Response, *words: str) -> str:
    oci.assert_error(r, 507, "BLOB_UPLOAD_INVALID")
    message = str(r.json()["errors"][0]["message"])
    for word in words:
        assert word in message, oci.error_text(r)
    return message


def _pieces(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), MIB):
        yield data[i : i + MIB]


def test_a_write_that_finds_the_disk_full_keeps_nothing_and_the_upload_goes_on(
    client: httpx.Client, disk: Path
) -> None:
    repo = "disk/enospc"
    status, note = _storage_check(client)
    assert status == 200 and "free" in note and f"reserve {RESERVE_MIB}.0 MiB" in note, note

    # A chunked upload acknowledges 1 MiB, then sends a chunk larger than the whole disk.
    first, too_big = os.urandom(MIB), os.urandom(DISK_MIB * MIB)
    r = client.patch(oci.start_upload(client, repo), content=first)
    assert r.status_code == 202, oci.error_text(r)
    url = oci.location(r)
    free_before = _free(disk)
    r = client.patch(url, content=_pieces(too_big), headers={"content-range": f"{MIB}-{MIB + len(too_big) - 1}"})
    _assert_refused(r, "ran out of space", "free", f"reserve {RESERVE_MIB}.0 MiB")

    # The bytes no one acknowledged are gone (their space with them); nothing was published.
    assert _free(disk) >= free_before - MIB
    assert client.head(f"/v2/{repo}/blobs/{oci.digest(first + too_big)}").status_code == 404
    assert _storage_check(client)[0] == 200
    r = client.get(url)
    assert r.status_code == 204 and r.headers["range"] == f"0-{MIB - 1}", oci.error_text(r)

    # The upload goes on from its acknowledged bytes.
    rest = os.urandom(2 * MIB)
    r = client.put(
        oci.with_params(url, digest=oci.digest(first + rest)),
        content=rest,
        headers={"content-range": f"{MIB}-{3 * MIB - 1}"},
    )
    assert r.status_code == 201, oci.error_text(r)
    assert client.get(f"/v2/{repo}/blobs/{oci.digest(first + rest)}").content == first + rest

    # A monolithic upload that cannot fit fails cleanly: no blob, no staged bytes left.
    free_before = _free(disk)
    r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": oci.digest(too_big)}, content=_pieces(too_big))
    _assert_refused(r, "ran out of space")
    assert client.head(f"/v2/{repo}/blobs/{oci.digest(too_big)}").status_code == 404
    assert list((disk / "uploads").iterdir()) == []
    assert _free(disk) >= free_before - MIB


def test_uploads_are_refused_under_the_reserve_and_a_freed_disk_takes_them_again(
    client: httpx.Client, disk: Path
) -> None:
    repo = "disk/reserve"
    session = oci.start_upload(client, repo)  # opened while there is room
    pushed = []
    while _free(disk) > (RESERVE_MIB * MIB) + 2 * LAYER:
        pushed.append(oci.push_image(client, repo, f"v{len(pushed)}", layers=[oci.layer(LAYER)]))
    assert len(pushed) >= 4  # pushes filled most of the disk

    # A plain file takes the free space under the reserve, from outside the registry.
    filler = disk / "filler"
    filler.write_bytes(b"\0" * (_free(disk) - RESERVE_MIB * MIB // 2))
    for full in (False, True):
        layer = os.urandom(MIB)
        # Refused before any byte is read: at the POST, at a monolithic POST, at a PATCH.
        r = client.post(f"/v2/{repo}/blobs/uploads/", headers={"content-length": "0"})
        message = _assert_refused(r, "free", f"under its reserve of {RESERVE_MIB}.0 MiB")
        r = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": oci.digest(layer)}, content=layer)
        _assert_refused(r, f"under its reserve of {RESERVE_MIB}.0 MiB")
        r = client.patch(session, content=layer)
        _assert_refused(r, f"under its reserve of {RESERVE_MIB}.0 MiB")
        status, note = _storage_check(client)
        assert status == 503 and note.startswith("failed:") and "under its reserve" in note, note
        # What is stored is still served.
        got = client.get(f"/v2/{repo}/manifests/v0", headers={"accept": oci.OCI_MANIFEST})
        assert got.status_code == 200 and got.content == pushed[0].body, oci.error_text(got)
        if not full:
            # Then the disk is filled to the last byte.
            fd = os.open(filler, os.O_WRONLY | os.O_APPEND)
            try:
                while True:
                    os.write(fd, b"\0" * 65536)
            except OSError:
                pass
            finally:
                os.close(fd)
            assert _free(disk) < 65536, message

    # Freeing the space is all it takes.
    filler.unlink()
    status, note = _storage_check(client)
    assert status == 200, note
    again = oci.push_image(client, repo, "after", layers=[oci.layer(LAYER)])
    got = client.get(f"/v2/{repo}/manifests/after", headers={"accept": oci.OCI_MANIFEST})
    assert got.status_code == 200 and got.content == again.body, oci.error_text(got)
    r = client.patch(session, content=b"resumed")
    assert r.status_code == 202, oci.error_text(r)
