"""/projects/{p}/repositories/{r}/artifacts: Harbor's artifacts and tags.

Registered before the repository routes: `{repository_name:path}` would otherwise
swallow the `/artifacts/...` suffix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from portside.errors import BadRequest
from portside.http.api.context import API_PREFIX, Caller, Pages, iso, paged, services, without_none
from portside.http.api.scans import ACCEPT_HEADER, report_type, sbom_overview, scan_overview
from portside.http.api.trust import with_accessories
from portside.meta.accounts import Project
from portside.meta.artifacts import ArtifactInfo, TagInfo
from portside.mgmt.artifacts import ArtifactView, derived_id

__all__ = ["router"]

router = APIRouter(tags=["artifact"])
_LIST = "/projects/{project_name}/repositories/{repository_name:path}/artifacts"
_ONE = _LIST + "/{reference}"

_TYPES = {
    "application/vnd.docker.container.image.v1+json": "IMAGE",
    "application/vnd.oci.image.config.v1+json": "IMAGE",
    "application/vnd.cncf.helm.config.v1+json": "CHART",
    "application/vnd.cnab.manifest.v1": "CNAB",
    "application/vnd.wasm.config.v1+json": "WASM",
}


class TagReq(BaseModel):
    name: str


def artifact_type(artifact: ArtifactInfo) -> str:
    if artifact.references:  # an index: Harbor calls multi-platform images IMAGE too
        return "IMAGE"
    return _TYPES.get(artifact.config_media_type or "", "ARTIFACT")


def extra_attrs(config: Mapping[str, Any] | None) -> dict[str, Any]:
    """Harbor's extra_attrs of an image: from its config; the author falls back to the
    `maintainer` label, as Harbor's does."""
    if config is None:
        return {}
    found = config.get("config")
    inner: dict[str, Any] = found if isinstance(found, dict) else {}
    labels: dict[str, Any] = inner["Labels"] if isinstance(inner.get("Labels"), dict) else {}
    return {
        "architecture": config.get("architecture", ""),
        "os": config.get("os", ""),
        "config": inner,
        "author": config.get("author") or labels.get("maintainer") or "",
        "created": config.get("created"),
    }


def artifacts_path(project: Project, repository_name: str) -> str:
    """The path of a repository's artifacts, its name relative to the project and encoded
    twice as Harbor writes it (a/b → a%252Fb)."""
    relative = quote(repository_name.removeprefix(project.name + "/"), safe="").replace("%2F", "%252F")
    return f"{API_PREFIX}/projects/{project.name}/repositories/{relative}/artifacts"


def artifact_resp(project: Project, view: ArtifactView, with_tag: bool = True) -> dict[str, Any]:
    a = view.info
    artifact_id = derived_id(a.repository_id, a.digest)
    document: dict[str, Any] = {
        "id": artifact_id,
        "type": artifact_type(a),
        "media_type": a.config_media_type or a.manifest_media_type,
        "manifest_media_type": a.manifest_media_type,
        "artifact_type": a.artifact_type or a.config_media_type or a.manifest_media_type,
        "project_id": project.project_id,
        "repository_id": a.repository_id,
        "repository_name": a.repository_name,
        "digest": a.digest,
        "size": a.size,
        "push_time": iso(a.push_time),
        "pull_time": iso(a.pull_time) or "0001-01-01T00:00:00Z",
        "annotations": dict(a.annotations),
        "extra_attrs": extra_attrs(view.config),
        "references": [
            without_none(
                {
                    "parent_id": artifact_id,
                    "child_id": derived_id(a.repository_id, c.digest),
                    "child_digest": c.digest,
                    "platform": dict(c.platform) if c.platform else None,
                    "annotations": dict(c.annotations) if c.annotations else None,
                    "urls": list(c.urls) or None,
                }
            )
            for c in a.references
        ],
    }
    if view.config is not None:
        # Only what Portside can serve: an image's build history (no scanner, no charts).
        href = f"{artifacts_path(project, a.repository_name)}/{a.digest}/additions/build_history"
        document["addition_links"] = {"build_history": {"href": href, "absolute": False}}
    if with_tag:
        document["tags"] = [tag_resp(a, t) for t in a.tags]
    return without_none(document)


def tag_resp(a: ArtifactInfo, t: TagInfo) -> dict[str, Any]:
    return without_none(
        {
            "id": derived_id(a.repository_id, "tag", t.name),
            "repository_id": a.repository_id,
            "artifact_id": derived_id(a.repository_id, a.digest),
            "name": t.name,
            "push_time": iso(t.push_time),
            "pull_time": iso(a.pull_time) or "0001-01-01T00:00:00Z",
            "immutable": False,
        }
    )


async def with_scans(
    request: Request,
    project: Project,
    documents: list[dict[str, Any]],
    views: list[ArtifactView],
    *,
    with_scan_overview: bool,
    with_sbom_overview: bool,
    accept: str | None,
) -> list[dict[str, Any]]:
    """Add the scan fields: `addition_links` to the reports, and (when asked for) the
    precomputed overviews, read for the whole list with one query."""
    scans = services(request).scans
    images = [v for v in views if v.config is not None or v.info.references]
    if scans is None or not images:
        return documents
    repository = views[0].info.repository_name
    digests = [v.info.digest for v in images]
    reports = await scans.overviews(repository, digests)
    mime = report_type(accept)
    base = artifacts_path(project, repository)
    for document, view in zip(documents, views, strict=True):
        if view.config is None and not view.info.references:
            continue
        digest = view.info.digest
        links = dict(document.get("addition_links", {}))
        links["vulnerabilities"] = {"href": f"{base}/{digest}/additions/vulnerabilities", "absolute": False}
        sbom = reports.get((digest, "sbom"))
        sbom_digest = sbom.sbom_digest if sbom is not None and sbom.sbom_digest else ""
        links["sboms"] = {"href": f"{base}/{sbom_digest}/additions/sbom", "absolute": False}
        document["addition_links"] = links
        if with_scan_overview:
            report = reports.get((digest, "vulnerability")) or sbom  # an SBOM scan matches too
            document["scan_overview"] = {mime: scan_overview(report, scans.scanner)} if report is not None else {}
        if with_sbom_overview and sbom is not None:
            document["sbom_overview"] = sbom_overview(sbom, scans.scanner)
    return documents


@router.get(_LIST, summary="Artifacts of a repository (q=tags=v1, q=digest=sha256:…)")
async def list_artifacts(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    project_name: str,
    repository_name: str,
    q: str | None = None,
    sort: str | None = None,
    with_tag: bool = True,
    with_scan_overview: bool = False,
    with_sbom_overview: bool = False,
    with_accessory: bool = False,
    with_signature: bool = False,
    accept: Annotated[str | None, Header(alias=ACCEPT_HEADER)] = None,
) -> list[dict[str, Any]]:
    project, page = await services(request).artifacts.list(who, project_name, repository_name, q, sort, paging)
    paged(request, response, page, paging)
    documents = [artifact_resp(project, a, with_tag) for a in page.items]
    await with_accessories(request, project, documents, list(page.items), with_accessory, with_signature)
    return await with_scans(
        request,
        project,
        documents,
        list(page.items),
        with_scan_overview=with_scan_overview,
        with_sbom_overview=with_sbom_overview,
        accept=accept,
    )


@router.get(_ONE, summary="An artifact, by digest or tag")
async def get_artifact(
    request: Request,
    who: Caller,
    project_name: str,
    repository_name: str,
    reference: str,
    with_tag: bool = True,
    with_scan_overview: bool = False,
    with_sbom_overview: bool = False,
    with_accessory: bool = False,
    with_signature: bool = False,
    accept: Annotated[str | None, Header(alias=ACCEPT_HEADER)] = None,
) -> dict[str, Any]:
    project, view = await services(request).artifacts.get(who, project_name, repository_name, reference)
    document = artifact_resp(project, view, with_tag)
    await with_accessories(request, project, [document], [view], with_accessory, with_signature)
    documents = await with_scans(
        request,
        project,
        [document],
        [view],
        with_scan_overview=with_scan_overview,
        with_sbom_overview=with_sbom_overview,
        accept=accept,
    )
    return documents[0]


@router.post(
    _LIST,
    status_code=201,
    summary="Copy an artifact here from another repository (from=project/repo@digest or project/repo:tag)",
    description="A mount: the target repository is linked to the manifest, its children and blobs, with the"
    " source artifact's tags; no bytes are copied. Needs pull on the source and push here; counts"
    " towards this project's storage quota.",
    response_class=Response,
)
async def copy_artifact(
    request: Request,
    response: Response,
    who: Caller,
    project_name: str,
    repository_name: str,
    source: Annotated[str, Query(alias="from")],
) -> None:
    project, repository, digest = await services(request).artifacts.copy(who, project_name, repository_name, source)
    response.headers["Location"] = f"{artifacts_path(project, repository)}/{digest}"


@router.get(
    _ONE + "/additions/{addition}",
    summary="An addition of an artifact: build_history (an image's config history)",
)
async def get_addition(
    request: Request, who: Caller, project_name: str, repository_name: str, reference: str, addition: str
) -> Response:
    if addition != "build_history":
        raise BadRequest(f"addition {addition} is not available here; Portside serves build_history")
    history = await services(request).artifacts.build_history(who, project_name, repository_name, reference)
    return JSONResponse(list(history), media_type="application/json; charset=utf-8")


@router.delete(_ONE, summary="Delete an artifact (as a /v2 manifest DELETE by digest)", response_class=Response)
async def delete_artifact(
    request: Request, who: Caller, project_name: str, repository_name: str, reference: str
) -> None:
    await services(request).artifacts.delete(who, project_name, repository_name, reference)


@router.get(_ONE + "/tags", summary="Tags of an artifact (q=name=~v; sort=name or push_time)")
async def list_tags(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    project_name: str,
    repository_name: str,
    reference: str,
    q: str | None = None,
    sort: str | None = None,
) -> list[dict[str, Any]]:
    artifact, page = await services(request).artifacts.tags(
        who, project_name, repository_name, reference, q, sort, paging
    )
    paged(request, response, page, paging)
    return [tag_resp(artifact, t) for t in page.items]


@router.post(_ONE + "/tags", status_code=201, summary="Tag an artifact", response_class=Response)
async def create_tag(
    request: Request,
    response: Response,
    who: Caller,
    project_name: str,
    repository_name: str,
    reference: str,
    body: TagReq,
) -> None:
    await services(request).artifacts.add_tag(who, project_name, repository_name, reference, body.name)
    response.headers["Location"] = f"{request.url.path}/{body.name}"


@router.delete(_ONE + "/tags/{tag_name}", summary="Delete a tag", response_class=Response)
async def delete_tag(
    request: Request, who: Caller, project_name: str, repository_name: str, reference: str, tag_name: str
) -> None:
    await services(request).artifacts.delete_tag(who, project_name, repository_name, reference, tag_name)
