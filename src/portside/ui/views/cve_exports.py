"""Pages: CVE exports. A project's summary offers the export form to those the policy lets
export (`export-cve:create`, developers and up); sending it starts Harbor's CVE export
(`CveExportService.start`, as `POST /api/v2.0/export/cve`) and leads to "My CVE exports",
`/account/cve-exports`: the visitor's own executions, newest first, the running ones polled
by htmx until they end, and each finished one's CSV.

The service decides everything: who may export a project (a private project stays a
missing one to a stranger), one export at a time per person, and that only its owner
reads an execution or downloads its file.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from portside.errors import BadRequest, Conflict, Forbidden, NotFound, RegistryError
from portside.mgmt.cve_export import DATA_TYPE, CveExportService, ExportCriteria
from portside.ui.render import page, read_form, redirect
from portside.ui.views import common
from portside.ui.views.projects import summary_context
from portside.ui.visitor import check_csrf, management, signed_in_user

__all__ = ["routes", "MY_EXPORTS"]

MY_EXPORTS = "/account/cve-exports"
_FIELDS = ("repositories", "tags", "cve_ids", "job_name")
_RUNNING = ("Pending", "Running")
# The field a refusal is about, by the words the service starts it with.
_FIELD_OF = (("repositories", "repositories"), ("tags", "tags"), ("cveids", "cve_ids"), ("job_name", "job_name"))


def _exports(request: Request) -> CveExportService:
    found = management(request).cve_exports
    if found is None:
        raise NotFound("CVE export is not available on this server: scanning is off")
    return found


def _field(error: RegistryError) -> str:
    text = error.text.lower()
    return next((field for words, field in _FIELD_OF if text.startswith(words)), "export")


async def start(request: Request) -> Response:
    who = await signed_in_user(request)
    form = await read_form(request)
    check_csrf(request, who, form)
    name = request.path_params["name"]
    exports = _exports(request)
    project = (await management(request).projects.get(who.principal, name)).project
    criteria = ExportCriteria(
        job_name=form.get("job_name", "").strip(),
        projects=(project.project_id,),
        repositories=form.get("repositories", "").strip(),
        cve_ids=form.get("cve_ids", "").strip(),
        tags=form.get("tags", "").strip(),
    )
    try:
        job = await exports.start(who.principal, criteria, DATA_TYPE)
    except (BadRequest, Forbidden, NotFound, Conflict) as error:
        context = await summary_context(request, who, name)
        context.update(
            {"errors": {_field(error): error.text}, "export_form": {key: form.get(key, "") for key in _FIELDS}}
        )
        return await page(request, "projects/summary.html", context, status=error.status)
    return redirect(MY_EXPORTS, notice=f"CVE export {job.id} of {project.name} started.")


async def my_exports(request: Request) -> Response:
    who = await signed_in_user(request)
    exports = _exports(request)
    executions = await exports.executions(who.principal)
    hours = max(int(exports.retention.total_seconds() // 3600), 1)
    context = {
        "kept_for": "a day" if hours == 24 else f"{hours} hour{'s' if hours != 1 else ''}",
        "current": "cve-exports",
        "executions": executions,
        "running": any(e.status in _RUNNING for e in executions),
        "project_url": common.project_url,
    }
    return await page(request, "account/cve_exports.html", context)


def _execution_id(request: Request) -> int:
    text = request.path_params["execution_id"]
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        raise NotFound(f"CVE export {text[:40]} not found")
    return int(text)


async def download(request: Request) -> Response:
    who = await signed_in_user(request)
    name, content = await _exports(request).download(who.principal, _execution_id(request))
    return Response(
        content,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


routes: list[BaseRoute] = [
    Route("/projects/{name}/cve-exports", start, methods=["POST"]),
    Route(MY_EXPORTS, my_exports, methods=["GET", "HEAD"]),
    Route(f"{MY_EXPORTS}/{{execution_id}}/download", download, methods=["GET", "HEAD"]),
]
