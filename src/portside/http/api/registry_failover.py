"""`/registries/{id}/failover_urls`: the other URLs of a registry the pull-through cache
tries in order when the registry's own does not answer (mgmt/registry_failover.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from portside.errors import NotFound
from portside.http.api.context import Caller, services
from portside.mgmt.limits import MAX_ID
from portside.mgmt.registry_failover import MAX_FAILOVER_URLS, FailoverService

__all__ = ["router"]

router = APIRouter(tags=["registry"])
RegistryId = Annotated[int, Path(ge=1, le=MAX_ID)]


class FailoverUrls(BaseModel):
    urls: list[Annotated[str, Field(max_length=1024)]] = Field(default_factory=list, max_length=MAX_FAILOVER_URLS)


def _failover(request: Request) -> FailoverService:
    found = services(request).failover
    if found is None:
        raise NotFound("registries are not available here")
    return found


@router.get("/registries/{id}/failover_urls", summary="A registry's failover URLs, in the order they are tried")
async def get_failover_urls(request: Request, who: Caller, id: RegistryId) -> FailoverUrls:
    return FailoverUrls(urls=await _failover(request).get(who, id))


@router.put("/registries/{id}/failover_urls", summary="Replace a registry's failover URLs")
async def put_failover_urls(request: Request, who: Caller, id: RegistryId, body: FailoverUrls) -> FailoverUrls:
    return FailoverUrls(urls=await _failover(request).set(who, id, body.urls))
