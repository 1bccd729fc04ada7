"""Trust policies over HTTP: `/projects/{project_name_or_id}/trust` and `/system/trust`
(mgmt/trust_policy.py), and the signatures of an artifact with each one's verdict."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from portside.errors import NotFound
from portside.http.api.context import Caller, iso, services
from portside.meta.accounts import Project
from portside.meta.trust import StoredTrust
from portside.mgmt.artifacts import ArtifactView, derived_id
from portside.mgmt.signatures import COSIGN_REFERRER, SignatureManifest, accessory_type
from portside.mgmt.trust_policy import TrustPolicyService, describe_certificate, describe_keys
from portside.oci.digest import Digest
from portside.trust import bundle, notation

__all__ = ["router", "signature_resp", "trust_resp"]

router = APIRouter(tags=["trust"])
_PROJECT = "/projects/{project_name_or_id}/trust"
_ARTIFACT_TYPES = {"cosign": COSIGN_REFERRER, "cosign-bundle": bundle.MEDIA_TYPE, "notation": notation.ARTIFACT_TYPE}


class KeyReq(BaseModel):
    name: Annotated[str, Field(max_length=64)]
    public_key: Annotated[str, Field(max_length=64 << 10)]


def _trust(request: Request) -> TrustPolicyService:
    found = services(request).trust
    if found is None:
        raise NotFound("trust policies are not available on this server")
    return found


def trust_resp(stored: StoredTrust, *, system: bool) -> dict[str, Any]:
    """The stored document with what people need to recognise each entry: key ids and
    algorithms, certificates' subjects and expiry."""
    document = dict(stored.document)
    keyless = document.get("keyless") or {"identities": [], "require_tlog": True}
    notation_part = {
        "certificates": [],
        "trusted_identities": [],
        "verification_level": "strict",
        "verification_override": {},
        "verify_timestamp": "always",
        **(document.get("notation") or {}),
    }
    out: dict[str, Any] = {
        "project_id": stored.project_id,
        "cosign_keys": describe_keys(document.get("cosign_keys", [])),
        "keyless": keyless,
        "trusted_root": document.get("trusted_root"),
        "notation": {
            **notation_part,
            "certificates": [describe_certificate(c) for c in notation_part.get("certificates", [])],
        },
        "notary": document.get("notary") or {"root_keys": []},
        "inherit_index_signature": bool(document.get("inherit_index_signature", False)),
        "creation_time": iso(stored.creation_time),
        "update_time": iso(stored.update_time),
    }
    if not system:
        out["use_system_defaults"] = bool(document.get("use_system_defaults", True))
    return out


def signature_resp(found: SignatureManifest) -> dict[str, Any]:
    """One signature manifest and the verdict on each signature it holds."""
    return {
        "kind": found.kind,
        "digest": found.digest,
        "subject_digest": found.subject,
        "tag": found.tag,
        "size": found.size,
        "verified": found.verified,
        "signatures": [
            {
                "verified": r.verified,
                "reason": r.reason,
                "signer": r.signer,
                "signed_at": iso(r.signed_at),
                "warnings": list(r.warnings),
            }
            for r in found.results
        ],
    }


@router.get(_PROJECT, summary="The project's trust policy: the keys, certificates and identities it trusts")
async def get_project_trust(request: Request, who: Caller, project_name_or_id: str) -> dict[str, Any]:
    trust = _trust(request)
    project, stored = await trust.of_project(who, project_name_or_id)
    return {**trust_resp(stored, system=False), "server_signing_key": await trust.server_key_of(project)}


@router.put(_PROJECT, summary="Replace the project's trust policy (project administrators)")
async def put_project_trust(
    request: Request, who: Caller, project_name_or_id: str, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    return trust_resp(await _trust(request).set_project(who, project_name_or_id, body), system=False)


@router.post(_PROJECT + "/keys", summary="Trust one more cosign public key", status_code=201)
async def add_project_key(
    request: Request, response: Response, who: Caller, project_name_or_id: str, body: KeyReq
) -> dict[str, str]:
    key_id = await _trust(request).add_key(who, project_name_or_id, body.name, body.public_key)
    response.headers["Location"] = f"{request.url.path}/{key_id}"
    return {"id": key_id}


@router.delete(_PROJECT + "/keys/{key_id}", summary="Stop trusting a cosign public key", response_class=Response)
async def remove_project_key(request: Request, who: Caller, project_name_or_id: str, key_id: str) -> None:
    await _trust(request).remove_key(who, project_name_or_id, key_id)


@router.get("/system/trust", summary="The system's default trust policy (anyone signed in)")
async def get_system_trust(request: Request, who: Caller) -> dict[str, Any]:
    return trust_resp(await _trust(request).system(who), system=True)


@router.put("/system/trust", summary="Replace the system's default trust policy (system administrators)")
async def put_system_trust(request: Request, who: Caller, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
    return trust_resp(await _trust(request).set_system(who, body), system=True)


_ARTIFACT = "/projects/{project_name}/repositories/{repository_name:path}/artifacts/{reference}"


async def _signatures_of(
    request: Request, who: Caller, project_name: str, repository_name: str, reference: str
) -> tuple[int, list[SignatureManifest]]:
    found = services(request)
    if found.signatures is None:
        raise NotFound("signatures are not available on this server")
    project, view = await found.artifacts.get(who, project_name, repository_name, reference, tag_limit=0)
    material = await _trust(request).material(project)
    repository = view.info.repository_name
    signatures = await found.signatures.verify(repository, Digest.parse(view.info.digest), material)
    return view.info.repository_id, signatures


@router.get(_ARTIFACT + "/signatures", summary="The artifact's signatures, each verified against the project's trust")
async def artifact_signatures(
    request: Request, who: Caller, project_name: str, repository_name: str, reference: str
) -> list[dict[str, Any]]:
    _, found = await _signatures_of(request, who, project_name, repository_name, reference)
    return [signature_resp(f) for f in found]


@router.get(_ARTIFACT + "/accessories", summary="List accessories (Harbor's shape, with each signature's verdict)")
async def artifact_accessories(
    request: Request, who: Caller, project_name: str, repository_name: str, reference: str
) -> Response:
    repository_id, found = await _signatures_of(request, who, project_name, repository_name, reference)
    relative = repository_name.replace("%2F", "/")
    items = [accessory_resp(repository_id, f, relative) for f in found]
    return JSONResponse(items, headers={"X-Total-Count": str(len(items))})


def accessory_resp(repository_id: int, found: SignatureManifest, repository: str = "") -> dict[str, Any]:
    """Harbor's Accessory (ids as artifacts' are derived), and Portside's `verified` and `kind`."""
    return {
        "id": derived_id(repository_id, "accessory", found.digest),
        "artifact_id": derived_id(repository_id, found.digest),
        "subject_artifact_id": derived_id(repository_id, found.subject),
        "subject_artifact_digest": found.subject,
        "subject_artifact_repo": repository,
        "size": found.size,
        "digest": found.digest,
        "type": accessory_type(None if found.tag else _ARTIFACT_TYPES[found.kind], found.tag),
        "icon": "",
        "kind": found.kind,
        "verified": found.verified,
    }


async def with_accessories(
    request: Request,
    project: Project,
    documents: list[dict[str, Any]],
    views: list[ArtifactView],
    with_accessory: bool,
    with_signature: bool,
) -> None:
    """Harbor's `with_accessory` (each artifact's signatures, with Portside's verdicts) and
    `with_signature` (each tag's `signed`: a signature of the artifact verifies with what
    the project trusts), added to the artifacts' documents in place."""
    found = services(request)
    if not (with_accessory or with_signature) or found.signatures is None or found.trust is None:
        return
    material = await found.trust.material(project)
    for document, view in zip(documents, views, strict=True):
        info = view.info
        signatures = await found.signatures.verify(info.repository_name, Digest.parse(info.digest), material)
        relative = info.repository_name.removeprefix(project.name + "/")
        if with_accessory:
            document["accessories"] = [accessory_resp(info.repository_id, s, relative) for s in signatures]
        if with_signature:
            signed = any(s.verified for s in signatures)
            for tag in document.get("tags", []):
                tag["signed"] = signed
