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
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from portside.cli import app
from tests.api import oci
from tests.servers import ADMIN_PASSWORD, child_pids, free_port, refuses_connections, still_running, wait_http

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

    def __init__(self, data_dir: Path, port: int | None = None, **env: str) -> None:
        self.port = port or free_port()
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

    def launch(self) -> subprocess.Popen[bytes]:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
            )
        return self.proc

    def start(self) -> Serve:
        wait_http(f"{self.url}/v2/", self.launch())
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


def _maps_application(pid: int) -> bool:
    return bool(_APPLICATION_LIBRARIES.search(Path(f"/proc/{pid}/maps").read_text()))


def test_the_supervisor_holds_nothing_of_the_application(serve: Serve):
    serve.start()
    assert serve.proc is not None
    supervisor = serve.proc.pid
    assert not _maps_application(supervisor)
    workers = child_pids(supervisor)
    assert len(workers) == 2
    assert all(_maps_application(worker) for worker in workers)


@pytest.mark.parametrize("loop", [None, "asyncio"], ids=["default", "asyncio"])
def test_server_processes_run_the_configured_event_loop(tmp_path: Path, loop: str | None):
    chosen = {"PORTSIDE_EVENT_LOOP": loop} if loop else {}
    server = Serve(tmp_path / "data", PORTSIDE_WORKERS="1", **chosen)
    try:
        server.start()  # its server process answers: the loop runs
        assert server.proc is not None
        workers = child_pids(server.proc.pid)
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


# --- a supervisor that dies takes its processes with it ------------------------------------


def _requests_until(stop: threading.Event, url: str, answered: list[int]) -> None:
    """GET /v2/ over and over, on connections kept alive and new ones, until told to stop."""
    while not stop.is_set():
        try:
            with httpx.Client(timeout=5) as client:
                for _ in range(20):
                    answered.append(client.get(f"{url}/v2/").status_code)
        except httpx.HTTPError:
            time.sleep(0.01)  # the server went away under it


def _push_and_pull(url: str) -> None:
    with httpx.Client(base_url=url, auth=("admin", ADMIN_PASSWORD), timeout=30) as client:
        repo = f"library/{oci.unique('after-kill')}"
        image = oci.push_image(client, repo, "v1")
        got = client.get(f"/v2/{repo}/manifests/v1", headers={"accept": oci.ACCEPT_ALL})
        assert got.status_code == 200 and got.content == image.body
        for blob in image.blobs:
            pulled = client.get(f"/v2/{repo}/blobs/{blob.digest}")
            assert pulled.status_code == 200 and pulled.content == blob.data


def _serve(data_dir: Path, port: int | None = None) -> Serve:
    return Serve(data_dir, port, PORTSIDE_WORKERS="2", PORTSIDE_ADMIN_PASSWORD=ADMIN_PASSWORD)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the supervisor alone, as `kill -9 PID` does: not its process group."""
    proc.kill()
    proc.wait(timeout=15)


def _end_left_over(pids: list[int]) -> None:
    """A failed test leaves no stray server behind."""
    for pid in still_running(pids, within=0):
        os.kill(pid, signal.SIGKILL)


def test_a_killed_supervisor_takes_its_server_processes_with_it(tmp_path: Path):
    first = _serve(tmp_path / "data").start()
    assert first.proc is not None
    workers = child_pids(first.proc.pid)
    assert len(workers) == 2
    stop, answered = threading.Event(), list[int]()
    stream = threading.Thread(target=_requests_until, args=(stop, first.url, answered))
    stream.start()
    try:
        while len(answered) < 50:  # requests are flowing
            assert stream.is_alive()
            time.sleep(0.01)
        _kill(first.proc)
        assert still_running(workers, within=2.0) == []
        assert refuses_connections("127.0.0.1", first.port)
    finally:
        stop.set()
        stream.join(timeout=30)
        _end_left_over(workers)
    assert set(answered) == {401}

    second = _serve(tmp_path / "data", first.port).start()  # binds the same port at once
    try:
        _push_and_pull(second.url)
    finally:
        second.stop()


def _database_open_in(pid: int, database: Path) -> bool:
    try:
        return any(os.readlink(fd) == str(database) for fd in Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False


def test_a_supervisor_killed_during_start_up_takes_the_start_up_with_it(tmp_path: Path):
    data = tmp_path / "data"
    data.mkdir()
    database = data / "portside.db"
    # The start-up waits for the database's write lock, held here, to migrate the schema.
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("PRAGMA journal_mode=WAL")
    holder.execute("BEGIN IMMEDIATE")
    start_up = None
    try:
        first = _serve(data)
        supervisor = first.launch()
        deadline = time.monotonic() + 60
        while start_up is None:
            assert time.monotonic() < deadline and supervisor.poll() is None, first.output()
            start_up = next((pid for pid in child_pids(supervisor.pid) if _database_open_in(pid, database)), None)
            time.sleep(0.05)
        assert b"start-up" in Path(f"/proc/{start_up}/cmdline").read_bytes()
        _kill(supervisor)
        assert still_running([start_up], within=2.0) == []
        assert refuses_connections("127.0.0.1", first.port)
    finally:
        holder.rollback()
        holder.close()
        _end_left_over([start_up] if start_up else [])

    second = _serve(data, first.port).start()
    try:
        _push_and_pull(second.url)
    finally:
        second.stop()


def test_an_orderly_stop_still_ends_every_process_with_status_0(tmp_path: Path):
    server = _serve(tmp_path / "data").start()
    assert server.proc is not None
    workers = child_pids(server.proc.pid)
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0
    assert still_running(workers, within=0) == []
