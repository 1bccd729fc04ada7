"""Live servers for the tests: Portside itself and the CNCF Distribution registry.

Each runs as a real process on 127.0.0.1 with a port picked at start, and is
stopped by the fixture that started it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
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


def running(pid: int) -> bool:
    """Whether `pid` runs: it exists and is not a zombie (an ended process its new parent,
    PID 1 for an orphan, has not reaped yet). Every thread counts: a killed process's main
    thread shows as a zombie while its other threads are still ending, and those still
    hold its files (a listening socket among them)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            stat = Path(f"/proc/{pid}/task/{task}/stat").read_bytes()
        except OSError:
            continue
        if stat[stat.rindex(b")") + 2 :].split()[0] not in (b"Z", b"X"):
            return True
    return False


def still_running(pids: list[int], within: float) -> list[int]:
    """Those of `pids` that still run after waiting up to `within` seconds for all to end."""
    deadline = time.monotonic() + within
    while (alive := [pid for pid in pids if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive


def refuses_connections(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None, timeout: float = 60.0) -> None:
    # Generous: several workers importing the whole server on two busy cores take a while.
    # A server that died says so at once (proc), so a long wait costs only a hung start.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer within {timeout}s")


@dataclass
class RegistryServer:
    """A registry process on 127.0.0.1; `host` is what clients put in image names."""

    name: ClassVar[str] = "registry"

    data_dir: Path
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> RegistryServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir.parent / f"{self.name}-{self.port}.log"
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        log.close()
        wait_http(f"{self.url}/v2/", self.proc)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def kill(self) -> None:
        """Stop the server the hard way, as a crash would."""
        self.stop(signal.SIGKILL)

    def kill_main_process(self) -> list[int]:
        """SIGKILL the server's own process only, as `kill -9 PID` by an operator does (not
        its process group); returns the PIDs of the processes it had started."""
        assert self.proc is not None and self.proc.poll() is None
        children = child_pids(self.proc.pid)
        self.proc.kill()
        self.proc.wait(timeout=15)
        return children

    def restart(self) -> None:
        self.stop()
        self.start()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


ADMIN_PASSWORD = "Portside-Admin-1"


@dataclass
class Portside(RegistryServer):
    """Portside on a data directory of its own. The registry-core suites run it as an open
    registry (their subject is the protocol); access-control suites pass `open_registry=False`
    and sign in as `admin` with `ADMIN_PASSWORD` or as accounts they create."""

    name: ClassVar[str] = "portside"
    open_registry: bool = True

    def start(self) -> RegistryServer:
        self.env.setdefault("PORTSIDE_ADMIN_PASSWORD", ADMIN_PASSWORD)
        self.env.setdefault("PORTSIDE_OPEN_REGISTRY", "true" if self.open_registry else "false")
        # One server process unless a test asks for more: the suite starts many servers.
        self.env.setdefault("PORTSIDE_WORKERS", "1")
        return super().start()

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "portside",
            "serve",
            "--listen",
            self.host,
            "--data-dir",
            str(self.data_dir),
            *self.extra_args,
        ]


@dataclass
class Distribution(RegistryServer):
    """The CNCF Distribution registry from Debian's `docker-registry` package; with
    `htpasswd` (a bcrypt htpasswd file), it asks for HTTP Basic credentials."""

    name: ClassVar[str] = "distribution"
    htpasswd: Path | None = None

    def command(self) -> list[str]:
        binary = shutil.which("docker-registry") or "/usr/bin/docker-registry"
        config = self.data_dir.parent / f"distribution-{self.port}.yml"
        auth = f"auth:\n  htpasswd:\n    realm: distribution\n    path: {self.htpasswd}\n" if self.htpasswd else ""
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.data_dir}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.host}\n" + auth
        )
        return [binary, "serve", str(config)]
