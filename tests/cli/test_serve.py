"""`portside serve`: the start-up work in a process of its own, then Granian's supervisor.

The start-up (migrations, the admin account, the signing key) loads the whole application
and hashes a password with argon2; the process that supervises the server processes must
hold none of that, because it lives as long as the server and they are forked from it.
"""

from __future__ import annotations

import os
import platform
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from portside.cli import app
from tests.servers import free_port, wait_http

# Shared objects that importing the application maps into a process: argon2, SQLAlchemy's
# compiled modules, SQLite, cryptography (tokens).
_APPLICATION_LIBRARIES = re.compile(r"_argon2_cffi_bindings|/sqlalchemy/|_sqlite3|/cryptography/")
_GENERATED = re.compile(r"created the admin account with password (\S+)")


def test_the_command_line_alone_imports_none_of_the_application():
    # What the supervisor holds when Granian forks the server processes from it.
    probe = "import sys, portside.cli; print(sorted({m.split('.')[0] for m in sys.modules} & set(sys.argv[1:])))"
    heavy = ["sqlalchemy", "argon2", "alembic", "fastapi", "starlette", "cryptography"]
    loaded = subprocess.run([sys.executable, "-c", probe, *heavy], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    probe = "import sys, portside.cli; print([m for m in sys.modules if m.startswith('portside.wiring')])"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_every_command_is_listed_and_runs_on_demand():
    listed = CliRunner().invoke(app, ["--help"])
    assert listed.exit_code == 0
    for name in ("serve", "migrate", "gc", "scrub", "user", "project", "robot"):
        assert f" {name} " in listed.output
    assert "start-up" not in listed.output  # serve's own step
    assert CliRunner().invoke(app, ["user", "--help"]).exit_code == 0
    assert "Did you mean 'user'?" in CliRunner().invoke(app, ["usr"]).output


_VERIFY_IN_THREADS = textwrap.dedent(
    """
    import sys
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from portside.auth.passwords import hash_password, verify_password
    from portside.cli import _return_large_buffers_to_the_system

    def resident_mib():
        status = Path("/proc/self/status").read_text()
        return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")) / 1024

    if sys.argv[1] == "server":
        _return_large_buffers_to_the_system()
    stored = hash_password("Portside-Passw0rd")
    before = resident_mib()
    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(lambda _: verify_password(stored, "Portside-Passw0rd"), range(4)))
    print(resident_mib() - before)
    """
)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="how glibc's allocator keeps freed memory")
def test_server_processes_give_argon2s_memory_back():
    # Four verifications at once, each in its own thread, hold 4 x 19 MiB while they run.
    def growth(kind: str) -> float:
        run = subprocess.run([sys.executable, "-c", _VERIFY_IN_THREADS, kind], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        return float(run.stdout)

    assert growth("plain") > 3 * 19  # what the server processes would otherwise keep
    assert growth("server") < 19


class Serve:
    """`portside serve` run the way an operator runs it, with the environment it is given."""

    def __init__(self, data_dir: Path, **env: str) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.log = data_dir.parent / f"serve-{self.port}.log"
        environment = {k: v for k, v in os.environ.items() if not k.startswith(("PORTSIDE_", "GRANIAN_"))}
        self.env = {**environment, **env}
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        listen = f"127.0.0.1:{self.port}"
        return [sys.executable, "-m", "portside", "serve", "--listen", listen, "--data-dir", str(self.data_dir)]

    def start(self) -> Serve:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        wait_http(f"{self.url}/v2/", self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path / "data", PORTSIDE_WORKERS="2")
    yield server
    server.stop()


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_bytes()
            except OSError:
                continue
            if int(stat[stat.rindex(b")") + 2 :].split()[1]) == pid:
                found.append(int(entry))
    return found


def _maps_application(pid: int) -> bool:
    return bool(_APPLICATION_LIBRARIES.search(Path(f"/proc/{pid}/maps").read_text()))


def test_the_supervisor_holds_nothing_of_the_application(serve: Serve):
    serve.start()
    assert serve.proc is not None
    supervisor = serve.proc.pid
    assert not _maps_application(supervisor)
    workers = _children(supervisor)
    assert len(workers) == 2
    assert all(_maps_application(worker) for worker in workers)


@pytest.mark.parametrize("loop", [None, "asyncio"], ids=["default", "asyncio"])
def test_server_processes_run_the_configured_event_loop(tmp_path: Path, loop: str | None):
    chosen = {"PORTSIDE_EVENT_LOOP": loop} if loop else {}
    server = Serve(tmp_path / "data", PORTSIDE_WORKERS="1", **chosen)
    try:
        server.start()  # its server process answers: the loop runs
        assert server.proc is not None
        workers = _children(server.proc.pid)
        assert len(workers) == 1
        # The main thread's stack, as py-spy reads it: asyncio's loop runs in Python frames,
        # uvloop's in compiled code that shows none. A few samples: one can catch the
        # process between frames, on a busy machine.
        (pid,) = workers
        samples = [
            subprocess.run(
                [str(Path(sys.executable).parent / "py-spy"), "dump", "--pid", str(pid)],
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            ).stdout
            for _ in range(5)
        ]
        assert any("BaseEventLoop.run_forever" in stack for stack in samples) == (loop == "asyncio")
        assert httpx.get(f"{server.url}/v2/", timeout=30).status_code in (200, 401)
    finally:
        server.stop()


def test_the_generated_admin_password_is_shown_once_and_signs_in(serve: Serve):
    serve.start()
    shown = _GENERATED.findall(serve.output())
    assert len(shown) == 1
    assert "it is shown only this once; change it with `portside user passwd admin`" in serve.output()
    answer = httpx.get(f"{serve.url}/api/v2.0/users/current", auth=("admin", shown[0]), timeout=30)
    assert answer.status_code == 200 and answer.json()["username"] == "admin"

    serve.stop()
    serve.start()
    assert len(_GENERATED.findall(serve.output())) == 1  # the second start made no new one


def test_a_stop_while_server_processes_start_is_not_lost(serve: Serve):
    # Stopped as soon as the first server process answers, while the other may still be
    # importing or starting the application; a few times, since where the stop lands varies.
    for _ in range(4):
        serve.start()
        assert serve.proc is not None
        os.killpg(serve.proc.pid, signal.SIGTERM)
        serve.proc.wait(timeout=15)


_STOPPED_TWICE_WHILE_STARTING = """
import asyncio, os, signal, sys
import uvloop
from portside import cli

cli._stop_once_per_server_process()
from granian._signals import set_loop_signals

loop = uvloop.new_event_loop() if sys.argv[1] == "uvloop" else asyncio.new_event_loop()
stop = set_loop_signals(loop)

async def starting():
    # Before Granian's server runs: once from the group's stop, once from the supervisor.
    for _ in range(2):
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.sleep(0.1)

loop.run_until_complete(starting())
print("handled both")
"""


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
def test_a_server_process_stopped_twice_while_it_starts_handles_both(loop: str):
    # Granian's own handler blocks for ever on the second (its process never exits).
    done = subprocess.run(
        [sys.executable, "-c", _STOPPED_TWICE_WHILE_STARTING, loop], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "handled both", done.stderr


def test_a_failed_start_says_why_and_exits_non_zero(tmp_path: Path):
    server = Serve(tmp_path / "data", PORTSIDE_ADMIN_PASSWORD="short")
    result = subprocess.run(server.command(), env=server.env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "admin password: the password must be 8 to 128 characters long" in result.stderr
    assert "serving http://" not in result.stderr
