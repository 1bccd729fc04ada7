"""`portside replication create|ls|run|executions|log`: replication policies of a running
server and their executions, through its API (`/api/v2.0/replication/...`), as a system
administrator or a system robot given `replication-policy` and `replication` permissions.
A policy is named by its name or its id; a registry by its name or id (`portside registry`)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer

from portside.cli.server_api import PasswordOption, UrlOption, UserOption, checked, client, fail

__all__ = ["replication_app"]

replication_app = typer.Typer(help="Replication policies and their executions (Harbor's)", no_args_is_help=True)
_POLICIES = "/api/v2.0/replication/policies"
_EXECUTIONS = "/api/v2.0/replication/executions"
_DONE = ("Succeed", "Failed", "Stopped")


def _all(api: Any, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        found = checked(api.get(path, params={**(params or {}), "page": page, "page_size": 100}), 200)
        rows.extend(found.json())
        if 'rel="next"' not in found.headers.get("Link", ""):
            return rows
        page += 1


def _policy_id(api: Any, name_or_id: str) -> int:
    if name_or_id.isascii() and name_or_id.isdigit():
        return int(name_or_id)
    for row in _all(api, _POLICIES, {"name": name_or_id}):
        if row["name"] == name_or_id:
            return int(row["id"])
    raise fail(f"no replication policy named {name_or_id!r}")


def _registry_id(api: Any, name_or_id: str) -> int:
    if name_or_id.isascii() and name_or_id.isdigit():
        return int(name_or_id)
    found = checked(api.get("/api/v2.0/registries", params={"q": f"name={name_or_id}", "page_size": 1}), 200).json()
    if not found:
        raise fail(f"no registry named {name_or_id!r}")
    return int(found[0]["id"])


@replication_app.command("create")
def create(
    name: str,
    to: Annotated[str | None, typer.Option("--to", help="push to this registry (name or id)")] = None,
    source: Annotated[str | None, typer.Option("--from", help="pull from this registry (name or id)")] = None,
    names: Annotated[str, typer.Option("--name-filter", help="doublestar pattern on repositories")] = "",
    tags: Annotated[str, typer.Option("--tag-filter", help="doublestar pattern on tags")] = "",
    exclude_tags: Annotated[str, typer.Option("--exclude-tags", help="tags matching this are left out")] = "",
    resource: Annotated[str, typer.Option("--resource", help="image or artifact")] = "",
    namespace: Annotated[str, typer.Option("--dest-namespace")] = "",
    replace_count: Annotated[int, typer.Option("--replace-count", help="-1 legacy, 0 prefix, N replace N")] = -1,
    trigger: Annotated[str, typer.Option("--trigger", help="manual, scheduled or event_based")] = "manual",
    cron: Annotated[str, typer.Option("--cron", help="six fields, seconds first (scheduled)")] = "",
    deletion: Annotated[bool, typer.Option("--replicate-deletion")] = False,
    override: Annotated[bool, typer.Option("--override/--no-override")] = True,
    speed: Annotated[int, typer.Option("--speed", help="KB/s; -1 unlimited")] = -1,
    single_active: Annotated[bool, typer.Option("--single-active")] = False,
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """Create a policy (exactly one of --to and --from); prints its id."""
    if (to is None) == (source is None):
        raise fail("give exactly one of --to (push) and --from (pull)")
    filters: list[dict[str, Any]] = []
    if names:
        filters.append({"type": "name", "value": names})
    if tags:
        filters.append({"type": "tag", "decoration": "matches", "value": tags})
    if exclude_tags:
        filters.append({"type": "tag", "decoration": "excludes", "value": exclude_tags})
    if resource:
        filters.append({"type": "resource", "value": resource})
    with client(url, username, password) as api:
        body: dict[str, Any] = {
            "name": name,
            "src_registry": {"id": _registry_id(api, source)} if source else None,
            "dest_registry": {"id": _registry_id(api, to)} if to else None,
            "dest_namespace": namespace,
            "dest_namespace_replace_count": replace_count,
            "filters": filters,
            "trigger": {"type": trigger, "trigger_settings": {"cron": cron}},
            "replicate_deletion": deletion,
            "override": override,
            "enabled": True,
            "speed": speed,
            "single_active_replication": single_active,
        }
        made = checked(api.post(_POLICIES, json=body), 201)
    typer.echo(made.headers["Location"].rsplit("/", 1)[-1])


@replication_app.command("ls")
def list_policies(
    url: UrlOption = "http://127.0.0.1:5000", username: UserOption = None, password: PasswordOption = None
) -> None:
    """List the policies: id, name, direction, trigger."""
    with client(url, username, password) as api:
        rows = _all(api, _POLICIES)
    for row in rows:
        src, dest = row.get("src_registry") or {}, row.get("dest_registry") or {}
        # This registry is Harbor's registry 0 ("Local") on its side of the policy.
        way = f"pull from {src.get('name')}" if src.get("id") else f"push to {dest.get('name')}"
        state = "" if row["enabled"] else "\tdisabled"
        typer.echo(f"{row['id']}\t{row['name']}\t{way}\t{row['trigger']['type']}{state}")


@replication_app.command("run")
def run(
    policy: str,
    wait: Annotated[bool, typer.Option("--wait", help="until the execution ends; exit 1 unless it succeeded")] = False,
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """Start an execution of a policy now; prints its id (and with --wait, how it ended)."""
    with client(url, username, password) as api:
        started = checked(api.post(_EXECUTIONS, json={"policy_id": _policy_id(api, policy)}), 201)
        execution_id = started.headers["Location"].rsplit("/", 1)[-1]
        typer.echo(execution_id)
        if not wait:
            return
        while True:
            found = checked(api.get(f"{_EXECUTIONS}/{execution_id}"), 200).json()
            if found["status"] in _DONE:
                break
            time.sleep(1.0)
    typer.echo(_execution_line(found))
    if found["status"] != "Succeed":
        raise typer.Exit(1)


def _execution_line(row: dict[str, Any]) -> str:
    counts = f"total {row['total']}, succeed {row['succeed']}, failed {row['failed']}, " + (
        f"in progress {row['in_progress']}, stopped {row['stopped']}"
    )
    text = f"\t{row['status_text']}" if row.get("status_text") else ""
    return f"{row['id']}\t{row['status']}\t{row['trigger']}\t{row['start_time']}\t{counts}{text}"


@replication_app.command("executions")
def executions(
    policy: Annotated[str | None, typer.Argument(help="only this policy's")] = None,
    tasks: Annotated[int | None, typer.Option("--tasks", help="the tasks of this execution instead")] = None,
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """List executions, newest first (or one execution's tasks)."""
    with client(url, username, password) as api:
        if tasks is not None:
            for row in _all(api, f"{_EXECUTIONS}/{tasks}/tasks"):
                typer.echo(
                    f"{row['id']}\t{row['status']}\t{row['operation']}\t{row['src_resource']} -> "
                    f"{row['dst_resource']}\tattempts {row['attempts']}"
                )
            return
        params = {"policy_id": _policy_id(api, policy)} if policy else {}
        for row in _all(api, _EXECUTIONS, params):
            typer.echo(_execution_line(row))


@replication_app.command("log")
def log(
    execution: int,
    task: Annotated[int | None, typer.Argument(help="one task (default: every task of the execution)")] = None,
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """Print a task's log, or every task's of an execution."""
    with client(url, username, password) as api:
        ids = [task] if task is not None else [int(r["id"]) for r in _all(api, f"{_EXECUTIONS}/{execution}/tasks")]
        for task_id in ids:
            text = checked(api.get(f"{_EXECUTIONS}/{execution}/tasks/{task_id}/log"), 200).text
            if task is None:
                typer.echo(f"--- task {task_id}")
            typer.echo(text, nl=False)
