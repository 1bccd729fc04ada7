"""Pages: a repository (its description, artifacts and pull commands), its tags, and the
changes made to it from them (the description, deleting it).

Every path below a repository is routed here. A repository's name may hold slashes, so
its pages and actions sit after `/-/`, which no repository name can hold:

    /projects/{name}/repositories/{repository}                       the repository
    /projects/{name}/repositories/{repository}/-/tags                its tags
    /projects/{name}/repositories/{repository}/-/artifacts/{ref}     an artifact (artifacts.py)
    POST .../-/description, .../-/delete                             the repository's changes
    POST .../-/artifacts/{digest}/tags, /tags/{tag}/delete, /delete, /copy

Artifacts and tags are filtered, ordered and paged by the store in SQL, and each artifact
row reads only its first few tags, so a repository with 100,000 tags pages as fast as one
with ten. Descriptions are Markdown, rendered without HTML and without links to
`javascript:` or `data:` URLs.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.token import Token
from markdown_it.utils import EnvType, OptionsDict
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.errors import BadRequest, Forbidden
from portside.mgmt.artifacts import ArtifactView, ListedRepository, repository_path
from portside.mgmt.paging import Paging
from portside.ui.render import page, read_form, redirect
from portside.ui.views import artifacts, common, scans
from portside.ui.visitor import Visitor, check_csrf, management, signed_in_user, visitor

__all__ = ["routes", "render_description"]

ARTIFACTS_PER_PAGE = 20
TAGS_PER_PAGE = 50
TAGS_PER_ROW = 10  # an artifact row's tag chips; the tags view pages the rest
ARTIFACT_SORTS = (("-push_time", "Newest push"), ("push_time", "Oldest push"), ("-pull_time", "Last pull"))
TAG_SORTS = (("name", "Name"), ("-push_time", "Newest push"), ("push_time", "Oldest push"))
# What a filter may hold inside Harbor's `q`: the characters of tags and digests, none of
# its grammar (separators, brackets, escapes).
_FILTER_TEXT = re.compile(r"[^A-Za-z0-9_.:-]")
_DIGEST_TEXT = re.compile(r"(sha256|sha512):[0-9a-f]*|[0-9a-f]{12,}")


def _safe_links(self: RendererHTML, tokens: Sequence[Token], idx: int, options: OptionsDict, env: EnvType) -> str:
    tokens[idx].attrSet("rel", "nofollow noopener noreferrer")
    return self.renderToken(tokens, idx, options, env)


@functools.cache
def _markdown() -> MarkdownIt:
    # No raw HTML; markdown-it's validateLink already drops javascript:, vbscript:, file:
    # and data: links (data: images of common types excepted).
    md = MarkdownIt("commonmark", {"html": False})
    md.add_render_rule("link_open", _safe_links)
    return md


def render_description(text: str) -> Markup:
    return Markup(_markdown().render(text)) if text.strip() else Markup("")


def filter_condition(text: str) -> str | None:
    """The visitor's filter as Harbor's `q`: a digest (or a part of one) matches digests,
    anything else the names of tags."""
    clean = _FILTER_TEXT.sub("", text)[:128]
    if not clean:
        return None
    return f"digest=~{clean}" if _DIGEST_TEXT.fullmatch(clean) else f"tags=~{clean}"


def _choice(request: Request, key: str, allowed: Sequence[tuple[str, str]]) -> str | None:
    chosen = common.query_text(request, key)
    return chosen if chosen in {k for k, _ in allowed} else None


def _base(listed: ListedRepository, held: set[tuple[str, str]], view: str) -> dict[str, Any]:
    project, repository = listed.project, listed.repository
    url = common.repository_url(project.name, repository.name)
    return {
        "project": project,
        "project_url": common.project_url(project.name),
        "repository": repository,
        "relative": repository.name.removeprefix(project.name + "/"),
        "url": url,
        "views": [("artifacts", "Artifacts", url), ("tags", "Tags", f"{url}/-/tags")],
        "view": view,
        "may_untag": ("tag", "delete") in held,
        "may_update": ("repository", "update") in held,
        "may_delete": ("repository", "delete") in held,
    }


async def _opened(request: Request, who: Visitor, repository: str) -> tuple[ListedRepository, set[tuple[str, str]]]:
    services = management(request)
    name = request.path_params["name"]
    try:
        listed = await services.repositories.get(who.principal, name, repository)
    except Forbidden:
        # A limited guest may list the project's repositories (and pull) but not read one:
        # the page's heading is then its row of the list, as /repositories shows it.
        exact = f"name={repository_path(name, repository)}"
        found = await services.repositories.list(who.principal, name, exact, None, Paging(1, 1))
        if not found.items:
            raise
        listed = found.items[0]
    return listed, await common.permissions(request, who, f"/project/{listed.project_id}")


def _artifact_row(project: str, view: ArtifactView) -> dict[str, Any]:
    info = view.info
    return {
        "info": info,
        "short": artifacts.short_digest(info.digest),
        "url": artifacts.artifact_url(project, info.repository_name, info.digest),
        "kind": artifacts.kind_of(
            info.manifest_media_type, info.artifact_type, info.config_media_type, (t.name for t in info.tags)
        ),
        "more_tags": info.tag_count - len(info.tags),
        "children": artifacts.children(project, info),
    }


async def _repository_context(
    request: Request, who: Visitor, repository: str, errors: Mapping[str, str] | None = None
) -> dict[str, Any]:
    services = management(request)
    name = request.path_params["name"]
    listed, held = await _opened(request, who, repository)
    q = common.query_text(request, "q")
    sort = _choice(request, "sort", ARTIFACT_SORTS)
    paging = common.paging(request, ARTIFACTS_PER_PAGE)
    # Unfiltered, the list holds the repository's artifacts, which its heading has counted.
    listing = await services.artifacts.listing(
        who.principal,
        name,
        repository,
        filter_condition(q),
        sort,
        paging,
        tag_limit=TAGS_PER_ROW,
        artifact_count=listed.repository.artifact_count,
    )
    found, latest = listing.page, listing.newest
    full = listed.repository.name
    # Each scanned artifact's worst severity, for the whole page in one query.
    severity = await scans.badges(request, full, [v.info.digest for v in found.items])
    commands: dict[str, list[tuple[str, str]]] = {}
    if latest is not None:
        if latest.tags:
            commands["tag"] = artifacts.pull_commands(request, full, f":{latest.tags[0].name}")
        commands["digest"] = artifacts.pull_commands(request, full, f"@{latest.digest}")
    context = _base(listed, held, "artifacts")
    context.update(
        {
            "description": render_description(listed.repository.description),
            "description_text": listed.repository.description,
            "q": q,
            "sort": sort,
            "sorts": ARTIFACT_SORTS,
            "rows": [_artifact_row(listed.project.name, v) for v in found.items],
            "severity": severity,
            "total": found.total,
            "paging": paging,
            "commands": commands,
            "errors": dict(errors or {}),
        }
    )
    return context


async def repository_page(request: Request, repository: str) -> Response:
    who = await visitor(request)
    return await page(request, "repositories/repository.html", await _repository_context(request, who, repository))


async def tags_page(request: Request, repository: str) -> Response:
    who = await visitor(request)
    name = request.path_params["name"]
    listed, held = await _opened(request, who, repository)
    q = _FILTER_TEXT.sub("", common.query_text(request, "q"))[:128]
    sort = _choice(request, "sort", TAG_SORTS)
    paging = common.paging(request, TAGS_PER_PAGE)
    found = await management(request).artifacts.repository_tags(
        who.principal, name, repository, f"name=~{q}" if q else None, sort or "name", paging
    )
    full = listed.repository.name
    rows = [
        {
            "tag": t,
            "short": artifacts.short_digest(t.digest),
            "url": artifacts.artifact_url(listed.project.name, full, t.digest),
        }
        for t in found.items
    ]
    context = _base(listed, held, "tags")
    context.update({"q": q, "sort": sort, "sorts": TAG_SORTS, "rows": rows, "total": found.total, "paging": paging})
    return await page(request, "repositories/tags.html", context)


async def update_description(request: Request, repository: str) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    text = form.get("description", "")
    try:
        await management(request).repositories.update(who.principal, name, repository, text)
    except BadRequest as error:
        context = await _repository_context(request, who, repository, {"description": error.text})
        context.update({"description_text": text, "open_description": True})
        return await page(request, "repositories/repository.html", context, status=error.status)
    return redirect(common.repository_url(name, repository_path(name, repository)), notice="Description saved.")


async def delete_repository(request: Request, repository: str) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    await management(request).repositories.delete(who.principal, name, repository)
    return redirect(common.project_url(name, "repositories"), notice=f"Repository {name}/{repository} deleted.")


# --- routing -----------------------------------------------------------------------------

Page = Callable[..., Awaitable[Response]]


def _split(request: Request) -> tuple[str, list[str]]:
    """The repository's name (relative to the project) and the parts after its `/-/`."""
    repository, separator, rest = request.path_params["rest"].partition("/-/")
    if not repository or repository.endswith("/"):
        raise HTTPException(404)
    return repository, rest.split("/") if separator else []


def _pick(table: Mapping[tuple[str, ...], Page], parts: list[str]) -> tuple[Page, list[str]]:
    """The handler whose pattern (`*` is any one part) the parts match, and those parts."""
    for pattern, handler in table.items():
        if len(pattern) != len(parts):
            continue
        pairs = list(zip(pattern, parts, strict=True))
        if all((p == "*" and part != "") or p == part for p, part in pairs):
            return handler, [part for p, part in pairs if p == "*"]
    raise HTTPException(404)


_PAGES: Mapping[tuple[str, ...], Page] = {
    (): repository_page,
    ("tags",): tags_page,
    ("artifacts", "*"): artifacts.artifact_page,
    ("artifacts", "*", "vulnerabilities"): scans.vulnerabilities_page,
    ("artifacts", "*", "vulnerabilities.csv"): scans.vulnerabilities_csv,
    ("artifacts", "*", "sbom"): scans.sbom_page,
    ("artifacts", "*", "sbom", "*"): scans.sbom_download,
}
_CHANGES: Mapping[tuple[str, ...], Page] = {
    ("description",): update_description,
    ("delete",): delete_repository,
    ("artifacts", "*", "tags"): artifacts.add_tag,
    ("artifacts", "*", "tags", "*", "delete"): artifacts.delete_tag,
    ("artifacts", "*", "delete"): artifacts.delete_artifact,
    ("artifacts", "*", "copy"): artifacts.copy_artifact,
    ("artifacts", "*", "scan"): scans.scan_now,
}


async def _show(request: Request) -> Response:
    repository, parts = _split(request)
    handler, values = _pick(_PAGES, parts)
    return await handler(request, repository, *values)


async def _change(request: Request) -> Response:
    repository, parts = _split(request)
    handler, values = _pick(_CHANGES, parts)
    return await handler(request, repository, *values)


routes: list[BaseRoute] = [
    Route("/projects/{name}/repositories/{rest:path}", _show, methods=["GET", "HEAD"]),
    Route("/projects/{name}/repositories/{rest:path}", _change, methods=["POST"]),
]
