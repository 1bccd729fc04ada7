"""`/v2/<name>/blobs/<digest>`: GET, HEAD (with Range) and DELETE."""

from __future__ import annotations

import os

from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from portside.errors import BlobUnknown
from portside.http.v2.common import repo_name, services
from portside.oci.digest import Digest


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
    headers["content-length"] = str(blob.size)
    if request.method == "HEAD":
        return Response(headers=headers, media_type="application/octet-stream")
    return StreamingResponse(blob.read(), headers=headers, media_type="application/octet-stream")


async def delete_blob(request: Request) -> Response:
    digest = Digest.parse(request.path_params["digest"])
    await services(request).blobs.delete(repo_name(request), digest)
    return Response(status_code=202, headers={"content-length": "0"})
