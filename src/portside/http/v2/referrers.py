"""`/v2/<name>/referrers/<digest>`: the manifests whose subject is `digest`, as an index."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from portside.http.v2.common import repo_name, services
from portside.oci import mediatypes as mt
from portside.oci.digest import Digest


async def list_referrers(request: Request) -> Response:
    subject = Digest.parse(request.path_params["digest"])
    artifact_type = request.query_params.get("artifactType") or None
    svc = services(request)
    proxied = await svc.proxy.proxied(repo_name(request)) if svc.proxy is not None else None
    if proxied is not None and svc.proxy is not None:
        found = await svc.proxy.referrers(proxied, subject, artifact_type)
    else:
        found = await svc.manifests.referrers(repo_name(request), subject, artifact_type)
    index = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [d.to_json() for d in found]}
    headers = {"oci-filters-applied": "artifactType"} if artifact_type else {}
    return Response(json.dumps(index, separators=(",", ":")), headers=headers, media_type=mt.OCI_INDEX)
