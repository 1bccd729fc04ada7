"""A 200 MiB layer pushed in 16 MiB chunks (PATCH + Content-Range), then pulled whole and by ranges."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx
import pytest

from tests.servers import RegistryServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SIZE = 200 * 1024 * 1024
CHUNK = 16 * 1024 * 1024
BLOCK = 1024 * 1024


def _random_file(path: Path, size: int) -> str:
    """Write `size` random bytes, 1 MiB at a time; return the sha256 digest."""
    h = hashlib.sha256()
    with open(path, "wb") as f:
        left = size
        while left:
            block = os.urandom(min(BLOCK, left))
            h.update(block)
            f.write(block)
            left -= len(block)
    return "sha256:" + h.hexdigest()


def _absolute(base: str, location: str) -> str:
    return location if location.startswith("http") else base + location


def _read_range(path: Path, start: int, end: int) -> bytes:
    with open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start + 1)


def test_chunked_push_and_ranged_pull_200mib(registry: RegistryServer, repo: str, tmp_path: Path) -> None:
    blob = tmp_path / "layer.bin"
    digest = _random_file(blob, SIZE)

    with httpx.Client(base_url=registry.url, timeout=httpx.Timeout(120.0)) as http:
        start = http.post(f"/v2/{repo}/blobs/uploads/")
        assert start.status_code == 202, start.text
        location = _absolute(registry.url, start.headers["Location"])
        assert start.headers.get("Docker-Upload-UUID")

        offset = 0
        with open(blob, "rb") as f:
            while offset < SIZE:
                chunk = f.read(CHUNK)
                end = offset + len(chunk) - 1
                resp = http.patch(
                    location,
                    content=chunk,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{end}",
                        "Content-Length": str(len(chunk)),
                    },
                )
                assert resp.status_code == 202, f"PATCH {offset}-{end}: {resp.status_code} {resp.text}"
                assert resp.headers.get("Range") == f"0-{end}", dict(resp.headers)
                location = _absolute(registry.url, resp.headers["Location"])
                offset = end + 1
                del chunk

        status = http.get(location)
        assert status.status_code == 204, status.text
        assert status.headers.get("Range") == f"0-{SIZE - 1}"

        # the session URL may carry its own query (state): add the digest to it, do not replace it
        done = http.put(httpx.URL(location).copy_merge_params({"digest": digest}), headers={"Content-Length": "0"})
        assert done.status_code == 201, done.text
        assert done.headers["Docker-Content-Digest"] == digest
        assert done.headers["Location"].endswith(f"/v2/{repo}/blobs/{digest}")

        head = http.head(f"/v2/{repo}/blobs/{digest}")
        assert head.status_code == 200
        assert int(head.headers["Content-Length"]) == SIZE
        assert head.headers["Docker-Content-Digest"] == digest

        # ranged pulls: the start, a span across a chunk boundary, the last byte, an open-ended tail
        for first, last in ((0, 1023), (CHUNK - 100, CHUNK + 99), (SIZE - 1, SIZE - 1), (SIZE - 4096, None)):
            spec = f"bytes={first}-{'' if last is None else last}"
            last_byte = SIZE - 1 if last is None else last
            part = http.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": spec}, follow_redirects=True)
            assert part.status_code == 206, f"{spec}: {part.status_code}"
            assert part.headers["Content-Range"] == f"bytes {first}-{last_byte}/{SIZE}"
            assert int(part.headers["Content-Length"]) == last_byte - first + 1
            assert part.content == _read_range(blob, first, last_byte)

        # the full pull, streamed and hashed
        h = hashlib.sha256()
        received = 0
        with http.stream("GET", f"/v2/{repo}/blobs/{digest}", follow_redirects=True) as full:
            assert full.status_code == 200
            assert int(full.headers["Content-Length"]) == SIZE
            assert full.headers["Docker-Content-Digest"] == digest
            for data in full.iter_bytes(BLOCK):
                h.update(data)
                received += len(data)
        assert received == SIZE
        assert "sha256:" + h.hexdigest() == digest
