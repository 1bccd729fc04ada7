"""Pages: a project's robot accounts (the Robots tab), and what the administration's
system robots share with them: the permission matrix, reading it from a form, the
summary of what a robot holds, and the page that shows a secret once.

The matrix offers only the (resource, action) pairs a project robot can hold (the project
permissions of `auth.rbac`) that the visitor holds too, since `RobotService` refuses a
robot any permission its creator could not use. A secret is shown in the answer to the
POST that made it and nowhere else: never in a redirect, a cookie or a later page.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.auth.authn import ROBOT_PREFIX
from portside.auth.policy import robot_active
from portside.auth.rbac import PROJECT_PERMISSIONS, SYSTEM_PERMISSIONS
from portside.errors import BadRequest, Conflict, NotFound, RegistryError
from portside.meta.accounts import Project, Robot, RobotPermission
from portside.mgmt.robots import RobotSpec
from portside.ui.render import page, read_form, redirect
from portside.ui.views import common
from portside.ui.visitor import Visitor, check_csrf, management, signed_in_user, visitor

__all__ = [
    "routes",
    "Matrix",
    "PROJECT_MATRIX",
    "SYSTEM_MATRIX",
    "DEFAULT_ACCESS",
    "DEFAULT_DAYS",
    "chosen_access",
    "ticked",
    "duration_days",
    "robot_row",
    "robot_id",
    "secret_context",
    "form_errors",
    "same_spec",
    "q_text",
]

Permission = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Matrix:
    """Rows of resources by columns of actions; a cell is a permission a robot may hold."""

    field: str  # the form field each ticked cell is sent in, as "resource:action"
    legend: str
    resources: tuple[str, ...]
    actions: tuple[str, ...]
    cells: frozenset[Permission]

    def offered(self, held: Collection[Permission] | None) -> Matrix:
        """The cells of those `held` (None: every cell, for who holds everything)."""
        if held is None:
            return self
        return Matrix(self.field, self.legend, self.resources, self.actions, self.cells & frozenset(held))

    def rows(self, ticked: Collection[Permission]) -> list[dict[str, Any]]:
        """What the template draws: per resource, per action, whether offered and ticked."""
        return [
            {
                "resource": resource,
                "cells": [
                    {
                        "action": action,
                        "offered": (resource, action) in self.cells,
                        "ticked": (resource, action) in ticked,
                    }
                    for action in self.actions
                ],
            }
            for resource in self.resources
            if any((resource, action) in self.cells for action in self.actions)
        ]


def _matrix(
    field: str, legend: str, resources: Sequence[str], actions: Sequence[str], policy: frozenset[Permission]
) -> Matrix:
    # Only pairs of the policy's table: a cell the form shows is one the service accepts.
    cells = frozenset((r, a) for r in resources for a in actions if (r, a) in policy)
    return Matrix(field, legend, tuple(resources), tuple(actions), cells)


PROJECT_MATRIX = _matrix(
    "access",
    "Permissions in the project",
    ("repository", "artifact", "tag", "scan"),
    ("pull", "push", "delete", "read", "list", "create"),
    PROJECT_PERMISSIONS,
)
SYSTEM_MATRIX = _matrix(
    "system_access",
    "System permissions",
    ("user", "robot", "audit-log", "quota", "garbage-collection", "scrub", "volumes", "registry"),
    ("read", "list", "create", "update", "delete", "stop"),
    SYSTEM_PERMISSIONS,
)
DEFAULT_ACCESS: frozenset[Permission] = frozenset({("repository", "pull")})
DEFAULT_DAYS = "30"


def chosen_access(form: ImmutableMultiDict[str, str], matrix: Matrix) -> tuple[Permission, ...]:
    """The cells ticked in `form`, in the matrix's order; one it does not offer is refused."""
    chosen: set[Permission] = set()
    for value in form.getlist(matrix.field):
        resource, _, action = value.partition(":")
        if (resource, action) not in matrix.cells:
            raise BadRequest(f"permission {value[:60]!r} cannot be given here")
        chosen.add((resource, action))
    return tuple((r, a) for r in matrix.resources for a in matrix.actions if (r, a) in chosen)


def ticked(form: ImmutableMultiDict[str, str], matrix: Matrix) -> set[Permission]:
    """The cells ticked in `form`, as sent (to tick them again when the form comes back)."""
    return {(resource, action) for resource, _, action in (v.partition(":") for v in form.getlist(matrix.field))}


def duration_days(text: str) -> int:
    """The expiry as typed: a whole number of days, -1 for never (the service checks the range)."""
    text = text.strip()
    sign = text[:1] == "-"
    digits = text[1:] if sign else text
    if not digits.isascii() or not digits.isdigit() or len(digits) > 12:
        raise BadRequest("duration must be -1 (never expires) or a number of days")
    return -int(digits) if sign else int(digits)


def _expiry(robot: Robot) -> datetime | None:
    return None if robot.expires_at == -1 else datetime.fromtimestamp(robot.expires_at, UTC)


def _summary(access: Iterable[Permission]) -> str:
    by_resource: dict[str, list[str]] = {}
    for resource, action in access:
        by_resource.setdefault(resource, []).append(action)
    return "; ".join(f"{resource}: {', '.join(actions)}" for resource, actions in by_resource.items()) or "nothing"


def robot_row(robot: Robot) -> dict[str, Any]:
    """A robot as the lists show it."""
    projects = [p for p in robot.permissions if p.kind == "project"]
    system = [a for p in robot.permissions if p.kind == "system" for a in p.access]
    namespaces = sorted({p.namespace for p in projects})
    access = sorted({a for p in projects for a in p.access}, key=_order_of(PROJECT_MATRIX))
    return {
        "robot": robot,
        "state": "disabled" if robot.disabled else ("active" if robot_active(robot) else "expired"),
        "expires": _expiry(robot),
        "projects": "all projects" if "*" in namespaces else ", ".join(namespaces),
        "summary": _summary(access),
        "system_summary": _summary(sorted(set(system), key=_order_of(SYSTEM_MATRIX))) if system else "",
    }


def _order_of(matrix: Matrix) -> Callable[[Permission], tuple[int, int, str, str]]:
    def key(permission: Permission) -> tuple[int, int, str, str]:
        resource, action = permission
        r = matrix.resources.index(resource) if resource in matrix.resources else len(matrix.resources)
        a = matrix.actions.index(action) if action in matrix.actions else len(matrix.actions)
        return (r, a, resource, action)

    return key


def robot_id(request: Request) -> int:
    text = request.path_params["robot_id"]
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise NotFound(f"robot {text[:40]} not found")
    return int(text)


def form_errors(error: RegistryError) -> dict[str, str]:
    """Which field of the robot form an error of the service is about."""
    text = error.text
    if isinstance(error, Conflict) or "robot name" in text or "full name" in text:
        return {"name": text}
    for field in ("duration", "description", "secret"):
        if text.startswith(field) or f" {field} " in text:
            return {field: text}
    if text.startswith("name the projects") or ("project" in text and "not found" in text):
        return {"projects": text}
    return {"access": text}


def secret_context(request: Request, robot: Robot, secret: str, *, created: bool, back_url: str) -> dict[str, Any]:
    host = request.headers.get("host") or request.url.netloc
    return {
        "robot": robot,
        "secret": secret,
        "created": created,
        "back_url": back_url,
        "login_command": f"docker login {host} --username '{robot.name}' --password-stdin",
    }


def same_spec(robot: Robot, *, disable: bool) -> RobotSpec:
    """The robot as it is, but for `disable`: the shape `RobotService.update` takes."""
    return RobotSpec(
        name="",
        level=robot.level,
        permissions=robot.permissions,
        description=robot.description,
        duration=robot.duration,
        disable=disable,
    )


# --- a project's robots ------------------------------------------------------------------


async def _project(request: Request, who: Visitor) -> Project:
    # The project first: one the visitor may not see is missing, in the words of every tab.
    return (await management(request).projects.get(who.principal, request.path_params["name"])).project


def _head(project: Project) -> dict[str, Any]:
    return {
        "project": project,
        "tabs": common.project_tabs(project.name),
        "tab": "robots",
        "project_url": common.project_url(project.name),
    }


async def _robots_context(request: Request, who: Visitor, project: Project) -> dict[str, Any]:
    services = management(request)
    q = common.query_text(request, "q")
    paging = common.paging(request, 25)
    conditions = [f"ProjectID={project.project_id}"]
    if cleaned := q_text(q):
        conditions.append(f"Name=~{cleaned}")
    found = await services.robots.list(who.principal, ",".join(conditions), paging)
    held = await common.permissions(request, who, f"/project/{project.project_id}")
    return {
        **_head(project),
        "q": q,
        "rows": [robot_row(r) for r in found.items],
        "total": found.total,
        "paging": paging,
        "may_create": ("robot", "create") in held,
        "may_update": ("robot", "update") in held,
        "may_delete": ("robot", "delete") in held,
        "matrix": PROJECT_MATRIX.offered(held),
        "ticked": DEFAULT_ACCESS,
        "form": {"duration": DEFAULT_DAYS},
        "errors": {},
        "prefix": f"{ROBOT_PREFIX}{project.name}+",
    }


def q_text(text: str) -> str:
    """Text inside Harbor's `q`: none of its separators, brackets or escapes."""
    return "".join(c for c in text if c not in ",[]{}()~=\\%")[:100]


async def project_robots(request: Request) -> Response:
    who = await visitor(request)
    project = await _project(request, who)
    return await page(request, "robots/list.html", await _robots_context(request, who, project))


async def create_project_robot(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    project = await _project(request, who)
    name = form.get("name", "").strip()
    description = form.get("description", "").strip()
    try:
        access = chosen_access(form, PROJECT_MATRIX)
        duration = duration_days(form.get("duration", ""))
        if not access:
            raise BadRequest("choose at least one permission")
        spec = RobotSpec(
            name,
            "project",
            (RobotPermission("project", project.name, access),),
            description,
            duration,
        )
        created = await management(request).robots.create(who.principal, spec)
    except (BadRequest, Conflict) as error:
        context = await _robots_context(request, who, project)
        context.update(
            {
                "errors": form_errors(error),
                "form": {"name": name, "description": description, "duration": form.get("duration", "")},
                "ticked": ticked(form, PROJECT_MATRIX),
                "open_form": True,
            }
        )
        return await page(request, "robots/list.html", context, status=error.status)
    context = secret_context(
        request, created.robot, created.secret, created=True, back_url=common.project_url(project.name, "robots")
    )
    context.update(_head(project))
    return await page(request, "robots/secret.html", context)


async def _project_robot(request: Request, who: Visitor, project: Project) -> Robot:
    """The robot of the URL, which must be one of this project's."""
    number = robot_id(request)
    robot = await management(request).robots.get(who.principal, number)
    if robot.level != "project" or robot.project_id != project.project_id:
        raise NotFound(f"robot {number} not found")
    return robot


async def refresh_project_robot(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    project = await _project(request, who)
    robot = await _project_robot(request, who, project)
    secret = await management(request).robots.refresh_secret(who.principal, robot.id, None)
    context = secret_context(request, robot, secret, created=False, back_url=common.project_url(project.name, "robots"))
    context.update(_head(project))
    return await page(request, "robots/secret.html", context)


async def _set_disabled(request: Request, disable: bool) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    project = await _project(request, who)
    robot = await _project_robot(request, who, project)
    await management(request).robots.update(who.principal, robot.id, same_spec(robot, disable=disable))
    return redirect(
        common.project_url(project.name, "robots"), notice=f"{robot.name} {'disabled' if disable else 'enabled'}."
    )


async def disable_project_robot(request: Request) -> Response:
    return await _set_disabled(request, True)


async def enable_project_robot(request: Request) -> Response:
    return await _set_disabled(request, False)


async def delete_project_robot(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    project = await _project(request, who)
    robot = await _project_robot(request, who, project)
    await management(request).robots.delete(who.principal, robot.id)
    return redirect(common.project_url(project.name, "robots"), notice=f"{robot.name} deleted.")


_ROBOT = "/projects/{name}/robots/{robot_id}"
routes: list[BaseRoute] = [
    Route("/projects/{name}/robots", project_robots, methods=["GET", "HEAD"]),
    Route("/projects/{name}/robots", create_project_robot, methods=["POST"]),
    Route(f"{_ROBOT}/refresh", refresh_project_robot, methods=["POST"]),
    Route(f"{_ROBOT}/disable", disable_project_robot, methods=["POST"]),
    Route(f"{_ROBOT}/enable", enable_project_robot, methods=["POST"]),
    Route(f"{_ROBOT}/delete", delete_project_robot, methods=["POST"]),
]
