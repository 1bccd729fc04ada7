"""The `portside` command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from portside.config import hand_off, load_settings

app = typer.Typer(help="Portside: a container image registry.", no_args_is_help=True, add_completion=False)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML configuration file")]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="data directory (default ./portside-data, or PORTSIDE_DATA_DIR)")
]


@app.command()
def serve(
    config: ConfigOption = None,
    listen: Annotated[
        str | None, typer.Option("--listen", help="HOST:PORT (default 127.0.0.1:5000, or PORTSIDE_LISTEN)")
    ] = None,
    data_dir: DataDirOption = None,
    workers: Annotated[int | None, typer.Option("--workers", help="server processes")] = None,
) -> None:
    """Run the registry."""
    from granian import Granian
    from granian.constants import Interfaces

    from portside import wiring

    settings = load_settings(config, listen=listen, data_dir=data_dir, workers=workers)
    wiring.configure_logging(settings)
    wiring.migrate(settings)
    generated = asyncio.run(wiring.bootstrap(settings))
    if generated is not None:
        typer.echo(
            f"portside: created the admin account with password {generated}\n"
            "portside: it is shown only this once; change it with `portside user passwd admin`",
            err=True,
        )
    wiring.load_or_create_signing_key(settings)
    hand_off(settings)
    typer.echo(f"portside: serving http://{settings.listen} from {settings.data_dir.resolve()}", err=True)
    Granian(
        "portside.wiring:serve_app",
        factory=True,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        runtime_threads=settings.runtime_threads,
        log_enabled=True,
        log_level=settings.log_level.lower(),  # type: ignore[arg-type]
        log_access=False,
    ).serve()


@app.command()
def migrate(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Upgrade the database schema to this version of Portside."""
    from portside import wiring

    settings = load_settings(config, data_dir=data_dir)
    wiring.migrate(settings)
    typer.echo("database is up to date")


def main() -> None:
    app()


from portside.cli.accounts import project_app, robot_app, user_app  # noqa: E402
from portside.cli.upkeep import gc, scrub  # noqa: E402

app.add_typer(user_app, name="user")
app.add_typer(project_app, name="project")
app.add_typer(robot_app, name="robot")
app.command("gc")(gc)
app.command("scrub")(scrub)
