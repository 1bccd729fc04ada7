"""The `portside` command."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from portside.cli.supervision import end_with_supervisor, tie_forked_children
from portside.config import Settings, hand_off, load_settings, received_settings
from portside.extras import MissingExtra, require_extras

app = typer.Typer(help="Portside: a container image registry.", no_args_is_help=True, add_completion=False)

ConfigOption = Annotated[Path | None, typer.Option("--config", help="YAML configuration file")]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="data directory (default ./portside-data, or PORTSIDE_DATA_DIR)")
]


_START_UP = "start-up"


@app.command(_START_UP, hidden=True)
def start_up(
    supervisor: Annotated[
        int | None, typer.Option("--supervisor", help="end when this process, the parent, does")
    ] = None,
) -> None:
    """`serve`'s start-up, in a process of its own: the database schema, the built-in admin and
    the `library` project, the token signing key; with the settings `serve` handed off."""
    if supervisor is not None:
        end_with_supervisor(supervisor)
    from portside import startup

    settings = received_settings()
    startup.configure_logging(settings)
    startup.migrate(settings)
    generated = asyncio.run(startup.bootstrap(settings))
    if generated is not None:
        typer.echo(
            f"portside: created the admin account with password {generated}\n"
            "portside: it is shown only this once; change it with `portside user passwd admin`",
            err=True,
        )
    startup.load_or_create_signing_key(settings)
    try:
        startup.check_signing_keys(settings)
    except ValueError as error:
        typer.echo(f"portside: signing on push: {error}", err=True)
        raise typer.Exit(2) from None


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
    from granian.constants import Interfaces, Loops

    try:
        settings = load_settings(config, listen=listen, data_dir=data_dir, workers=workers)
    except ValidationError as error:
        # Each problem by its setting and in words, never the values (a token may be one).
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"]) or "settings"
            typer.echo(f"portside: {where}: {problem['msg']}", err=True)
        raise typer.Exit(2) from None
    _refuse_missing_extras(settings)
    hand_off(settings)
    # This process stays to supervise the server processes for as long as the server runs,
    # and they are forked from it. The start-up work loads the whole application, Alembic
    # and argon2, and hashes the admin password: it runs in a process of its own, which
    # reports its own errors, so that none of it stays in memory here or in the servers.
    # Every process started here ends when this one does, however it ends (supervision.py).
    supervisor = os.getpid()
    started = subprocess.run(
        [sys.executable, "-m", "portside", _START_UP, "--supervisor", str(supervisor)], check=False
    )
    if started.returncode != 0:
        raise typer.Exit(started.returncode)
    typer.echo(f"portside: serving http://{settings.listen} from {settings.data_dir.resolve()}", err=True)
    os.register_at_fork(after_in_child=_stop_at_once)  # first: see there
    tie_forked_children(supervisor)
    Granian(
        "portside.wiring:serve_app",  # what the server processes run, by way of `_server_app`
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=settings.workers,
        runtime_threads=settings.runtime_threads,
        loop=Loops(settings.event_loop),
        log_enabled=True,
        log_level=settings.log_level.lower(),  # type: ignore[arg-type]
        log_access=False,
    ).serve(target_loader=_server_app, wrap_loader=False)


def _stop_at_once() -> None:
    """Run in each server process as it is forked from the supervisor.

    It starts with the supervisor's signal handlers, which only note a stop in the
    supervisor's state (of which it has a copy). A stop that came while it sets up its event
    loop (importing uvloop), imports the application or starts it, a second or more, would be
    lost, and the supervisor would wait for it forever. Until Granian installs the server
    process's own handlers, once the application is loaded, a stop ends it at once. It is
    the first thing a new server process runs, so that this window stays as small as can be."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _server_app() -> Any:
    """Granian's loader of the application, run in each server process as it starts."""
    _stop_once_per_server_process()
    _return_large_buffers_to_the_system()
    from portside.wiring import serve_app

    return serve_app()


def _stop_once_per_server_process() -> None:
    """Have the handlers Granian installs in a server process pass on one stop, not two.

    Granian turns SIGINT and SIGTERM into a `WorkerSignal` whose `set`, called a second time
    before the server loop has taken the first, blocks for ever (Granian 2.8). A stop sent to
    the whole process group (Ctrl-C in a terminal, systemd's default, `kill -- -PID`) reaches
    each server process twice, once itself and once passed on by the supervisor; one that
    was still starting its application then never exited, and the supervisor waited for it.
    Granian looks its installer up as each server process starts, after this has run."""
    import granian._signals
    from granian._granian import WorkerSignal

    def set_loop_signals(loop: asyncio.AbstractEventLoop) -> WorkerSignal:
        stop = WorkerSignal()
        stopping = False

        def on_signal(signum: int, frame: object) -> None:
            nonlocal stopping
            if not stopping:
                stopping = True
                stop.set()

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum, None)
        return stop

    granian._signals.set_loop_signals = set_loop_signals


# glibc's mallopt parameters, and the sizes set for them.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MAPPED_FROM = 16 * 1024 * 1024


def _return_large_buffers_to_the_system() -> None:
    """Have malloc map each buffer of 16 MiB or more on its own, and unmap it when freed."""
    # Every password verification allocates argon2's 19 MiB (auth.passwords) in the pool
    # thread that runs it. glibc raises its mapping threshold to the size of the first such
    # buffer freed, so later ones come from the thread's malloc arena, and stay resident
    # there once freed: 19 MiB more for every thread that has ever verified a password.
    # Fixed thresholds stop that. The trim threshold is the one glibc would have reached by
    # itself (twice the mapping threshold), so smaller buffers are kept for reuse as before.
    if not sys.platform.startswith("linux"):
        return
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:  # glibc's; elsewhere a stub or missing
        mallopt(_M_TRIM_THRESHOLD, 2 * _MAPPED_FROM)
        mallopt(_M_MMAP_THRESHOLD, _MAPPED_FROM)


@app.command()
def migrate(config: ConfigOption = None, data_dir: DataDirOption = None) -> None:
    """Upgrade the database schema to this version of Portside."""
    from portside import wiring

    settings = load_settings(config, data_dir=data_dir)
    _refuse_missing_extras(settings)
    wiring.migrate(settings)
    typer.echo("database is up to date")


def _refuse_missing_extras(settings: Settings) -> None:
    try:
        require_extras(settings)
    except MissingExtra as missing:
        typer.echo(f"error: {missing}", err=True)
        raise typer.Exit(1) from None


def main() -> None:
    app()


# The operator's commands. Their modules load the application only when one of them runs.
from portside.cli.accounts import project_app, robot_app, user_app  # noqa: E402
from portside.cli.copy import copy, sync  # noqa: E402
from portside.cli.cve_export import cve_export  # noqa: E402
from portside.cli.preheat import preheat_app  # noqa: E402
from portside.cli.registries import registry_app  # noqa: E402
from portside.cli.replication import replication_app  # noqa: E402
from portside.cli.scan import sbom, scan  # noqa: E402
from portside.cli.sign import key_app, login, sign, verify  # noqa: E402
from portside.cli.upkeep import gc, scrub  # noqa: E402
from portside.cli.vulndb import vulndb_app  # noqa: E402

app.add_typer(user_app, name="user")
app.add_typer(project_app, name="project")
app.add_typer(robot_app, name="robot")
app.add_typer(vulndb_app, name="vulndb")
app.add_typer(registry_app, name="registry")
app.add_typer(replication_app, name="replication")
app.add_typer(preheat_app, name="preheat")
app.command("gc")(gc)
app.command("scrub")(scrub)
app.command("scan")(scan)
app.command("sbom")(sbom)
app.command("cve-export")(cve_export)
app.add_typer(key_app, name="key")
app.command("sign")(sign)
app.command("verify")(verify)
app.command("login")(login)
app.command("copy")(copy)
app.command("sync")(sync)
