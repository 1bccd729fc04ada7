"""`/v2/<name>/manifests/<reference>`: GET, HEAD, PUT, DELETE by tag or digest."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from portside.errors import ManifestTooLarge
from portside.http.v2.common import accepted_media_types, granted_project, read_limited, repo_name, services
from portside.registry.manifests import parse_reference, read_reference


def _accept(request: Request) -> list[str]:
    return accepted_media_types(request.headers.getlist("accept"))


async def get_manifest(request: Request) -> Response:
    reference = read_reference(request.path_params["reference"])
    svc = services(request)
    manifests, name = svc.manifests, repo_name(request)
    proxied = await svc.proxy.proxied(name) if svc.proxy is not None else None
    if proxied is not None:
        assert svc.proxy is not None
        record = await svc.proxy.manifest(proxied, reference, _accept(request))
        name = proxied.local  # where the cached copy lives, which the policies judge
    else:
        record = await manifests.get(name, reference, _accept(request))
    if request.method != "HEAD" and manifests.pull_gate is not None:
        await manifests.pull_gate.check(request.state.grant, name, record)
    headers = {
        "docker-content-digest": str(record.digest),
        "etag": f'"{record.digest}"',
        "content-length": str(len(record.payload)),
    }
    body = b"" if request.method == "HEAD" else record.payload
    return Response(body, headers=headers, media_type=record.media_type)


async def put_manifest(request: Request) -> Response:
    repo = repo_name(request)
    reference = parse_reference(request.path_params["reference"])
    manifests = services(request).manifests
    limit = manifests.max_manifest_bytes
    payload = await read_limited(
        request, limit, ManifestTooLarge(f"manifest exceeds the limit of {limit} bytes", detail={"limit": limit})
    )
    manifest = await manifests.put(
        repo, reference, payload, request.headers.get("content-type"), granted_project(request)
    )
    headers = {
        "location": f"/v2/{repo}/manifests/{manifest.digest}",
        "docker-content-digest": str(manifest.digest),
        "content-length": "0",
    }
    if manifest.subject is not None:
        headers["oci-subject"] = str(manifest.subject.digest)
    return Response(status_code=201, headers=headers)


async def delete_manifest(request: Request) -> Response:
    # The spec allows 400 or 404 here; a reference that is no tag or digest names nothing,
    # as a GET of it says.
    reference = read_reference(request.path_params["reference"])
    await services(request).manifests.delete(repo_name(request), reference, granted_project(request))
    return Response(status_code=202, headers={"content-length": "0"})
