"""Pages: projects. The list (with the new-project form), and each project's tabs:
summary, repositories, members, logs and settings.

Every page asks the same services as /api/v2.0 with the visitor's principal; what they
refuse, the page refuses (a private project the visitor may not see is a missing one).
What a page offers to change follows the permissions the policy gives the visitor
(PermissionService); the services still decide when the form is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.auth.rbac import DEVELOPER, GUEST, LIMITED_GUEST, MAINTAINER, PROJECT_ADMIN, ROLE_NAMES
from portside.errors import BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed, RegistryError
from portside.meta.accounts import Project
from portside.ui.render import page, read_form, redirect
from portside.ui.views import common, proxy_cache
from portside.ui.views import trust as trust_editor
from portside.ui.visitor import Visitor, check_csrf, management, signed_in_user, visitor

__all__ = ["routes", "summary_context"]

GIB = 1024**3
ROLE_TITLES = {
    PROJECT_ADMIN: "Project admin",
    MAINTAINER: "Maintainer",
    DEVELOPER: "Developer",
    GUEST: "Guest",
    LIMITED_GUEST: "Limited guest",
}
ROLE_ORDER = (PROJECT_ADMIN, MAINTAINER, DEVELOPER, GUEST, LIMITED_GUEST)
# The orders the repository list offers, as Harbor's `sort` takes them.
REPOSITORY_SORTS = (("name", "Name"), ("-update_time", "Last push"), ("-pull_count", "Pulls"))
LOG_OPERATIONS = ("create", "delete", "pull", "update")
# The words of the `require_signature` metadata the settings offer (the service reads them).
SIGNATURE_KINDS = (
    ("cosign", "cosign (a signature or a sigstore bundle)"),
    ("notation", "Notation"),
    ("notary", "Docker Content Trust"),
)


async def _may_choose_limit(request: Request, who: Visitor) -> bool:
    return ("quota", "update") in await common.permissions(request, who, "/system")


def _gib(limit: int | None) -> str:
    if limit is None or limit < 0:
        return ""
    value = limit / GIB
    return str(int(value)) if value == int(value) else f"{value:g}"


def _parse_limit(text: str) -> int | None:
    """A storage limit in GiB as typed: empty → None (the default), -1 → unlimited."""
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise BadRequest(f"invalid storage limit {text[:40]!r}: a number of GiB, or -1 for no limit") from None
    if value == -1:
        return -1
    if not value > 0 or value != value or value == float("inf"):
        raise BadRequest(f"invalid storage limit {text[:40]!r}: a number of GiB above 0, or -1 for no limit")
    return max(int(value * GIB), 1)


# --- the project list --------------------------------------------------------------------


async def _list_context(request: Request, who: Visitor) -> dict[str, Any]:
    services = management(request)
    q = common.query_text(request, "q")
    paging = common.paging(request)
    found = await services.projects.list(
        who.principal, name=q or None, public=None, owner=None, q=None, paging=paging, sort=None
    )
    quotas = await services.quotas.of_projects(who.principal, [listed.project for listed in found.items])
    rows = [
        {
            "project": listed.project,
            "url": common.project_url(listed.project.name),
            "role": ROLE_TITLES.get(listed.role_id) if listed.role_id else None,
            "quota": quotas.get(listed.project.project_id),
        }
        for listed in found.items
    ]
    return {"q": q, "rows": rows, "total": found.total, "paging": paging}


async def _new_project_form(request: Request, who: Visitor) -> dict[str, Any]:
    return {
        "may_choose_limit": await _may_choose_limit(request, who) if who.signed_in else False,
        "registries": await proxy_cache.registry_choices(request, who) if who.signed_in else [],
    }


async def list_projects(request: Request) -> Response:
    who = await visitor(request)
    context = await _list_context(request, who)
    context.update(await _new_project_form(request, who))
    context.update({"errors": {}, "form": {}})
    return await page(request, "projects/list.html", context)


def _field_of(error: RegistryError) -> str:
    return "storage_limit" if "storage" in error.text else "name"


async def create_project(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = form.get("name", "").strip()
    public = form.get("public") == "on"
    try:
        limit = _parse_limit(form.get("storage_limit", ""))
        if not name:
            raise BadRequest("project_name is required")
        registry_id = proxy_cache.chosen_registry(form)
        project = await management(request).projects.create(
            who.principal, name, public, {}, limit, registry_id=registry_id
        )
    except (BadRequest, Conflict, Forbidden) as error:
        context = await _list_context(request, who)
        context.update(await _new_project_form(request, who))
        context.update(
            {
                "errors": {_field_of(error): error.text},
                "form": {
                    "name": name,
                    "public": public,
                    "storage_limit": form.get("storage_limit", ""),
                    "registry_id": form.get("registry_id", ""),
                },
                "open_form": True,
            }
        )
        return await page(request, "projects/list.html", context, status=error.status)
    return redirect(common.project_url(project.name), notice=f"Project {project.name} created.")


# --- one project -------------------------------------------------------------------------


def _base(request: Request, project: Project, tab: str) -> dict[str, Any]:
    return {
        "project": project,
        "tabs": common.project_tabs(project.name),
        "tab": tab,
        "project_url": common.project_url(project.name),
    }


def _push_commands(host: str, project: str) -> list[tuple[str, str]]:
    target = f"{host}/{project}/REPOSITORY:TAG"
    return [
        ("Docker", f"docker push {target}"),
        ("Podman", f"podman push {target}"),
        ("Skopeo", f"skopeo copy docker-archive:IMAGE.tar docker://{target}"),
        ("ORAS", f"oras push {target} FILE"),
    ]


async def summary_context(request: Request, who: Visitor, name: str) -> dict[str, Any]:
    """The summary tab's: the project in numbers, how to push, and the CVE export form for
    those the policy lets export (views/cve_exports.py takes it)."""
    services = management(request)
    summary = await services.projects.summary(who.principal, name)
    members: list[tuple[str, int]] | None = None
    if summary.members_by_role is not None:
        members = [(ROLE_TITLES[role], summary.members_by_role.get(role, 0)) for role in ROLE_ORDER]
    host = request.headers.get("host") or request.url.netloc
    context = _base(request, summary.project, "summary")
    may_export = services.cve_exports is not None and ("export-cve", "create") in await common.permissions(
        request, who, f"/project/{summary.project.project_id}"
    )
    context.update(
        {
            "members": members,
            "quota": summary.quota,
            "commands": _push_commands(host, summary.project.name),
            "may_export": may_export,
            "proxy_of": await proxy_cache.proxy_facts(request, who, summary.project),
            "export_form": {},
            "errors": {},
        }
    )
    return context


async def project_summary(request: Request) -> Response:
    who = await visitor(request)
    return await page(
        request, "projects/summary.html", await summary_context(request, who, request.path_params["name"])
    )


async def project_repositories(request: Request) -> Response:
    who = await visitor(request)
    name = request.path_params["name"]
    services = management(request)
    listed = await services.projects.get(who.principal, name)
    q = common.query_text(request, "q")
    sort = common.query_text(request, "sort") or None
    paging = common.paging(request)
    found = await services.repositories.list(who.principal, name, None, sort, paging, name_contains=q or None)
    rows = [
        {"repository": r.repository, "url": common.repository_url(listed.project.name, r.repository.name)}
        for r in found.items
    ]
    context = _base(request, listed.project, "repositories")
    context.update(
        {"q": q, "sort": sort, "sorts": REPOSITORY_SORTS, "rows": rows, "total": found.total, "paging": paging}
    )
    return await page(request, "projects/repositories.html", context)


# --- settings ----------------------------------------------------------------------------


async def _settings_context(
    request: Request, who: Visitor, name: str, typed: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The settings tab's; `typed`: what was typed into a trust form the service refused."""
    services = management(request)
    listed = await services.projects.get(who.principal, name)
    project = listed.project
    held = await common.permissions(request, who, f"/project/{project.project_id}")
    quota = await services.quotas.of_project(who.principal, project)
    context = _base(request, project, "settings")
    may_update = ("project", "update") in held
    context.update(
        {
            "may_update": may_update,
            "may_delete": ("project", "delete") in held,
            "may_set_limit": await _may_choose_limit(request, who),
            "quota": quota,
            "limit_gib": _gib(quota.storage_limit) if quota else "",
            "errors": {},
            "trust": await _trust_of(request, who, project, may_update, typed),
            "trust_action": common.project_url(project.name, "settings"),
            **await _scanner_choice(request, who, project.name),
        }
    )
    return context


async def _trust_of(
    request: Request, who: Visitor, project: Project, may_update: bool, typed: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The Signatures card's editor over the project's trust policy (views/trust.py)."""
    trust = management(request).trust
    document: Mapping[str, Any] = {}
    if trust is not None:
        _, stored = await trust.of_project(who.principal, project.name)
        document = stored.document
    editor = trust_editor.editor(document, system=False, may_update=may_update and trust is not None, typed=typed)
    named = {word.strip() for word in project.metadata.get("require_signature", "").lower().split(",")}
    everything = "any" in named
    editor["signature_kinds"] = [(word, title, everything or word in named) for word, title in SIGNATURE_KINDS]
    # The signers this registry configures, its default first; a project's pick, if any.
    editor["signers"] = list(trust.signers if trust is not None else ("portside",))
    editor["signer"] = project.metadata.get("sign_on_push_signer", "")
    return editor


async def _scanner_choice(request: Request, who: Visitor, name: str) -> dict[str, Any]:
    """The project's scanner and, for the settings form, the enabled ones it may choose."""
    scans = management(request).scans
    if scans is None or scans.registry is None:
        return {"scanner": None, "scanners": []}
    chosen = await scans.project_scanner(who.principal, name)
    if not who.principal.authenticated:  # a public project's visitor: what it uses, no more
        return {"scanner": chosen, "scanners": [chosen]}
    listed = await scans.registry.list(who.principal, ping=False)
    offered = [s for s in listed if not s.disabled or s.uuid == chosen.uuid]
    return {"scanner": chosen, "scanners": offered}


async def project_settings(request: Request) -> Response:
    who = await visitor(request)
    return await page(
        request, "projects/settings.html", await _settings_context(request, who, request.path_params["name"])
    )


async def update_settings(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    services = management(request)
    project = (await services.projects.get(who.principal, name)).project
    try:
        if form.get("part") == "scanner":
            scans = services.scans
            if scans is None:
                raise BadRequest("this server does not scan")
            await scans.set_project_scanner(who.principal, project.name, form.get("scanner", ""))
            notice = "Scanner saved."
        elif form.get("part", "") in trust_editor.FIELDS:
            notice = await _update_trust(request, who, project, form)
        elif form.get("part") == "quota":
            limit = _parse_limit(form.get("storage_limit", ""))
            await services.quotas.update(who.principal, project.project_id, {"storage": -1 if limit is None else limit})
            notice = "Storage limit saved."
        else:
            await services.projects.update(who.principal, project.name, form.get("public") == "on", {})
            notice = "Settings saved."
    except (BadRequest, NotFound) as error:
        part = form.get("part", "")
        typed = trust_editor.typed_in(form) if part in trust_editor.FIELDS else None
        context = await _settings_context(request, who, name, typed)
        field = {"quota": "storage_limit", "scanner": "scanner", **trust_editor.FIELDS}.get(part, "public")
        context["errors"] = {field: error.text}
        return await page(request, "projects/settings.html", context, status=error.status)
    return redirect(common.project_url(project.name, "settings"), notice=notice)


async def _update_trust(request: Request, who: Visitor, project: Project, form: ImmutableMultiDict[str, str]) -> str:
    """One form of the Signatures card: its change to the trust policy, which the service
    checks; the switches' form also sets the project's signature rules, first (the one part
    a person types wrong, refused before anything is written)."""
    services = management(request)
    trust = services.trust
    if trust is None:
        raise BadRequest("this server keeps no trust policies")
    _, stored = await trust.of_project(who.principal, project.name)
    change = trust_editor.edited(stored.document, form, system=False)
    if form.get("part") == "trust":
        metadata = {
            "enable_content_trust_cosign": "true" if form.get("enable_content_trust_cosign") == "on" else "false",
            "enable_content_trust": "true" if form.get("enable_content_trust") == "on" else "false",
            "sign_on_push": "true" if form.get("sign_on_push") == "on" else "false",
            "require_signature": ",".join(form.getlist("require_signature")),
        }
        if "sign_on_push_signer" in form:
            metadata["sign_on_push_signer"] = form.get("sign_on_push_signer", "")
        await services.projects.update(who.principal, project.name, None, metadata)
    await trust.set_project(who.principal, project.name, change.document)
    return change.notice


async def delete_project(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    try:
        await management(request).projects.delete(who.principal, name)
    except PreconditionFailed as error:
        context = await _settings_context(request, who, name)
        context["errors"] = {"delete": error.text}
        return await page(request, "projects/settings.html", context, status=error.status)
    return redirect("/projects", notice=f"Project {name} deleted.")


# --- members -----------------------------------------------------------------------------


async def _members_context(request: Request, who: Visitor, name: str) -> dict[str, Any]:
    services = management(request)
    q = common.query_text(request, "q")
    paging = common.paging(request, 25)
    found = await services.members.list(who.principal, name, q or None, paging)
    project = (await services.projects.get(who.principal, name)).project
    held = await common.permissions(request, who, f"/project/{project.project_id}")
    context = _base(request, project, "members")
    context.update(
        {
            "q": q,
            "rows": found.items,
            "total": found.total,
            "paging": paging,
            "roles": [(role, ROLE_TITLES[role]) for role in ROLE_ORDER],
            "role_titles": ROLE_TITLES,
            "role_names": ROLE_NAMES,
            "may_add": ("member", "create") in held,
            "may_update": ("member", "update") in held,
            "may_remove": ("member", "delete") in held,
            "me": who.principal.user_id,
            "errors": {},
            "form": {},
        }
    )
    return context


async def project_members(request: Request) -> Response:
    who = await visitor(request)
    return await page(
        request, "projects/members.html", await _members_context(request, who, request.path_params["name"])
    )


def _role(form: Mapping[str, str]) -> int:
    text = form.get("role_id", "")
    if not text.isascii() or not text.isdigit() or len(text) > 3:
        raise BadRequest("choose a role")
    return int(text)


async def add_member(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    username = form.get("username", "").strip()
    try:
        if not username:
            raise BadRequest("the username is required")
        await management(request).members.add(who.principal, name, None, username, _role(form))
    except (BadRequest, Conflict, NotFound) as error:
        if isinstance(error, NotFound) and not error.text.startswith("user "):
            raise
        context = await _members_context(request, who, name)
        context.update({"errors": {"username": error.text}, "form": {"username": username}})
        return await page(request, "projects/members.html", context, status=error.status)
    return redirect(common.project_url(name, "members"), notice=f"{username} added.")


def _member_id(request: Request) -> int:
    text = request.path_params["member_id"]
    if not text.isdigit() or len(text) > 12:
        raise NotFound(f"member {text[:40]} not found")
    return int(text)


async def change_member(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    await management(request).members.update(who.principal, name, _member_id(request), _role(form))
    return redirect(common.project_url(name, "members"), notice="Role changed.")


async def remove_member(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    await management(request).members.remove(who.principal, name, _member_id(request))
    return redirect(common.project_url(name, "members"), notice="Member removed.")


# --- logs --------------------------------------------------------------------------------


def _q_value(text: str) -> str:
    """A filter value inside Harbor's `q`: no separators or brackets of its grammar."""
    return "".join(c for c in text if c not in ",[]{}()~=\\")[:100]


async def project_logs(request: Request) -> Response:
    who = await visitor(request)
    name = request.path_params["name"]
    services = management(request)
    operation = common.query_text(request, "operation")
    user = _q_value(common.query_text(request, "username"))
    conditions = []
    if operation in LOG_OPERATIONS:
        conditions.append(f"operation={operation}")
    if user:
        conditions.append(f"username=~{user}")
    paging = common.paging(request, 25)
    found = await services.audit.project_logs(who.principal, name, ",".join(conditions) or None, None, paging)
    project = (await services.projects.get(who.principal, name)).project
    context = _base(request, project, "logs")
    context.update(
        {
            "rows": found.items,
            "total": found.total,
            "paging": paging,
            "operation": operation if operation in LOG_OPERATIONS else "",
            "operations": LOG_OPERATIONS,
            "username": user,
        }
    )
    return await page(request, "projects/logs.html", context)


routes: list[BaseRoute] = [
    Route("/projects", list_projects, methods=["GET", "HEAD"]),
    Route("/projects", create_project, methods=["POST"]),
    Route("/projects/{name}", project_summary, methods=["GET", "HEAD"]),
    Route("/projects/{name}/repositories", project_repositories, methods=["GET", "HEAD"]),
    Route("/projects/{name}/settings", project_settings, methods=["GET", "HEAD"]),
    Route("/projects/{name}/settings", update_settings, methods=["POST"]),
    Route("/projects/{name}/delete", delete_project, methods=["POST"]),
    Route("/projects/{name}/members", project_members, methods=["GET", "HEAD"]),
    Route("/projects/{name}/members", add_member, methods=["POST"]),
    Route("/projects/{name}/members/{member_id}/role", change_member, methods=["POST"]),
    Route("/projects/{name}/members/{member_id}/remove", remove_member, methods=["POST"]),
    Route("/projects/{name}/logs", project_logs, methods=["GET", "HEAD"]),
]
