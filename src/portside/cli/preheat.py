"""`portside preheat ls|run`: a project's P2P preheat policies on a running server, through
its API (`/api/v2.0/projects/{p}/preheat/policies`), as someone who may see (ls) or run
(run: the project's administrators) them; `ls --instances` lists the P2P instances
(system administrators).

`run --wait` follows the execution to its end, prints each image's outcome, and exits 1
when one failed, so a deploy script can preheat before it rolls out."""

from __future__ import annotations

import time
from typing import Annotated, Any
from urllib.parse import quote

import typer

from portside.cli.server_api import PasswordOption, TimeoutOption, UrlOption, UserOption, checked, client, fail

__all__ = ["preheat_app"]

preheat_app = typer.Typer(help="P2P preheat: projects' preheat policies and their runs", no_args_is_help=True)


def _policies(project: str) -> str:
    return f"/api/v2.0/projects/{quote(project, safe='')}/preheat/policies"


def _all(api: Any, path: str) -> list[Any]:
    rows: list[Any] = []
    page = 1
    while True:
        found = checked(api.get(path, params={"page": page, "page_size": 100}), 200)
        rows.extend(found.json())
        if 'rel="next"' not in found.headers.get("Link", ""):
            return rows
        page += 1


@preheat_app.command("ls")
def list_policies(
    project: Annotated[str | None, typer.Argument(help="the project whose policies to list")] = None,
    instances: Annotated[bool, typer.Option("--instances", help="list the P2P instances instead")] = False,
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """List a project's preheat policies with their last execution (or the instances)."""
    with client(url, username, password) as api:
        if instances:
            for row in _all(api, "/api/v2.0/p2p/preheat/instances"):
                flags = "".join((" default" if row["default"] else "", "" if row["enabled"] else " disabled"))
                error = f"  {row['last_error']}" if row.get("last_error") else ""
                typer.echo(f"{row['name']}\t{row['vendor']}\t{row['endpoint']}\t{row['status']}{flags}{error}")
            return
        if project is None:
            raise fail("name a project (or give --instances)")
        for row in _all(api, _policies(project)):
            name = quote(row["name"], safe="")
            last = checked(api.get(f"{_policies(project)}/{name}/executions", params={"page_size": 1}), 200).json()
            state = f"{last[0]['status']} ({last[0]['trigger']}, {last[0]['start_time']})" if last else "never run"
            enabled = "" if row["enabled"] else " [disabled]"
            typer.echo(f"{row['name']}{enabled}\t{row['provider_name']}\t{row['trigger']}\t{state}")


@preheat_app.command("run")
def run(
    project: str,
    policy: str,
    wait: Annotated[bool, typer.Option("--wait", help="follow the execution to its end")] = False,
    timeout: TimeoutOption = 600.0,
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """Run a preheat policy now; prints the execution's id (with --wait, each image's outcome)."""
    path = f"{_policies(project)}/{quote(policy, safe='')}"
    with client(url, username, password) as api:
        started = checked(api.post(path, json={"name": policy}), 201)
        execution_id = started.headers["Location"].rsplit("/", 1)[-1]
        typer.echo(execution_id)
        if not wait:
            return
        deadline = time.monotonic() + timeout
        while True:
            execution = checked(api.get(f"{path}/executions/{execution_id}"), 200).json()
            if execution["status"] not in ("Pending", "Running"):
                break
            if time.monotonic() >= deadline:
                raise fail(f"execution {execution_id} still {execution['status']} after {timeout:.0f}s")
            time.sleep(1.0)
        for task in _all(api, f"{path}/executions/{execution_id}/tasks"):
            artifact = task.get("extra_attrs", {}).get("artifact", "")
            typer.echo(f"{artifact}\t{task['status']}\t{task['status_message']}")
    typer.echo(f"{execution['status']}: {execution['status_message']}")
    if execution["status"] != "Success":
        raise typer.Exit(1)
