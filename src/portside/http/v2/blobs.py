"""`/v2/<name>/blobs/<digest>`: GET, HEAD (with Range) and DELETE.

A local store's blob is a file Starlette sends itself (Range included, zero-copy); any
other store's is streamed from `read`, or GET is redirected to the URL the store offers.
"""

from __future__ import annotations

import os
import re

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from portside.errors import BlobUnknown
from portside.http.v2.common import repo_name, services
from portside.oci.digest import Digest
from portside.registry.blobs import BlobHandle


async def get_blob(request: Request) -> Response:
    digest = Digest.parse(request.path_params["digest"])
    blob = await services(request).blobs.open(repo_name(request), digest)
    headers = {
        "docker-content-digest": str(digest),
        "etag": f'"{digest}"',
        "cache-control": "max-age=31536000",
        "accept-ranges": "bytes",
    }
    if blob.local_path is not None:
        try:
            # One stat syscall on a path the kernel has cached; cheaper than a thread hop.
            stat = os.stat(blob.local_path)
        except FileNotFoundError:
            raise BlobUnknown(f"content of {digest} is missing from storage", detail={"digest": str(digest)}) from None
        # FileResponse answers Range requests itself, and sends whole files with pathsend.
        return FileResponse(blob.local_path, stat_result=stat, headers=headers, media_type="application/octet-stream")
    if request.method == "GET" and (url := await blob.store.redirect_url(digest)) is not None:
        return Response(status_code=307, headers={"location": url, "docker-content-digest": str(digest)})
    return _streamed(request, blob, headers)


def _streamed(request: Request, blob: BlobHandle, headers: dict[str, str]) -> Response:
    """The blob through Portside: whole (200), or the one range asked for (206, or 416)."""
    status, start, end = 200, 0, blob.size
    wanted = request.headers.get("range")
    if wanted is not None and request.headers.get("if-range", headers["etag"]) == headers["etag"]:
        try:
            span = byte_range(wanted, blob.size)
        except RangeNotSatisfiable:
            return Response(status_code=416, headers={"content-range": f"bytes */{blob.size}"})
        if span is not None:
            status, (start, end) = 206, span
            headers["content-range"] = f"bytes {start}-{end - 1}/{blob.size}"
    headers["content-length"] = str(end - start)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type="application/octet-stream")
    return StreamingResponse(
        blob.read(start, end), status_code=status, headers=headers, media_type="application/octet-stream"
    )


_BYTE_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", re.ASCII | re.IGNORECASE)


class RangeNotSatisfiable(Exception):
    pass


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The one byte range `header` asks of `size` bytes, as (start, exclusive end); None to
    ignore the header (malformed, another unit, or several ranges: RFC 9110 lets a server
    answer those with the whole content). Raises `RangeNotSatisfiable` (416)."""
    match = _BYTE_RANGE.fullmatch(header)
    if match is None or not any(match.groups()):
        return None
    first, last = match.groups()
    if not first:  # the final `last` bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(size - suffix, 0), size
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable
    end = size if not last else min(int(last) + 1, size)
    return start, end


async def delete_blob(request: Request) -> Response:
    digest = Digest.parse(request.path_params["digest"])
    await services(request).blobs.delete(repo_name(request), digest)
    return Response(status_code=202, headers={"content-length": "0"})
