"""Harbor's registries over HTTP: `/registries` (list, create), `/registries/{id}` (read,
update, delete), `/registries/ping`, `/registries/{id}/info`, and the registry types,
`/replication/adapters` and `/replication/adapterinfos` (mgmt/registries.py decides).

A registry's secret is never sent: `access_secret` is Harbor's `*****` when one is stored."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field

from portside.errors import NotFound
from portside.http.api.context import Caller, Pages, iso, paged, services, without_none
from portside.meta.registries import Endpoint, NewEndpoint
from portside.mgmt.limits import MAX_ID
from portside.mgmt.registries import MASKED_SECRET, EndpointChange, PingRequest, RegistryService, status_of
from portside.remote.adapters import ProviderInfo, RegistryInfo

__all__ = ["registry_resp", "router"]

router = APIRouter(tags=["registry"])
RegistryId = Annotated[int, Path(ge=1, le=MAX_ID)]
_Text = Annotated[str, Field(max_length=65_535)]


class CredentialReq(BaseModel):
    type: Annotated[str, Field(max_length=16)] = ""
    access_key: Annotated[str, Field(max_length=1024)] = ""
    access_secret: _Text = ""


class RegistryReq(BaseModel):
    """Harbor's Registry, as created (the read-only fields are ignored, as Harbor does)."""

    name: Annotated[str, Field(max_length=255)] = ""
    type: Annotated[str, Field(max_length=64)] = ""
    url: Annotated[str, Field(max_length=1024)] = ""
    description: _Text = ""
    insecure: bool = False
    ca_certificate: _Text | None = None
    credential: CredentialReq | None = None

    def new(self) -> NewEndpoint:
        credential = self.credential or CredentialReq()
        return NewEndpoint(
            name=self.name,
            type=self.type,
            url=self.url,
            description=self.description,
            insecure=self.insecure,
            ca_certificate=self.ca_certificate,
            credential_type=credential.type,
            access_key=credential.access_key,
            access_secret=credential.access_secret,
        )


class RegistryUpdateReq(BaseModel):
    name: Annotated[str, Field(max_length=255)] | None = None
    description: _Text | None = None
    url: Annotated[str, Field(max_length=1024)] | None = None
    credential_type: Annotated[str, Field(max_length=16)] | None = None
    access_key: Annotated[str, Field(max_length=1024)] | None = None
    access_secret: _Text | None = None
    insecure: bool | None = None
    ca_certificate: _Text | None = None

    def change(self) -> EndpointChange:
        return EndpointChange(**self.model_dump())


class RegistryPingReq(RegistryUpdateReq):
    id: Annotated[int, Field(ge=1, le=MAX_ID)] | None = None
    type: Annotated[str, Field(max_length=64)] | None = None

    def request(self) -> PingRequest:
        fields = self.model_dump(exclude={"name", "description"})
        return PingRequest(**fields)


def _registries(request: Request) -> RegistryService:
    found = services(request).registries
    if found is None:
        raise NotFound("registries are not available on this server")
    return found


def registry_resp(endpoint: Endpoint) -> dict[str, Any]:
    """Harbor's Registry, the secret masked; `last_error` and `checked_time` are Portside's
    (why the last health check found it unhealthy, and when it looked). Absent fields are
    left out, as Harbor leaves them."""
    health = endpoint.health
    body = {
        "id": endpoint.id,
        "name": endpoint.name,
        "type": endpoint.type,
        "url": endpoint.url,
        "description": endpoint.description,
        "insecure": endpoint.insecure,
        "ca_certificate": endpoint.ca_certificate,
        "credential": {
            "type": endpoint.credential_type,
            "access_key": endpoint.access_key,
            "access_secret": MASKED_SECRET if endpoint.has_secret else "",
        },
        "status": status_of(endpoint),
        "last_error": health.error if health is not None else "",
        "checked_time": iso(health.checked_at) if health is not None else None,
        "creation_time": iso(endpoint.creation_time),
        "update_time": iso(endpoint.update_time),
    }
    return without_none(body)


def info_resp(info: RegistryInfo) -> dict[str, Any]:
    return {
        "type": info.type,
        "description": info.description,
        "supported_resource_filters": [
            {"type": f.type, "style": f.style, "values": list(f.values)} for f in info.filters
        ],
        "supported_triggers": list(info.triggers),
        "supported_copy_by_chunk": info.copy_by_chunk,
    }


def provider_resp(provider: ProviderInfo) -> dict[str, Any]:
    return {
        "endpoint_pattern": {
            "endpoint_type": provider.endpoint_type,
            "endpoints": [{"key": key, "value": value} for key, value in provider.endpoints],
        },
        "credential_pattern": {
            "access_key_type": provider.access_key_type,
            "access_key_data": provider.access_key_data,
            "access_secret_type": provider.access_secret_type,
            "access_secret_data": provider.access_secret_data,
        },
    }


@router.get("/registries", summary="The registries Portside talks to (system administrators)")
async def list_registries(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    q: Annotated[str | None, Query(max_length=4096)] = None,
    sort: Annotated[str | None, Query(max_length=1024)] = None,
    name: Annotated[str | None, Query(max_length=255)] = None,
) -> list[dict[str, Any]]:
    found = await _registries(request).list(who, q, sort, paging, name)
    paged(request, response, found, paging)
    return [registry_resp(e) for e in found.items]


@router.post("/registries", summary="Add a registry", status_code=201, response_class=Response)
async def create_registry(request: Request, response: Response, who: Caller, body: RegistryReq) -> None:
    made = await _registries(request).create(who, body.new())
    response.headers["Location"] = f"{request.url.path}/{made.id}"


@router.post("/registries/ping", summary="Whether a registry answers (stored, or described)", response_class=Response)
async def ping_registry(request: Request, who: Caller, body: RegistryPingReq) -> None:
    await _registries(request).ping(who, body.request())


@router.get("/registries/{id}", summary="A registry")
async def get_registry(request: Request, who: Caller, id: RegistryId) -> dict[str, Any]:  # noqa: A002 (Harbor's name)
    return registry_resp(await _registries(request).get(who, id))


@router.put("/registries/{id}", summary="Change a registry", response_class=Response)
async def update_registry(request: Request, who: Caller, id: RegistryId, body: RegistryUpdateReq) -> None:  # noqa: A002
    await _registries(request).update(who, id, body.change())


@router.delete("/registries/{id}", summary="Remove a registry nothing uses", response_class=Response)
async def delete_registry(request: Request, who: Caller, id: RegistryId) -> None:  # noqa: A002
    await _registries(request).delete(who, id)


@router.get("/registries/{id}/info", summary="What a registry supports: filters, triggers, chunked copies")
async def registry_info(request: Request, who: Caller, id: RegistryId) -> dict[str, Any]:  # noqa: A002
    return info_resp(await _registries(request).info(who, id))


@router.get("/replication/adapters", summary="The registry types Portside can talk to")
async def list_adapters(request: Request, who: Caller) -> list[str]:
    return _registries(request).adapter_types(who)


@router.get("/replication/adapterinfos", summary="Each registry type's endpoint and credential patterns")
async def list_adapter_infos(request: Request, who: Caller) -> dict[str, Any]:
    return {name: provider_resp(p) for name, p in _registries(request).adapter_infos(who).items()}
