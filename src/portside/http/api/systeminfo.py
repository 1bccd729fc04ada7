"""What Harbor's tools ask first: /health, /ping, /systeminfo (and its volumes),
/statistics and /search."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from portside.http.api.context import Caller, iso, services, without_none
from portside.http.api.projects import project_resp
from portside.http.health import run_checks
from portside.mgmt.artifacts import ListedRepository

__all__ = ["router"]

router = APIRouter()


@router.get("/health", tags=["health"], summary="The health of each component (always 200)")
async def health(request: Request) -> dict[str, Any]:
    """Harbor's OverallHealthStatus, from the same checks as /readyz."""
    results = await run_checks(services(request).readiness_checks)
    components = [
        without_none(
            {
                "name": name,
                "status": "healthy" if result.ok else "unhealthy",
                "error": None if result.ok else result.note,
            }
        )
        for name, result in sorted(results.items())
    ]
    advisory = services(request).advisory_components
    healthy = all(result.ok for name, result in results.items() if name not in advisory)
    return {"status": "healthy" if healthy else "unhealthy", "components": components}


@router.get("/ping", tags=["ping"], summary="Pong, when the API answers", response_class=PlainTextResponse)
async def ping() -> PlainTextResponse:
    return PlainTextResponse("Pong")


@router.get("/systeminfo", tags=["systeminfo"], summary="How to sign in; more when signed in")
async def system_info(request: Request, who: Caller) -> dict[str, Any]:
    info = asdict(services(request).systeminfo.info(who))
    info["current_time"] = iso(info["current_time"])
    return without_none(info)


@router.get("/systeminfo/volumes", tags=["systeminfo"], summary="The blob store's disk (system administrators)")
async def volumes(request: Request, who: Caller) -> dict[str, Any]:
    found = await services(request).systeminfo.volumes(who)
    return {"storage": [{"total": v.total, "free": v.free} for v in found]}


@router.get("/statistics", tags=["statistic"], summary="Counts of projects and repositories the caller may see")
async def statistics(request: Request, who: Caller) -> dict[str, Any]:
    return without_none(asdict(await services(request).statistics.of(who)))


def _found_repository(listed: ListedRepository) -> dict[str, Any]:
    return {
        "project_id": listed.project.project_id,
        "project_name": listed.project.name,
        "project_public": listed.project.public,
        "repository_name": listed.repository.name,
        "pull_count": listed.repository.pull_count,
        "artifact_count": listed.repository.artifact_count,
    }


@router.get("/search", tags=["search"], summary="Projects and repositories whose names contain q")
async def search(request: Request, who: Caller, q: str = "") -> dict[str, Any]:
    found = await services(request).search.search(who, q)
    return {
        "project": [project_resp(p) for p in found.projects],
        "repository": [_found_repository(r) for r in found.repositories],
    }
