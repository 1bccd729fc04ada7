"""`/v2/<name>/blobs/uploads/`: start (monolithic, mount), PATCH, PUT, status, cancel."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from portside.errors import DigestInvalid
from portside.http.v2.common import body_stream, content_length, granted_project, repo_name, services
from portside.oci.digest import Digest
from portside.oci.reference import check_name
from portside.registry.uploads import ChunkRange


def _session_headers(repo: str, upload_id: str, size: int) -> dict[str, str]:
    return {
        "location": f"/v2/{repo}/blobs/uploads/{upload_id}",
        "docker-upload-uuid": upload_id,
        # The spec's inclusive range of bytes received; "0-0" also stands for none yet.
        "range": f"0-{max(size - 1, 0)}",
        "content-length": "0",
    }


def _created(repo: str, digest: Digest) -> Response:
    return Response(
        status_code=201,
        headers={
            "location": f"/v2/{repo}/blobs/{digest}",
            "docker-content-digest": str(digest),
            "content-length": "0",
        },
    )


def _digest_param(request: Request) -> Digest:
    value = request.query_params.get("digest")
    if not value:
        raise DigestInvalid("the digest query parameter is required to complete an upload")
    return Digest.parse(value)


def _chunk_range(request: Request) -> ChunkRange | None:
    header = request.headers.get("content-range")
    return ChunkRange.parse(header) if header else None


async def start_upload(request: Request) -> Response:
    repo = repo_name(request)
    svc = services(request)
    mount, source = request.query_params.get("mount"), request.query_params.get("from")
    if mount and source:
        digest = Digest.parse(mount)
        if await svc.blobs.mount(repo, digest, check_name(source), granted_project(request)):
            return _created(repo, digest)
    elif request.query_params.get("digest"):
        digest = _digest_param(request)
        await svc.uploads.upload_whole(
            repo, digest, body_stream(request), content_length(request), granted_project(request)
        )
        return _created(repo, digest)
    session = await svc.uploads.start(repo)
    return Response(status_code=202, headers=_session_headers(repo, session.upload_id, 0))


async def upload_status(request: Request) -> Response:
    repo, upload_id = repo_name(request), request.path_params["upload_id"]
    session = await services(request).uploads.status(repo, upload_id)
    return Response(status_code=204, headers=_session_headers(repo, upload_id, session.size))


async def append_chunk(request: Request) -> Response:
    repo, upload_id = repo_name(request), request.path_params["upload_id"]
    size = await services(request).uploads.append(
        repo, upload_id, body_stream(request), _chunk_range(request), content_length(request)
    )
    return Response(status_code=202, headers=_session_headers(repo, upload_id, size))


async def complete_upload(request: Request) -> Response:
    repo, upload_id = repo_name(request), request.path_params["upload_id"]
    digest = _digest_param(request)
    await services(request).uploads.complete(
        repo,
        upload_id,
        digest,
        body_stream(request),
        _chunk_range(request),
        content_length(request),
        granted_project(request),
    )
    return _created(repo, digest)


async def cancel_upload(request: Request) -> Response:
    await services(request).uploads.cancel(repo_name(request), request.path_params["upload_id"])
    return Response(status_code=204, headers={"content-length": "0"})
