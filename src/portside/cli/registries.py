"""`portside registry create|ls|ping|rm`: the registries (endpoints) a running server talks to,
through its API (`/api/v2.0/registries`), as a system administrator or a system robot given
`registry` permissions. A registry is named by its name or its id.

The secret is best given through PORTSIDE_REGISTRY_SECRET or `--access-secret-stdin`: a
command line is visible to everyone on the machine."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from portside.cli.server_api import PasswordOption, UrlOption, UserOption, checked, client, fail

__all__ = ["registry_app"]

registry_app = typer.Typer(help="The registries this server talks to (Harbor's registries)", no_args_is_help=True)
_API = "/api/v2.0/registries"


def _id_of(api: Any, name_or_id: str) -> int:
    if name_or_id.isascii() and name_or_id.isdigit():
        return int(name_or_id)
    found = checked(api.get(_API, params={"q": f"name={name_or_id}", "page_size": 1}), 200).json()
    if not found:
        raise fail(f"no registry named {name_or_id!r}")
    return int(found[0]["id"])


@registry_app.command("create")
def create(
    name: str,
    registry_url: Annotated[str, typer.Argument(metavar="URL", help="the registry's URL")],
    kind: Annotated[str, typer.Option("--type", help="docker-registry, harbor or docker-hub")] = "docker-registry",
    description: Annotated[str, typer.Option("--description")] = "",
    access_key: Annotated[str, typer.Option("--access-key", help="user name (or robot)")] = "",
    access_secret: Annotated[str, typer.Option("--access-secret", envvar="PORTSIDE_REGISTRY_SECRET")] = "",
    secret_stdin: Annotated[bool, typer.Option("--access-secret-stdin", help="read the secret from stdin")] = False,
    credential_type: Annotated[str, typer.Option("--credential-type", help="basic or oauth")] = "basic",
    insecure: Annotated[bool, typer.Option("--insecure", help="do not verify the registry's TLS")] = False,
    ca_file: Annotated[Path | None, typer.Option("--ca-file", help="PEM CA certificates to trust for it")] = None,
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """Add a registry; prints its id."""
    secret = sys.stdin.read().rstrip("\n") if secret_stdin else access_secret
    body: dict[str, Any] = {
        "name": name,
        "type": kind,
        "url": registry_url,
        "description": description,
        "insecure": insecure,
    }
    if ca_file is not None:
        body["ca_certificate"] = ca_file.read_text()
    if access_key:
        body["credential"] = {"type": credential_type, "access_key": access_key, "access_secret": secret}
    with client(url, username, password) as api:
        made = checked(api.post(_API, json=body), 201)
    typer.echo(made.headers["Location"].rsplit("/", 1)[-1])


@registry_app.command("ls")
def list_registries(
    url: UrlOption = "http://127.0.0.1:5000", username: UserOption = None, password: PasswordOption = None
) -> None:
    """List the registries with their health (what the background check last found)."""
    rows = []
    with client(url, username, password) as api:
        page = 1
        while True:
            found = checked(api.get(_API, params={"page": page, "page_size": 100}), 200)
            rows.extend(found.json())
            if 'rel="next"' not in found.headers.get("Link", ""):
                break
            page += 1
    for row in rows:
        error = f"  {row['last_error']}" if row.get("last_error") else ""
        typer.echo(f"{row['id']}\t{row['name']}\t{row['type']}\t{row['url']}\t{row['status']}{error}")


@registry_app.command("ping")
def ping(
    name_or_id: str,
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """Check now that a registry answers with its credential; exit 1 with the reason if not."""
    with client(url, username, password) as api:
        checked(api.post(f"{_API}/ping", json={"id": _id_of(api, name_or_id)}), 200)
    typer.echo(f"{name_or_id}: healthy")


@registry_app.command("rm")
def remove(
    name_or_id: str,
    url: UrlOption = "http://127.0.0.1:5000",
    username: UserOption = None,
    password: PasswordOption = None,
) -> None:
    """Remove a registry nothing uses."""
    with client(url, username, password) as api:
        checked(api.delete(f"{_API}/{_id_of(api, name_or_id)}"), 200)
    typer.echo(f"removed {name_or_id}")
