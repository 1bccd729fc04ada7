"""The servers of one run, each started on loopback with a data directory of its own.

- Portside and Distribution come from `tests.servers` (the classes the test suites use),
  each in two modes: `open` (no authentication on either side) and `auth` — Portside with
  its own access control and Docker token authentication, Distribution with `auth.htpasswd`
  (bcrypt at cost 5, `htpasswd -B`'s default and what Distribution's documentation shows).
  Both with filesystem storage and no access log.
- nginx-light serving a directory with `sendfile on`: what the machine can send over
  loopback from the page cache, the ceiling for a blob pull.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from tests.backing import Nginx as FrontingNginx
from tests.servers import ADMIN_PASSWORD, Distribution, Portside, RegistryServer, free_port, wait_http

from benchmarks.registry import basic_auth, bearer_token

__all__ = [
    "Registry",
    "Nginx",
    "start_portside",
    "start_fronted_portside",
    "start_distribution",
    "stop_all",
    "USERNAME",
    "PASSWORD",
    "PROJECT",
]

USERNAME = "admin"
PASSWORD = ADMIN_PASSWORD
# Portside's access control needs repositories to live in a project; the benchmarks' do.
PROJECT = "bench"


@dataclass
class Registry:
    """One registry under test: `product` is "portside" or "distribution", `mode` "open" or "auth"."""

    product: str
    mode: str
    server: RegistryServer
    # nginx in front (mode "fronted"): clients talk to it, and it sends the blobs' bytes.
    front: FrontingNginx | None = None

    @property
    def url(self) -> str:
        return self.front.url if self.front is not None else self.server.url

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    def seeding_auth(self) -> dict[str, str]:
        """Headers for setting data up: Basic credentials work on /v2 on both products."""
        return basic_auth(USERNAME, PASSWORD) if self.mode == "auth" else {}

    def client_auth(self, repo: str) -> dict[str, str]:
        """Headers a pulling client sends on each request: a Bearer token for Portside (fetched
        now, as docker would once per pull), Basic credentials for Distribution's htpasswd."""
        if self.mode == "open":
            return {}
        if self.product == "portside":
            return bearer_token(self.url, USERNAME, PASSWORD, [f"repository:{repo}:pull"])
        return basic_auth(USERNAME, PASSWORD)

    def stop(self) -> None:
        if self.front is not None:
            self.front.stop()
        self.server.stop()


@dataclass
class HtpasswdDistribution(Distribution):
    """Distribution with `auth.htpasswd`: every request carries Basic credentials, checked
    against the bcrypt hash in `htpasswd`."""

    htpasswd: Path | None = None

    def command(self) -> list[str]:
        command = super().command()
        with open(command[-1], "a") as config:
            config.write(f"auth:\n  htpasswd:\n    realm: benchmarks\n    path: {self.htpasswd}\n")
        return command


def _start(server: RegistryServer) -> None:
    try:
        server.start()
    except (RuntimeError, TimeoutError) as error:
        server.stop()
        raise RuntimeError(f"{error}; the end of its log:\n{server.log()[-4000:]}") from None


def _portside_env(workers: int, source: Path | None, **settings: str) -> dict[str, str]:
    env = {
        "PORTSIDE_LOG_REQUESTS": "false",
        "PORTSIDE_LOG_LEVEL": "warning",
        "PORTSIDE_WORKERS": str(workers),
        # One client signs in many times from 127.0.0.1; throttling must never trip.
        "PORTSIDE_LOGIN_FAILURE_LIMIT": "1000000",
        **{f"PORTSIDE_{name.upper()}": value for name, value in settings.items()},
    }
    if source is not None:
        env["PYTHONPATH"] = str(source)
    return env


def start_portside(root: Path, mode: str, workers: int, source: Path | None) -> Registry:
    env = _portside_env(workers, source)
    server = Portside(data_dir=root / f"portside-{mode}" / "data", env=env, open_registry=(mode == "open"))
    _start(server)
    if mode == "auth":
        answer = httpx.post(
            f"{server.url}/api/v2.0/projects",
            json={"project_name": PROJECT, "metadata": {"public": "false"}},
            auth=(USERNAME, PASSWORD),
            timeout=60.0,
        )
        if answer.status_code != 201:
            server.stop()
            raise RuntimeError(f"creating project {PROJECT}: HTTP {answer.status_code} {answer.text}")
    return Registry("portside", mode, server)


def start_fronted_portside(root: Path, workers: int, source: Path | None) -> Registry:
    """An open Portside behind nginx as deploy/nginx/portside-single.conf sets it up: Portside
    checks each blob GET and hands the file to nginx (X-Accel-Redirect)."""
    data_dir = root / "portside-fronted" / "data"
    env = _portside_env(workers, source, nginx_blob_location="/_portside/blobs/")
    server = Portside(data_dir=data_dir, env=env, open_registry=True)
    _start(server)
    front = FrontingNginx(root / "portside-fronted" / "nginx", [server.host], blobs_dir=data_dir / "blobs")
    try:
        front.start()
    except Exception:
        server.stop()
        raise
    return Registry("portside", "fronted", server, front)


def start_distribution(root: Path, mode: str) -> Registry:
    data_dir = root / f"distribution-{mode}" / "data"
    if mode == "open":
        server: RegistryServer = Distribution(data_dir=data_dir)
    else:
        htpasswd = root / "htpasswd"
        subprocess.run(
            ["htpasswd", "-B", "-b", "-c", str(htpasswd), USERNAME, PASSWORD], check=True, capture_output=True
        )
        server = HtpasswdDistribution(data_dir=data_dir, htpasswd=htpasswd)
    _start(server)
    return Registry("distribution", mode, server)


@dataclass
class Nginx:
    """nginx serving `root` at http://127.0.0.1:PORT/ with sendfile, one process, no access log."""

    root: Path
    prefix: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.prefix.mkdir(parents=True, exist_ok=True)
        temp = {name: self.prefix / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
        conf = self.prefix / "nginx.conf"
        conf.write_text(
            "daemon off;\nmaster_process off;\n"
            f"pid {self.prefix / 'nginx.pid'};\nerror_log {self.prefix / 'error.log'} warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n  access_log off;\n  sendfile on;\n  tcp_nopush on;\n"
            + "".join(f"  {name}_temp_path {path};\n" for name, path in temp.items())
            + f"  server {{\n    listen 127.0.0.1:{self.port};\n    root {self.root};\n  }}\n}}\n"
        )
        self.proc = subprocess.Popen(
            [binary, "-p", str(self.prefix), "-c", str(conf), "-e", str(self.prefix / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_http(f"{self.url}/", self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def stop_all(servers: list[Registry], nginx: Nginx | None) -> None:
    for registry in servers:
        try:
            registry.stop()
        except Exception:  # stop every one of them even if one fails
            pass
    if nginx is not None:
        nginx.stop()
