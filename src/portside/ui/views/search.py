"""Pages: the search (`/search?q=`), where the header's search box sends its text.

The results come from `SearchService.find` with the visitor's principal, in groups:
projects, repositories, tags, and for a digest the artifacts with it and the images that
use it as a layer or config. A private project the visitor may not see adds nothing, so
its names, tags and digests find what a text that matches nothing finds. With htmx the
page's own search field re-renders the `results` block as one types; without it, the
form is sent as usual.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.meta.search import TAGS_PER_MANIFEST
from portside.mgmt.search import GROUP_LIMIT, MIN_DIGEST_PREFIX, Results
from portside.ui.render import page
from portside.ui.views import common
from portside.ui.visitor import management, visitor

__all__ = ["routes", "artifact_url"]

# Digests are shown as their algorithm and this many hex digits; the page names them in full.
SHORT_DIGEST = 12


def artifact_url(project: str, repository: str, reference: str) -> str:
    return f"{common.repository_url(project, repository)}/-/artifacts/{quote(reference, safe=':')}"


def short_digest(digest: str) -> str:
    algorithm, _, digits = digest.partition(":")
    return f"{algorithm}:{digits[:SHORT_DIGEST]}"


def _tags(names: tuple[str, ...]) -> dict[str, Any]:
    return {"names": names[:TAGS_PER_MANIFEST], "more": len(names) > TAGS_PER_MANIFEST}


def _rows(results: Results) -> dict[str, list[dict[str, Any]]]:
    """What each group's table shows, with the URLs of its links."""
    return {
        "projects": [
            {"name": p.project.name, "url": common.project_url(p.project.name), "project": p.project}
            for p in results.projects.items
        ],
        "repositories": [
            {
                "name": r.repository.name,
                "url": common.repository_url(r.project.name, r.repository.name),
                "project": r.project,
                "repository": r.repository,
            }
            for r in results.repositories.items
        ],
        "tags": [
            {
                "repository": t.hit.repository,
                "repository_url": common.repository_url(t.project.name, t.hit.repository),
                "tag": t.hit.tag,
                "url": artifact_url(t.project.name, t.hit.repository, t.hit.tag),
                "digest": t.hit.digest,
                "short": short_digest(t.hit.digest),
                "push_time": t.hit.push_time,
            }
            for t in results.tags.items
        ],
        "artifacts": [
            {
                "repository": a.hit.repository,
                "repository_url": common.repository_url(a.project.name, a.hit.repository),
                "digest": a.hit.digest,
                "short": short_digest(a.hit.digest),
                "url": artifact_url(a.project.name, a.hit.repository, a.hit.digest),
                "kind": a.hit.artifact_type or a.hit.media_type,
                "tags": _tags(a.hit.tags),
                "push_time": a.hit.push_time,
            }
            for a in results.artifacts.items
        ],
        "blob_uses": [
            {
                "blob": b.hit.blob,
                "blob_short": short_digest(b.hit.blob),
                "role": b.hit.role,
                "repository": b.hit.repository,
                "repository_url": common.repository_url(b.project.name, b.hit.repository),
                "digest": b.hit.manifest,
                "short": short_digest(b.hit.manifest),
                "url": artifact_url(b.project.name, b.hit.repository, b.hit.manifest),
                "tags": _tags(b.hit.tags),
            }
            for b in results.blob_uses.items
        ],
    }


async def search(request: Request) -> Response:
    who = await visitor(request)
    q = common.query_text(request, "q")
    context: dict[str, Any] = {
        "q": q,
        "header_query": q,
        "results": None,
        "rows": {},
        "limit": GROUP_LIMIT,
        "min_prefix": MIN_DIGEST_PREFIX,
    }
    if q:
        results = await management(request).search.find(who.principal, q)
        context.update({"results": results, "rows": _rows(results)})
    return await page(request, "search/results.html", context)


routes: list[BaseRoute] = [Route("/search", search, methods=["GET", "HEAD"])]
