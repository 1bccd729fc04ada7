"""The `/v2` route table. Every route is guarded: name checked, access authorized,
errors rendered with the spec's codes — all here, once, not in each handler."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from portside.auth.access import Credentials
from portside.errors import BlobUploadInvalid, RegistryError
from portside.http.access import methods, required_access
from portside.http.v2 import base, blobs, listings, manifests, referrers, uploads
from portside.http.v2.common import render_error, services
from portside.oci.reference import check_name

__all__ = ["v2_routes"]

log = logging.getLogger("portside.http")

Handler = Callable[[Request], Awaitable[Response]]


def _credentials(request: Request) -> Credentials:
    header = request.headers.get("authorization")
    if not header:
        return Credentials()
    scheme, _, value = header.partition(" ")
    return Credentials(scheme.lower(), value.strip())


def _guarded(route: str, handler: Handler) -> Handler:
    async def endpoint(request: Request) -> Response:
        head = request.method == "HEAD"
        try:
            if "name" in request.path_params:
                check_name(request.path_params["name"])
            wanted = required_access(route, request)
            await services(request).authorizer.authorize(_credentials(request), wanted)
            return await handler(request)
        except RegistryError as error:
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
