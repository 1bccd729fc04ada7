"""/repositories and /projects/{project_name}/repositories: Harbor's repositories.

A nested repository name may arrive URL-encoded twice (a%252Fb), as Harbor's clients send
it, or once (a%2Fb, decoded to a/b by the server); both name the same repository.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from portside.http.api.context import Caller, Pages, iso, paged, services, without_none
from portside.mgmt import limits
from portside.mgmt.artifacts import ListedRepository

__all__ = ["router"]

router = APIRouter(tags=["repository"])
_ONE = "/projects/{project_name}/repositories/{repository_name:path}"


class RepositoryReq(BaseModel):
    description: str = Field("", max_length=limits.REPOSITORY_DESCRIPTION)


def repository_resp(listed: ListedRepository) -> dict[str, Any]:
    r = listed.repository
    return without_none(
        {
            "id": r.id,
            "project_id": listed.project_id,
            "name": r.name,
            "description": r.description,
            "artifact_count": r.artifact_count,
            "pull_count": r.pull_count,
            "creation_time": iso(r.creation_time),
            "update_time": iso(r.update_time),
        }
    )


@router.get("/repositories", summary="Repositories of every project the caller may see")
async def list_all_repositories(
    request: Request, response: Response, who: Caller, paging: Pages, q: str | None = None, sort: str | None = None
) -> list[dict[str, Any]]:
    page = await services(request).repositories.list(who, None, q, sort, paging)
    paged(request, response, page, paging)
    return [repository_resp(r) for r in page.items]


@router.get("/projects/{project_name}/repositories", summary="Repositories of a project")
async def list_repositories(
    request: Request,
    response: Response,
    who: Caller,
    paging: Pages,
    project_name: str,
    q: str | None = None,
    sort: str | None = None,
) -> list[dict[str, Any]]:
    page = await services(request).repositories.list(who, project_name, q, sort, paging)
    paged(request, response, page, paging)
    return [repository_resp(r) for r in page.items]


@router.get(_ONE, summary="A repository")
async def get_repository(request: Request, who: Caller, project_name: str, repository_name: str) -> dict[str, Any]:
    return repository_resp(await services(request).repositories.get(who, project_name, repository_name))


@router.put(_ONE, summary="Update a repository's description", response_class=Response)
async def update_repository(
    request: Request, who: Caller, project_name: str, repository_name: str, body: RepositoryReq
) -> None:
    await services(request).repositories.update(who, project_name, repository_name, body.description)


@router.delete(_ONE, summary="Delete a repository with all its artifacts and tags", response_class=Response)
async def delete_repository(request: Request, who: Caller, project_name: str, repository_name: str) -> None:
    await services(request).repositories.delete(who, project_name, repository_name)
