"""Pages: administration. Users, system robots, quotas, garbage collection, the scrub,
vulnerability scanning (the database's status and scan-all), the scanners
(views/admin_scanners.py), the security hub's findings (views/admin_security.py), the
registries (views/admin_registries.py), replication (views/admin_replication.py), the
system's trust policy (views/admin_trust.py) and the audit log, under `/admin`, with a left navigation across them.

Each section is what one system permission lists (`user`, `robot`, `quota`,
`garbage-collection`, `scrub`, `scan-all`, `scanner`, `security-hub`, `registry`,
`audit-log`; the trust policy, one document, opens with `system-trust` `read`): a visitor
without it is refused with the words the services use (403; one not signed in is sent to
sign in), and the navigation shows only the sections the visitor holds. The services still
decide every change, as for /api/v2.0.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from portside.auth.authn import ROBOT_PREFIX
from portside.errors import BadRequest, Conflict, Forbidden, NotFound, PreconditionFailed, RegistryError
from portside.meta.accounts import Robot, RobotPermission
from portside.meta.upkeep import ACTIVE_STATUSES, JobRecord
from portside.mgmt.robots import RobotSpec
from portside.mgmt.system import MANUAL, SystemJobService
from portside.mgmt.users import NewUser
from portside.ui.render import human_size, page, read_form, redirect
from portside.ui.views import common
from portside.ui.views import scans as scans_view
from portside.ui.views.robots import (
    DEFAULT_ACCESS,
    DEFAULT_DAYS,
    PROJECT_MATRIX,
    SYSTEM_MATRIX,
    chosen_access,
    duration_days,
    form_errors,
    q_text,
    robot_id,
    robot_row,
    same_spec,
    secret_context,
    ticked,
)
from portside.ui.visitor import Visitor, check_csrf, management, signed_in_user

__all__ = ["routes"]

GIB = 1024**3
USERS = "/admin/users"
ROBOTS = "/admin/robots"
QUOTAS = "/admin/quotas"
AUDIT = "/admin/audit-logs"
# (section, title, URL, the system resource whose `list` opens it, or _OPENED_BY's action)
_SECTIONS = (
    ("users", "Users", USERS, "user"),
    ("robots", "Robot accounts", ROBOTS, "robot"),
    ("quotas", "Quotas", QUOTAS, "quota"),
    ("gc", "Garbage collection", "/admin/gc", "garbage-collection"),
    ("scrub", "Scrub", "/admin/scrub", "scrub"),
    ("scanning", "Vulnerability scanning", "/admin/scanning", "scan-all"),
    ("scanners", "Scanners", "/admin/scanners", "scanner"),
    ("security", "Security", "/admin/security", "security-hub"),
    ("registries", "Registries", "/admin/registries", "registry"),
    ("replication", "Replication", "/admin/replication", "replication-policy"),
    ("preheat", "P2P preheat", "/admin/preheat", "preheat-instance"),
    ("trust", "Trust policy", "/admin/trust", "system-trust"),
    ("audit", "Audit log", AUDIT, "audit-log"),
)
_RESOURCES = {section: resource for section, _, _, resource in _SECTIONS}
# A section opens to those who may `list` its resource; the system's trust policy is one
# document, which they `read` (and, to be offered its editor, `update`).
_OPENED_BY = {"trust": "read"}
QUOTA_SORTS = (("-used.storage", "Most used"), ("used.storage", "Least used"), ("-hard.storage", "Largest limit"))
AUDIT_OPERATIONS = ("create", "update", "delete", "pull", "login")
SCHEDULE_TYPES = ("None", "Hourly", "Daily", "Weekly", "Custom")
# Where each section's service is in ManagementServices, when the server may not offer it.
_OPTIONAL = {
    "gc": "gc",
    "scrub": "scrub",
    "scanning": "scan_all",
    "scanners": "scans",
    "security": "scans",
    "registries": "registries",
    "replication": "replication",
    "preheat": "preheat",
    "trust": "trust",
}
# Permissions the policy's system table does not list, which system administrators hold
# as they hold every permission (the services ask the guard, which says so).
_ADMINISTRATORS_ALSO = (
    {("scan-all", action) for action in ("read", "list", "create", "update", "stop")}
    | {("scanner", action) for action in ("read", "list", "create", "update", "delete")}
    | {("security-hub", action) for action in ("read", "list")}
)


async def administration(request: Request, section: str) -> tuple[Visitor, dict[str, Any]]:
    """The visitor, who must hold the section's system permission, and the navigation."""
    who = await signed_in_user(request)
    held = await common.permissions(request, who, "/system")
    if who.sysadmin:
        held |= _ADMINISTRATORS_ALSO
    resource, action = _RESOURCES[section], _OPENED_BY.get(section, "list")
    if (resource, action) not in held:
        raise Forbidden(f"{who.principal.name} may not {action} {resource}")
    services = management(request)
    absent = {key for key, service in _OPTIONAL.items() if getattr(services, service) is None}
    sections = [
        (key, title, url)
        for key, title, url, r in _SECTIONS
        if (r, _OPENED_BY.get(key, "list")) in held and key not in absent
    ]
    return who, {"admin_sections": sections, "section": section}


async def landing(request: Request) -> Response:
    return RedirectResponse(USERS, status_code=303)


def _number(request: Request, key: str, noun: str) -> int:
    text = request.path_params[key]
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise NotFound(f"{noun} {text[:40]} not found")
    return int(text)


# --- users -------------------------------------------------------------------------------


async def _users_context(request: Request, who: Visitor, nav: dict[str, Any]) -> dict[str, Any]:
    q = common.query_text(request, "q")
    paging = common.paging(request, 25)
    cleaned = q_text(q)
    found = await management(request).users.list(
        who.principal, f"username=~{cleaned}" if cleaned else None, "username", paging
    )
    return {**nav, "q": q, "rows": found.items, "total": found.total, "paging": paging, "errors": {}, "form": {}}


async def users(request: Request) -> Response:
    who, nav = await administration(request, "users")
    return await page(request, "admin/users.html", await _users_context(request, who, nav))


def _user_field(error: RegistryError) -> str:
    text = error.text
    if text.startswith(("invalid username", "username")):
        return "username"
    for field in ("email", "realname"):
        if field in text:
            return field
    return "password"


async def create_user(request: Request) -> Response:
    who, nav = await administration(request, "users")
    form = await read_form(request)
    check_csrf(request, who, form)
    new = NewUser(
        username=form.get("username", "").strip(),
        password=form.get("password", ""),
        email=form.get("email", "").strip() or None,
        realname=form.get("realname", "").strip(),
    )
    try:
        if new.password != form.get("repeat_password", ""):
            raise BadRequest("the two passwords differ")
        user = await management(request).users.create(who.principal, new, sysadmin=form.get("sysadmin") == "on")
    except (BadRequest, Conflict) as error:
        context = await _users_context(request, who, nav)
        context.update(
            {
                "errors": {_user_field(error): error.text},
                "form": {"username": new.username, "email": new.email or "", "realname": new.realname},
                "open_form": True,
            }
        )
        return await page(request, "admin/users.html", context, status=error.status)
    return redirect(f"{USERS}/{user.user_id}", notice=f"User {user.username} created.")


async def _user_context(request: Request, who: Visitor, nav: dict[str, Any]) -> dict[str, Any]:
    user = await management(request).users.get(who.principal, _number(request, "user_id", "user"))
    return {**nav, "user": user, "me": who.principal.user_id == user.user_id, "errors": {}}


async def user(request: Request) -> Response:
    who, nav = await administration(request, "users")
    return await page(request, "admin/user.html", await _user_context(request, who, nav))


async def set_admin(request: Request) -> Response:
    who, _ = await administration(request, "users")
    form = await read_form(request)
    check_csrf(request, who, form)
    services = management(request)
    user_id = _number(request, "user_id", "user")
    flag = form.get("sysadmin") == "true"
    await services.users.set_sysadmin(who.principal, user_id, flag)
    name = (await services.users.get(who.principal, user_id)).username
    notice = f"{name} is now an administrator." if flag else f"{name} is no longer an administrator."
    return redirect(f"{USERS}/{user_id}", notice=notice)


async def reset_password(request: Request) -> Response:
    who, nav = await administration(request, "users")
    form = await read_form(request)
    check_csrf(request, who, form)
    services = management(request)
    user_id = _number(request, "user_id", "user")
    new = form.get("new_password", "")
    try:
        if new != form.get("repeat_password", ""):
            raise BadRequest("the two passwords differ")
        await services.users.change_password(who.principal, user_id, None, new)
    except BadRequest as error:
        context = await _user_context(request, who, nav)
        context["errors"] = {"new_password": error.text}
        return await page(request, "admin/user.html", context, status=error.status)
    name = (await services.users.get(who.principal, user_id)).username
    return redirect(f"{USERS}/{user_id}", notice=f"Password of {name} reset; their web sessions were ended.")


async def delete_user(request: Request) -> Response:
    who, nav = await administration(request, "users")
    form = await read_form(request)
    check_csrf(request, who, form)
    services = management(request)
    user_id = _number(request, "user_id", "user")
    name = (await services.users.get(who.principal, user_id)).username
    try:
        await services.users.delete(who.principal, user_id)
    except PreconditionFailed as error:
        context = await _user_context(request, who, nav)
        context["errors"] = {"delete": error.text}
        return await page(request, "admin/user.html", context, status=error.status)
    return redirect(USERS, notice=f"User {name} deleted.")


# --- system robots -----------------------------------------------------------------------


async def _robots_context(request: Request, who: Visitor, nav: dict[str, Any]) -> dict[str, Any]:
    q = common.query_text(request, "q")
    paging = common.paging(request, 25)
    conditions = ["Level=system"]
    if cleaned := q_text(q):
        conditions.append(f"Name=~{cleaned}")
    found = await management(request).robots.list(who.principal, ",".join(conditions), paging)
    held = await common.permissions(request, who, "/system")
    return {
        **nav,
        "q": q,
        "rows": [robot_row(r) for r in found.items],
        "total": found.total,
        "paging": paging,
        "may_create": ("robot", "create") in held,
        "may_update": ("robot", "update") in held,
        "may_delete": ("robot", "delete") in held,
        # A robot for every project (or several) needs its creator to hold each permission
        # system-wide or in each of them: a system administrator does.
        "matrix": replace(PROJECT_MATRIX, legend="Permissions in those projects").offered(None if who.sysadmin else ()),
        "system_matrix": SYSTEM_MATRIX.offered(held),
        "ticked": DEFAULT_ACCESS,
        "system_ticked": set(),
        "form": {"duration": DEFAULT_DAYS, "scope": "all", "projects": ""},
        "errors": {},
        "prefix": ROBOT_PREFIX,
    }


async def robots(request: Request) -> Response:
    who, nav = await administration(request, "robots")
    return await page(request, "admin/robots.html", await _robots_context(request, who, nav))


def _project_names(text: str) -> list[str]:
    names = [n for n in text.replace(",", " ").split() if n]
    return list(dict.fromkeys(names))


def _projects_access(form: Mapping[str, str], access: tuple[tuple[str, str], ...]) -> list[RobotPermission]:
    """A system robot's project permissions: `access` in every project, or in those named."""
    if not access:
        return []
    if form.get("scope") != "some":
        return [RobotPermission("project", "*", access)]
    names = _project_names(form.get("projects", ""))
    if not names:
        raise BadRequest("name the projects this robot may work in, or choose all projects")
    return [RobotPermission("project", name, access) for name in names]


async def create_robot(request: Request) -> Response:
    who, nav = await administration(request, "robots")
    form = await read_form(request)
    check_csrf(request, who, form)
    name = form.get("name", "").strip()
    description = form.get("description", "").strip()
    try:
        access = chosen_access(form, PROJECT_MATRIX)
        system = chosen_access(form, SYSTEM_MATRIX)
        duration = duration_days(form.get("duration", ""))
        permissions = _projects_access(form, access)
        if system:
            permissions.append(RobotPermission("system", "/", system))
        if not permissions:
            raise BadRequest("choose at least one permission")
        spec = RobotSpec(name, "system", tuple(permissions), description, duration)
        created = await management(request).robots.create(who.principal, spec)
    except (BadRequest, Conflict, NotFound) as error:
        if isinstance(error, NotFound) and not error.text.startswith("project "):
            raise
        context = await _robots_context(request, who, nav)
        context.update(
            {
                "errors": form_errors(error),
                "form": {
                    "name": name,
                    "description": description,
                    "duration": form.get("duration", ""),
                    "scope": "some" if form.get("scope") == "some" else "all",
                    "projects": form.get("projects", ""),
                },
                "ticked": ticked(form, PROJECT_MATRIX),
                "system_ticked": ticked(form, SYSTEM_MATRIX),
                "open_form": True,
            }
        )
        return await page(request, "admin/robots.html", context, status=error.status)
    context = {**nav, **secret_context(request, created.robot, created.secret, created=True, back_url=ROBOTS)}
    return await page(request, "admin/robot_secret.html", context)


async def _system_robot(request: Request, who: Visitor) -> Robot:
    """The robot of the URL, which must be a system robot (a project's has its own page)."""
    number = robot_id(request)
    robot = await management(request).robots.get(who.principal, number)
    if robot.level != "system":
        raise NotFound(f"robot {number} not found")
    return robot


async def refresh_robot(request: Request) -> Response:
    who, nav = await administration(request, "robots")
    form = await read_form(request)
    check_csrf(request, who, form)
    robot = await _system_robot(request, who)
    secret = await management(request).robots.refresh_secret(who.principal, robot.id, None)
    context = {**nav, **secret_context(request, robot, secret, created=False, back_url=ROBOTS)}
    return await page(request, "admin/robot_secret.html", context)


async def _set_robot_disabled(request: Request, disable: bool) -> Response:
    who, _ = await administration(request, "robots")
    form = await read_form(request)
    check_csrf(request, who, form)
    robot = await _system_robot(request, who)
    await management(request).robots.update(who.principal, robot.id, same_spec(robot, disable=disable))
    return redirect(ROBOTS, notice=f"{robot.name} {'disabled' if disable else 'enabled'}.")


async def disable_robot(request: Request) -> Response:
    return await _set_robot_disabled(request, True)


async def enable_robot(request: Request) -> Response:
    return await _set_robot_disabled(request, False)


async def delete_robot(request: Request) -> Response:
    who, _ = await administration(request, "robots")
    form = await read_form(request)
    check_csrf(request, who, form)
    robot = await _system_robot(request, who)
    await management(request).robots.delete(who.principal, robot.id)
    return redirect(ROBOTS, notice=f"{robot.name} deleted.")


# --- quotas ------------------------------------------------------------------------------


def _gib(limit: int) -> str:
    if limit < 0:
        return "-1"
    value = limit / GIB
    return str(int(value)) if value == int(value) else f"{value:g}"


def _limit_bytes(text: str) -> int:
    """A limit in GiB as typed: -1 (or nothing) for no limit, else a number above 0."""
    text = text.strip()
    if not text or text == "-1":
        return -1
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value < float("inf"):
        raise BadRequest(f"invalid storage limit {text[:40]!r}: a number of GiB above 0, or -1 for no limit")
    return max(int(value * GIB), 1)


async def _quotas_context(request: Request, who: Visitor, nav: dict[str, Any]) -> dict[str, Any]:
    sort = common.query_text(request, "sort")
    sort = sort if sort in dict(QUOTA_SORTS) else ""
    paging = common.paging(request, 25)
    found = await management(request).quotas.list(who.principal, None, None, sort or None, paging)
    rows = [
        {"quota": q, "url": common.project_url(q.project_name), "limit_gib": _gib(q.storage_limit)} for q in found.items
    ]
    return {
        **nav,
        "rows": rows,
        "total": found.total,
        "paging": paging,
        "sort": sort,
        "sorts": QUOTA_SORTS,
        "errors": {},
    }


async def quotas(request: Request) -> Response:
    who, nav = await administration(request, "quotas")
    return await page(request, "admin/quotas.html", await _quotas_context(request, who, nav))


async def update_quota(request: Request) -> Response:
    who, nav = await administration(request, "quotas")
    form = await read_form(request)
    check_csrf(request, who, form)
    quota_id = _number(request, "quota_id", "quota")
    try:
        limit = _limit_bytes(form.get("storage_limit", ""))
        quota = await management(request).quotas.update(who.principal, quota_id, {"storage": limit})
    except BadRequest as error:
        context = await _quotas_context(request, who, nav)
        context["errors"] = {quota_id: error.text}
        return await page(request, "admin/quotas.html", context, status=error.status)
    back = QUOTAS
    sort = form.get("sort", "")
    if sort in dict(QUOTA_SORTS):
        back = f"{QUOTAS}?sort={sort}"
    return redirect(back, notice=f"Storage limit of {quota.project_name} saved.")


# --- garbage collection and the scrub ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobKind:
    section: str  # also the URL's segment
    title: str
    noun: str  # "garbage collection", in a sentence
    options: tuple[tuple[str, str, str], ...]  # (boolean parameter, what it does, in a word or two)
    service: str  # the service's name in ManagementServices
    run_label: str  # the button that runs it now


_KINDS = {
    "gc": JobKind(
        "gc",
        "Garbage collection",
        "garbage collection",
        (
            ("dry_run", "Dry run: log what would be deleted, delete nothing", "dry run"),
            ("delete_untagged", "Delete untagged artifacts too", "untagged deleted"),
        ),
        "gc",
        "Run garbage collection now",
    ),
    "scrub": JobKind(
        "scrub",
        "Scrub",
        "the scrub",
        (("quarantine", "Quarantine corrupted blobs (they are no longer served)", "quarantine"),),
        "scrub",
        "Run the scrub now",
    ),
    "scanning": JobKind("scanning", "Vulnerability scanning", "scan-all", (), "scan_all", "Scan all now"),
}


def _job_service(request: Request, kind: JobKind) -> SystemJobService:
    found: SystemJobService | None = getattr(management(request), kind.service)
    if found is None:
        raise NotFound(f"{kind.section} is not available on this server")
    return found


def _json_object(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _job_row(kind: JobKind, job: JobRecord) -> dict[str, Any]:
    parameters = _json_object(job.parameters)
    return {
        "job": job,
        "url": f"/admin/{kind.section}/{job.id}",
        "options": [short for name, _, short in kind.options if name != "dry_run" and parameters.get(name) is True],
        "dry_run": parameters.get("dry_run") is True,
        "active": job.status in ACTIVE_STATUSES,
    }


async def _jobs_context(request: Request, who: Visitor, nav: dict[str, Any], kind: JobKind) -> dict[str, Any]:
    service = _job_service(request, kind)
    paging = common.paging(request, 25)
    found = await service.history(who.principal, None, None, paging)
    schedule = await service.schedule(who.principal)
    rows = [_job_row(kind, job) for job in found.items]
    scheduled = _json_object(schedule.parameters) if schedule else {}
    return {
        **nav,
        "kind": kind,
        "base_url": f"/admin/{kind.section}",
        "rows": rows,
        "total": found.total,
        "paging": paging,
        "polling": any(row["active"] for row in rows),
        "schedule": schedule,
        "schedule_types": SCHEDULE_TYPES,
        "form": {
            "type": schedule.type if schedule else "None",
            "cron": schedule.cron if schedule and schedule.type == "Custom" else "",
            "options": {name for name, _, _ in kind.options if scheduled.get(name) is True},
        },
        "errors": {},
        **(await _database(request, who) if kind.section == "scanning" else {}),
    }


async def _database(request: Request, who: Visitor) -> dict[str, Any]:
    """The vulnerability database's status and where the scans scan-all queued stand,
    beside scan-all's runs."""
    scans = management(request).scans
    if scans is None:
        return {"database": scans_view.database_facts(None), "scan_counts": {}}
    return {
        "database": scans_view.database_facts(await scans.database_status()),
        "scan_counts": await scans.metrics(who.principal),
    }


async def jobs(request: Request, kind: JobKind) -> Response:
    who, nav = await administration(request, kind.section)
    return await page(request, "admin/jobs.html", await _jobs_context(request, who, nav, kind))


def _options(form: Mapping[str, str], kind: JobKind, prefix: str) -> dict[str, bool]:
    return {name: form.get(f"{prefix}{name}") == "on" for name, _, _ in kind.options}


async def run_job(request: Request, kind: JobKind) -> Response:
    who, nav = await administration(request, kind.section)
    form = await read_form(request)
    check_csrf(request, who, form)
    service = _job_service(request, kind)
    try:
        job = await service.kick(who.principal, MANUAL, None, _options(form, kind, "run_"), creating=True)
    except (BadRequest, Conflict) as error:
        context = await _jobs_context(request, who, nav, kind)
        context["errors"] = {"run": error.text}
        return await page(request, "admin/jobs.html", context, status=error.status)
    assert job is not None  # a Manual run answers with its job
    return redirect(f"/admin/{kind.section}/{job.id}", notice=f"{kind.title} started (run {job.id}).")


async def schedule_job(request: Request, kind: JobKind) -> Response:
    who, nav = await administration(request, kind.section)
    form = await read_form(request)
    check_csrf(request, who, form)
    service = _job_service(request, kind)
    chosen = form.get("type", "None")
    cron = form.get("cron", "").strip()
    try:
        if chosen not in SCHEDULE_TYPES:
            raise BadRequest(f"unsupported schedule type {chosen[:40]!r}; use {', '.join(SCHEDULE_TYPES)}")
        existing = await service.schedule(who.principal)
        await service.kick(
            who.principal,
            chosen,
            cron if chosen == "Custom" else None,
            _options(form, kind, "schedule_"),
            creating=existing is None,
        )
    except BadRequest as error:
        context = await _jobs_context(request, who, nav, kind)
        options = _options(form, kind, "schedule_")
        context["form"] = {"type": chosen, "cron": cron, "options": {name for name, on in options.items() if on}}
        context["errors"] = {"schedule": error.text}
        return await page(request, "admin/jobs.html", context, status=error.status)
    notice = f"{kind.title} is no longer scheduled." if chosen == "None" else f"{kind.title} scheduled: {chosen}."
    return redirect(f"/admin/{kind.section}", notice=notice)


async def _job_context(request: Request, who: Visitor, nav: dict[str, Any], kind: JobKind) -> dict[str, Any]:
    service = _job_service(request, kind)
    job = await service.get(who.principal, _number(request, "job_id", f"{kind.section} job"))
    result = _json_object(job.result)
    return {
        **nav,
        "kind": kind,
        "base_url": f"/admin/{kind.section}",
        "row": _job_row(kind, job),
        "job": job,
        "log": await service.log(who.principal, job.id),
        # The options are shown from the parameters already; the rest is what the run did.
        "result": [
            (key.replace("_", " "), _result_text(key, value))
            for key, value in result.items()
            if key not in {name for name, _, _ in kind.options}
        ],
    }


def _result_text(key: str, value: Any) -> str:
    if "bytes" in key and isinstance(value, int) and not isinstance(value, bool):
        return human_size(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    return str(value)


async def job(request: Request, kind: JobKind) -> Response:
    who, nav = await administration(request, kind.section)
    return await page(request, "admin/job.html", await _job_context(request, who, nav, kind))


async def stop_job(request: Request, kind: JobKind) -> Response:
    who, _ = await administration(request, kind.section)
    form = await read_form(request)
    check_csrf(request, who, form)
    stopped = await _job_service(request, kind).stop(who.principal, _number(request, "job_id", f"{kind.section} job"))
    return redirect(f"/admin/{kind.section}/{stopped.id}", notice=f"Asked run {stopped.id} to stop.")


def _job_routes(kind: JobKind) -> list[BaseRoute]:
    base = f"/admin/{kind.section}"

    async def history_page(request: Request) -> Response:
        return await jobs(request, kind)

    async def run(request: Request) -> Response:
        return await run_job(request, kind)

    async def schedule(request: Request) -> Response:
        return await schedule_job(request, kind)

    async def job_page(request: Request) -> Response:
        return await job(request, kind)

    async def stop(request: Request) -> Response:
        return await stop_job(request, kind)

    return [
        Route(base, history_page, methods=["GET", "HEAD"]),
        Route(f"{base}/run", run, methods=["POST"]),
        Route(f"{base}/schedule", schedule, methods=["POST"]),
        Route(f"{base}/{{job_id}}", job_page, methods=["GET", "HEAD"]),
        Route(f"{base}/{{job_id}}/stop", stop, methods=["POST"]),
    ]


# --- the audit log -----------------------------------------------------------------------


def _moment(text: str, field: str) -> str | None:
    """A time from a datetime-local field, as `q` takes it (UTC, as the page says)."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{field}: a date and time such as 2024-01-31T09:30") from None
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


async def audit_logs(request: Request) -> Response:
    who, nav = await administration(request, "audit")
    filters = {key: common.query_text(request, key) for key in ("operation", "username", "resource", "from", "to")}
    if filters["operation"] not in AUDIT_OPERATIONS:
        filters["operation"] = ""
    context: dict[str, Any] = {**nav, "filters": filters, "operations": AUDIT_OPERATIONS, "errors": {}}
    paging = common.paging(request, 25)
    conditions = []
    if filters["operation"]:
        conditions.append(f"operation={filters['operation']}")
    for key in ("username", "resource"):
        if cleaned := q_text(filters[key]):
            conditions.append(f"{key}=~{cleaned}")
    try:
        since, until = _moment(filters["from"], "from"), _moment(filters["to"], "to")
    except BadRequest as error:
        context.update({"rows": [], "total": 0, "paging": paging, "errors": {"time": error.text}})
        return await page(request, "admin/audit.html", context, status=error.status)
    if since or until:
        conditions.append(f"op_time=[{since or ''}~{until or ''}]")
    found = await management(request).audit.list(who.principal, ",".join(conditions) or None, None, paging)
    context.update({"rows": found.items, "total": found.total, "paging": paging})
    return await page(request, "admin/audit.html", context)


routes: list[BaseRoute] = [
    Route("/admin", landing, methods=["GET", "HEAD"]),
    Route(USERS, users, methods=["GET", "HEAD"]),
    Route(USERS, create_user, methods=["POST"]),
    Route(f"{USERS}/{{user_id}}", user, methods=["GET", "HEAD"]),
    Route(f"{USERS}/{{user_id}}/sysadmin", set_admin, methods=["POST"]),
    Route(f"{USERS}/{{user_id}}/password", reset_password, methods=["POST"]),
    Route(f"{USERS}/{{user_id}}/delete", delete_user, methods=["POST"]),
    Route(ROBOTS, robots, methods=["GET", "HEAD"]),
    Route(ROBOTS, create_robot, methods=["POST"]),
    Route(f"{ROBOTS}/{{robot_id}}/refresh", refresh_robot, methods=["POST"]),
    Route(f"{ROBOTS}/{{robot_id}}/disable", disable_robot, methods=["POST"]),
    Route(f"{ROBOTS}/{{robot_id}}/enable", enable_robot, methods=["POST"]),
    Route(f"{ROBOTS}/{{robot_id}}/delete", delete_robot, methods=["POST"]),
    Route(QUOTAS, quotas, methods=["GET", "HEAD"]),
    Route(f"{QUOTAS}/{{quota_id}}", update_quota, methods=["POST"]),
    *_job_routes(_KINDS["gc"]),
    *_job_routes(_KINDS["scrub"]),
    *_job_routes(_KINDS["scanning"]),
    Route(AUDIT, audit_logs, methods=["GET", "HEAD"]),
]
