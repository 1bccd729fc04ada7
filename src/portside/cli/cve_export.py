"""`portside cve-export PROJECT`: Harbor's CVE export through a running server's API. It
starts the export of one project's findings (`POST /api/v2.0/export/cve`), waits for the
background job, and writes the CSV to a file or to standard output. The export is kept on the
server for its owner too (`/export/cve/executions`), as the web UI lists it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import typer

from portside.cli.server_api import PasswordOption, TimeoutOption, UrlOption, UserOption, checked, client, fail

__all__ = ["cve_export"]

DATA_TYPE = "application/vnd.security.vulnerability.report; version=1.1"
_ENDED = ("Success", "Error", "Stopped")


def _project_id(api: Any, project: str) -> int:
    response = api.get(f"/api/v2.0/projects/{quote(project, safe='')}", headers={"X-Is-Resource-Name": "true"})
    if response.status_code in (403, 404):
        raise fail(f"no project {project!r} that these credentials may read")
    return int(checked(response, 200).json()["project_id"])


def _wait(api: Any, execution_id: int, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        execution: dict[str, Any] = checked(api.get(f"/api/v2.0/export/cve/execution/{execution_id}"), 200).json()
        if execution["status"] in _ENDED:
            return execution
        if time.monotonic() > deadline:
            raise fail(f"export {execution_id} did not end within {timeout:g} s; it goes on on the server")
        time.sleep(0.5)


def cve_export(
    project: Annotated[str, typer.Argument(help="the project's name")],
    repositories: Annotated[
        str, typer.Option("--repositories", help="doublestar pattern of repository names, e.g. '{nginx,app/**}'")
    ] = "",
    tags: Annotated[str, typer.Option("--tags", help="doublestar pattern of tags, e.g. 'release-*'")] = "",
    cve: Annotated[list[str] | None, typer.Option("--cve", help="only this CVE or advisory id (repeatable)")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write the CSV here (default: stdout)")] = None,
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
    timeout: TimeoutOption = 600.0,
) -> None:
    """Export a project's vulnerability findings as Harbor's CSV."""
    with client(url, username, password) as api:
        body = {
            "job_name": f"portside cve-export {project}",
            "projects": [_project_id(api, project)],
            "repositories": repositories,
            "tags": tags,
            "cveIds": ",".join(cve or ()),
        }
        started = checked(api.post("/api/v2.0/export/cve", json=body, headers={"X-Scan-Data-Type": DATA_TYPE}), 200)
        execution = _wait(api, int(started.json()["id"]), timeout)
        if execution["status"] != "Success":
            raise fail(f"the export ended {execution['status']}: {execution.get('status_text') or 'no reason given'}")
        content = checked(api.get(f"/api/v2.0/export/cve/download/{execution['id']}"), 200).content
    if output is None:
        typer.echo(content.decode("utf-8"), nl=False)
    else:
        output.write_bytes(content)
        typer.echo(f"wrote {output} ({execution.get('status_text') or 'done'})", err=True)
