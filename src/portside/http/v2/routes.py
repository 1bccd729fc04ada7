"""The `/v2` route table. Every route is guarded: name checked, access authorized,
errors rendered with the spec's codes — all here, once, not in each handler."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from portside.auth.access import Credentials, Grant
from portside.errors import BlobUploadInvalid, Denied, RegistryError
from portside.http.access import methods, required_access
from portside.http.v2 import base, blobs, listings, manifests, referrers, uploads
from portside.http.v2.common import credentials, render_error, services
from portside.oci.digest import Digest
from portside.oci.reference import check_name
from portside.registry.trail import RegistryEvent

__all__ = ["v2_routes"]

log = logging.getLogger("portside.http")

Handler = Callable[[Request], Awaitable[Response]]


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _credentials(request: Request) -> Credentials:
    return credentials(request.headers.get("authorization"), _client(request))


# Which successful requests the audit trail records: (route, method) → (operation, resource type).
_AUDITED = {
    ("manifest", "PUT"): ("create", "artifact"),
    ("manifest", "GET"): ("pull", "artifact"),
    ("manifest", "DELETE"): ("delete", "artifact"),
    ("blob", "DELETE"): ("delete", "blob"),
}


def _audit(route: str, request: Request, response: Response, grant: Grant) -> None:
    trail = services(request).trail
    kind = _AUDITED.get((route, request.method))
    if trail is None or kind is None or response.status_code >= 300:
        return
    operation, resource_type = kind
    reference = request.path_params.get("reference") or request.path_params.get("digest", "")
    if operation == "delete" and resource_type == "artifact" and ":" not in reference:
        resource_type = "tag"
    digest = response.headers.get("docker-content-digest")
    trail.emit(
        RegistryEvent(
            operation,
            resource_type,
            request.path_params["name"],
            reference,
            Digest.parse(digest) if digest and operation == "pull" else None,
            grant.subject or "anonymous",
            _client(request),
            datetime.now(UTC),
        )
    )


# What changes a repository: refused in a proxy project, whose content is the upstream's.
_WRITES = {
    ("manifest", "PUT"),
    ("manifest", "DELETE"),
    ("upload_start", "POST"),
    ("upload", "PATCH"),
    ("upload", "PUT"),
    ("blob", "DELETE"),
}


async def _refuse_proxy_writes(request: Request) -> None:
    proxy = services(request).proxy
    if proxy is not None and await proxy.projects.config(request.path_params["name"]) is not None:
        # Harbor's words, which clients and scripts already know.
        raise Denied("can not push artifact to a proxy project")


def _guarded(route: str, handler: Handler) -> Handler:
    writes = any(r == route for r, _ in _WRITES)

    async def endpoint(request: Request) -> Response:
        head = request.method == "HEAD"
        try:
            if "name" in request.path_params:
                check_name(request.path_params["name"])
            wanted = required_access(route, request)
            grant = await services(request).authorizer.authorize(_credentials(request), wanted)
            request.state.grant = grant
            if writes and (route, request.method) in _WRITES:
                await _refuse_proxy_writes(request)
            response = await handler(request)
            _audit(route, request, response, grant)
            return response
        except RegistryError as error:
            # Answered once the body has been read (http/bodies.py), so the client sees it.
            return render_error(error, head)
        except ClientDisconnect:
            # Nobody is left to read an answer; the staged bytes were cut off already.
            return render_error(BlobUploadInvalid("client disconnected"), head)
        except Exception:
            log.exception("unhandled error in %s %s", request.method, request.url.path)
            return render_error(RegistryError("internal server error"), head)

    endpoint.__name__ = handler.__name__
    return endpoint


def _route(path: str, route: str, handlers: dict[str, Handler]) -> list[Route]:
    """One Route per handler, so each method gets its own guarded endpoint."""
    out = []
    for method in methods(route):
        handler = handlers[method]
        out.append(Route(path, _guarded(route, handler), methods=[method], name=f"{route}:{method}"))
    return out


def v2_routes() -> list[Route]:
    name = "/v2/{name:path}"
    return [
        *_route("/v2/", "base", {"GET": base.version_check}),
        *_route("/v2/_catalog", "catalog", {"GET": listings.catalog}),
        *_route(f"{name}/tags/list", "tags", {"GET": listings.list_tags}),
        *_route(
            f"{name}/manifests/{{reference}}",
            "manifest",
            {
                "GET": manifests.get_manifest,
                "HEAD": manifests.get_manifest,
                "PUT": manifests.put_manifest,
                "DELETE": manifests.delete_manifest,
            },
        ),
        *_route(f"{name}/blobs/uploads/", "upload_start", {"POST": uploads.start_upload}),
        *_route(f"{name}/blobs/uploads", "upload_start", {"POST": uploads.start_upload}),
        *_route(
            f"{name}/blobs/uploads/{{upload_id}}",
            "upload",
            {
                "GET": uploads.upload_status,
                "PATCH": uploads.append_chunk,
                "PUT": uploads.complete_upload,
                "DELETE": uploads.cancel_upload,
            },
        ),
        *_route(
            f"{name}/blobs/{{digest}}",
            "blob",
            {"GET": blobs.get_blob, "HEAD": blobs.get_blob, "DELETE": blobs.delete_blob},
        ),
        *_route(f"{name}/referrers/{{digest}}", "referrers", {"GET": referrers.list_referrers}),
    ]
