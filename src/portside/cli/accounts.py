"""`portside user|project|robot`: scripting and recovery on the same store as the server.

The commands act as the operator of the machine (no sign-in, no permission checks), and
record what they change in the audit log like the API does.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from portside.config import load_settings
from portside.errors import RegistryError
from portside.extras import MissingExtra
from portside.meta.accounts import RobotPermission
from portside.mgmt.paging import Paging

# The management layer (passwords, argon2) and the application are loaded when a command
# runs: `portside serve` registers these commands too, and its process must stay small.
if TYPE_CHECKING:
    from portside.wiring import OperatorServices

__all__ = ["user_app", "project_app", "robot_app"]

T = TypeVar("T")

user_app = typer.Typer(help="Manage users.", no_args_is_help=True)
project_app = typer.Typer(help="Manage projects.", no_args_is_help=True)
robot_app = typer.Typer(help="Manage robot accounts.", no_args_is_help=True)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML configuration file")]
DataDirOption = Annotated[Path | None, typer.Option("--data-dir", help="data directory")]
_CLI = "cli"


def _run(config: Path | None, data_dir: Path | None, action: Callable[[OperatorServices], Awaitable[T]]) -> T:
    from portside.wiring import NoRegistry, operator_services

    settings = load_settings(config, data_dir=data_dir)

    async def main() -> T:
        async with operator_services(settings) as services:
            return await action(services)

    try:
        return asyncio.run(main())
    except RegistryError as error:
        typer.echo(f"error: {error.text}", err=True)
        raise typer.Exit(1) from None
    except (NoRegistry, MissingExtra) as problem:
        typer.echo(f"error: {problem}", err=True)
        raise typer.Exit(1) from None


def _password(password: str | None, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if password is not None:
        return password
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


PasswordOption = Annotated[str | None, typer.Option("--password", help="the password (prompted when absent)")]
StdinOption = Annotated[bool, typer.Option("--password-stdin", help="read the password from standard input")]


@user_app.command("add")
def user_add(
    username: str,
    password: PasswordOption = None,
    password_stdin: StdinOption = False,
    email: Annotated[str | None, typer.Option("--email")] = None,
    realname: Annotated[str, typer.Option("--realname")] = "",
    admin: Annotated[bool, typer.Option("--admin", help="make a system administrator")] = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a user."""
    from portside.mgmt.users import NewUser

    secret = _password(password, password_stdin)
    user = _run(
        config,
        data_dir,
        lambda s: s.users.add(NewUser(username, secret, email, realname), sysadmin=admin, by=_CLI),
    )
    typer.echo(f"created user {user.username} (id {user.user_id})")


@user_app.command("list")
def user_list(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """List users."""
    page = _run(config, data_dir, lambda s: s.users.page(None, Paging(1, 100)))
    for user in page.items:
        typer.echo(f"{user.user_id}\t{user.username}\t{'admin' if user.sysadmin else 'user'}\t{user.email or ''}")


@user_app.command("passwd")
def user_passwd(
    username: str,
    password: PasswordOption = None,
    password_stdin: StdinOption = False,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Set a user's password (recovery: no old password needed)."""
    secret = _password(password, password_stdin)

    async def change(s: OperatorServices) -> None:
        await s.users.set_password(await s.users.find(username), secret)

    _run(config, data_dir, change)
    typer.echo(f"password of {username} changed")


@user_app.command("reset-totp")
def user_reset_totp(username: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Turn a user's two-factor sign-in off (recovery, for a lost device)."""

    async def reset(s: OperatorServices) -> None:
        await s.users.reset_two_factor(await s.users.find(username))

    _run(config, data_dir, reset)
    typer.echo(f"two-factor sign-in of {username} is off; they sign in with the password and may enrol again")


@user_app.command("delete")
def user_delete(username: str, config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Delete a user."""

    async def remove(s: OperatorServices) -> None:
        await s.users.remove(await s.users.find(username))

    _run(config, data_dir, remove)
    typer.echo(f"deleted user {username}")


@project_app.command("add")
def project_add(
    name: str,
    public: Annotated[bool, typer.Option("--public", help="anyone may pull")] = False,
    owner: Annotated[str, typer.Option("--owner", help="owning user (its projectAdmin)")] = "admin",
    storage_limit: Annotated[
        int | None,
        typer.Option("--storage-limit", help="bytes the project may store; -1 unlimited (default: the setting)"),
    ] = None,
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a project."""

    async def add(s: OperatorServices) -> int:
        user = await s.users.find(owner)
        return (await s.projects.add(name, user.user_id, public, {}, by=_CLI, storage_limit=storage_limit)).project_id

    project_id = _run(config, data_dir, add)
    typer.echo(f"created project {name} (id {project_id})")


@project_app.command("list")
def project_list(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """List projects."""
    page = _run(config, data_dir, lambda s: s.projects.page(Paging(1, 100)))
    for p in page.items:
        typer.echo(f"{p.project_id}\t{p.name}\t{'public' if p.public else 'private'}\t{p.owner_name}")


@robot_app.command("add")
def robot_add(
    name: str,
    project: Annotated[str | None, typer.Option("--project", help="a project robot of this project")] = None,
    access: Annotated[
        list[str] | None, typer.Option("--access", help="resource:action, repeatable (default repository:pull)")
    ] = None,
    duration: Annotated[int, typer.Option("--duration", help="days; -1 never expires")] = -1,
    description: Annotated[str, typer.Option("--description")] = "",
    config: ConfigOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a robot account and print its secret (shown only this once)."""
    from portside.mgmt.robots import RobotSpec

    pairs = []
    for item in access or ["repository:pull"]:
        resource, sep, action = item.partition(":")
        if not sep:
            raise typer.BadParameter(f"--access {item!r}: use resource:action")
        pairs.append((resource, action))
    permission = RobotPermission("project", project or "*", tuple(pairs))
    spec = RobotSpec(name, "project" if project else "system", (permission,), description, duration)

    async def create(s: OperatorServices) -> tuple[str, str]:
        target = await s.projects.find(project) if project else None
        created = await s.robots.add(spec, target, by=_CLI)
        return created.robot.name, created.secret

    robot_name, secret = _run(config, data_dir, create)
    typer.echo(f"created robot {robot_name}")
    typer.echo(f"secret: {secret}")
    typer.echo("the secret is shown only this once", err=True)


@robot_app.command("list")
def robot_list(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """List robot accounts."""
    page = _run(config, data_dir, lambda s: s.robots.page(Paging(1, 100)))
    for r in page.items:
        state = "disabled" if r.disabled else "enabled"
        typer.echo(f"{r.id}\t{r.name}\t{r.level}\t{state}\texpires {r.expires_at}")
