"""What the commands that talk to a running Portside share: the server and credentials from
--url/--username/--password or PORTSIDE_URL, PORTSIDE_USERNAME, PORTSIDE_PASSWORD, one HTTP
client, and answers other than the expected one turned into one line on stderr and exit 1."""

from __future__ import annotations

from typing import Annotated, Any

import typer

__all__ = ["PasswordOption", "TimeoutOption", "UrlOption", "UserOption", "checked", "client", "fail"]

UrlOption = Annotated[str, typer.Option("--url", envvar="PORTSIDE_URL", help="the server's base URL")]
UserOption = Annotated[str | None, typer.Option("--username", "-u", envvar="PORTSIDE_USERNAME")]
PasswordOption = Annotated[str | None, typer.Option("--password", "-p", envvar="PORTSIDE_PASSWORD")]
TimeoutOption = Annotated[float, typer.Option("--timeout", help="seconds to wait for the server's job")]


def fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def client(url: str, username: str | None, password: str | None) -> Any:
    import httpx  # only the commands that talk to a server load the HTTP client

    auth = (username, password or "") if username else None
    return httpx.Client(base_url=url.rstrip("/"), auth=auth, timeout=60)


def checked(response: Any, *expected: int) -> Any:
    """`response` if its status is one of `expected`; else exit with the server's message."""
    if response.status_code not in expected:
        try:
            message = response.json()["errors"][0]["message"]
        except (ValueError, KeyError, IndexError, TypeError):
            message = response.text[:300]
        raise fail(f"{response.request.method} {response.request.url.path}: {response.status_code} {message}")
    return response
