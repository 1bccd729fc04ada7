"""`/v2/<name>/blobs/<digest>`: GET, HEAD (with Range) and DELETE.

A local store's blob is sent from its file (`FileRange`: large slices read by Portside, or
the whole file handed to the server to send); any other store's is streamed from `read`,
or GET is redirected to the URL the store offers. Both answer Range alike: one byte range gets 206,
an unsatisfiable one 416, and several ranges or a malformed header the whole blob (200).
"""

from __future__ import annotations

import os
import re
from email.utils import formatdate
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from portside.digits import parse_decimal
from portside.errors import BlobUnknown
from portside.http.filerange import FileRange
from portside.http.v2.common import granted_project, render_error, repo_name, services
from portside.oci.digest import Digest
from portside.proxy.downloads import Download
from portside.proxy.projects import Proxied
from portside.registry.blobs import BlobHandle

_OCTET_STREAM = "application/octet-stream"


async def get_blob(request: Request) -> Response:
    digest = Digest.parse(request.path_params["digest"])
    svc, name = services(request), repo_name(request)
    proxied = await svc.proxy.proxied(name) if svc.proxy is not None else None
    if proxied is not None:
        return await _proxied_blob(request, proxied, digest)
    blob = await svc.blobs.open(name, digest)
    gate = svc.manifests.pull_gate
    if request.method == "GET" and gate is not None:
        await gate.check_blob(request.state.grant, name, digest)
    return await _send_blob(request, blob, digest)


async def _proxied_blob(request: Request, proxied: Proxied, digest: Digest) -> Response:
    """A blob of a proxy project: the cached one as any other, else the download's bytes
    as they arrive (proxy/downloads.py)."""
    proxy = services(request).proxy
    assert proxy is not None
    gate = services(request).manifests.pull_gate
    if request.method == "HEAD":
        found: BlobHandle | Download | int = await proxy.blob_size(proxied, digest)
    else:
        found = await proxy.blob(proxied, digest)
        if gate is not None:
            await gate.check_blob(request.state.grant, proxied.local, digest)
    if isinstance(found, BlobHandle):
        return await _send_blob(request, found, digest)
    headers = blob_headers(digest)
    headers["content-type"] = _OCTET_STREAM
    size = found if isinstance(found, int) else found.size
    if size is None:  # the upstream gave no length: the whole, as it comes
        assert isinstance(found, Download)
        return StreamingResponse(found.reader(), headers=headers)
    try:
        status, start, end = _span(request, size, headers)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={"content-range": f"bytes */{size}"})
    headers["content-length"] = str(end - start)
    if isinstance(found, int):
        return Response(status_code=status, headers=headers)
    return StreamingResponse(found.reader(start, end), status_code=status, headers=headers)


async def _send_blob(request: Request, blob: BlobHandle, digest: Digest) -> Response:
    headers = blob_headers(digest)
    if blob.local_path is not None:
        stat = stat_local(blob.local_path, digest)
        size = stat.st_size
        headers["last-modified"] = formatdate(stat.st_mtime, usegmt=True)
        nginx = services(request).nginx_blobs
        if request.method == "GET" and nginx is not None and (redirect := nginx.redirect(blob.local_path)):
            # nginx sends the file itself (and answers Range); the headers below go with it.
            headers["content-type"] = _OCTET_STREAM
            headers["x-accel-redirect"] = redirect
            return Response(status_code=200, headers=headers)
    elif request.method == "GET" and (url := await blob.store.redirect_url(digest)) is not None:
        return Response(status_code=307, headers={"location": url, "docker-content-digest": str(digest)})
    else:
        size = blob.size
    try:
        status, start, end = _span(request, size, headers)
    except RangeNotSatisfiable:
        return Response(status_code=416, headers={"content-range": f"bytes */{size}"})
    headers["content-length"] = str(end - start)
    headers["content-type"] = _OCTET_STREAM
    if blob.local_path is not None:
        head = request.method == "HEAD"

        def gone() -> Response:  # the file vanished between the stat above and its opening
            return render_error(missing_content(digest), head)

        return FileRange(str(blob.local_path), size, start, end, status, headers, gone, services(request).blob_slices)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    return StreamingResponse(blob.read(start, end), status_code=status, headers=headers)


def blob_headers(digest: Digest) -> dict[str, str]:
    """What every answer about a blob's content carries (GET and HEAD, routed or fast)."""
    return {
        "docker-content-digest": str(digest),
        "etag": f'"{digest}"',
        "cache-control": "max-age=31536000",
        "accept-ranges": "bytes",
    }


def stat_local(path: Path, digest: Digest) -> os.stat_result:
    """The blob file's stat; BLOB_UNKNOWN if its content is gone from storage."""
    try:
        # One stat syscall on a path the kernel has cached; cheaper than a thread hop.
        return os.stat(path)
    except FileNotFoundError:
        raise missing_content(digest) from None


def missing_content(digest: Digest) -> BlobUnknown:
    return BlobUnknown(f"content of {digest} is missing from storage", detail={"digest": str(digest)})


def _span(request: Request, size: int, headers: dict[str, str]) -> tuple[int, int, int]:
    """(status, start, exclusive end) of what to send of `size` bytes: the one range asked
    for (206, its Content-Range added to `headers`), or the whole (200). An If-Range that
    names neither this ETag nor this Last-Modified means the whole. Raises
    `RangeNotSatisfiable` (416)."""
    wanted = request.headers.get("range")
    if wanted is None:
        return 200, 0, size
    condition = request.headers.get("if-range")
    if condition is not None and condition not in (headers["etag"], headers.get("last-modified")):
        return 200, 0, size
    span = byte_range(wanted, size)
    if span is None:
        return 200, 0, size
    start, end = span
    headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
    return 206, start, end


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
    first, last = (parse_decimal(group) if group else None for group in match.groups())
    if first is None:  # the final `last` bytes
        assert last is not None
        if last == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(size - last, 0), size
    if last is not None and last < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable
    end = size if last is None else min(last + 1, size)
    return first, end


async def delete_blob(request: Request) -> Response:
    digest = Digest.parse(request.path_params["digest"])
    await services(request).blobs.delete(repo_name(request), digest, granted_project(request))
    return Response(status_code=202, headers={"content-length": "0"})
