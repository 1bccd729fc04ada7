"""Backing services for the scaled-out stack: PostgreSQL, Redis, an S3 endpoint (moto in
server mode, over real HTTP) and nginx as the load balancer, from Debian's packages.

Each runs as a real process on 127.0.0.1 with a port picked at start, in a directory of
its own, and is stopped by the fixture that started it. One of each serves a whole test
session; servers get a database, a bucket and a Redis key prefix of their own.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers import free_port, wait_http

PG_BIN = Path("/usr/lib/postgresql/15/bin")
# The site configuration the README's production topology uses; the tests run it as is.
NGINX_SITE = Path(__file__).resolve().parent.parent / "deploy" / "nginx" / "portside.conf"
NGINX_SINGLE_SITE = NGINX_SITE.with_name("portside-single.conf")


def _wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def _spawn(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server in a session of its own, its output appended to `log_path`."""
    with open(log_path, "ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=20)


@dataclass
class Postgres:
    """A throw-away PostgreSQL cluster (trust authentication on loopback only).

    initdb refuses to run as root, so the cluster belongs to Debian's `postgres` user, in
    a directory of its own under /tmp (pytest's temporary directories are closed to it)."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="portside-pg-", dir="/tmp")))
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def _as_postgres(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    def start(self) -> Postgres:
        data = self.root / "pgdata"
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        subprocess.run(
            self._as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"),
            check=True,
            capture_output=True,
        )
        self.proc = _spawn(
            self._as_postgres(
                str(PG_BIN / "postgres"),
                "-D",
                str(data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.root}",
                "-c",
                "max_connections=400",
                "-c",
                "fsync=on",
                "-c",
                "shared_buffers=128MB",
            ),
            self.root / "postgres.log",
        )
        _wait_port(self.port, self.proc)
        # Accepting connections comes a moment after listening.
        deadline = time.monotonic() + 30
        while self.psql("SELECT 1", check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError("PostgreSQL did not accept connections")
            time.sleep(0.1)
        return self

    def psql(self, sql: str, database: str = "postgres", check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                "psql",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAtc",
                sql,
            ],
            check=check,
            capture_output=True,
            text=True,
        )

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        name = name or f"portside_{uuid.uuid4().hex[:12]}"
        self.psql(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT)  # SIGINT: PostgreSQL's fast shutdown
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Redis:
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Redis:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = _spawn(
            [
                shutil.which("redis-server") or "/usr/bin/redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.root),
                "--protected-mode",
                "no",
            ],
            self.root / "redis.log",
        )
        _wait_port(self.port, self.proc)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        _stop(self.proc)


# moto accepts any credentials; these only make the AWS SDK sign its requests.
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "portside-test",
    "AWS_SECRET_ACCESS_KEY": "portside-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class S3:
    """moto in server mode: an S3 endpoint over real HTTP on loopback."""

    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> S3:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = _spawn(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            self.root / "moto.log",
            env={**os.environ, **S3_ENV},
        )
        wait_http(f"{self.endpoint}/moto-api/", self.proc)
        return self

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def create_bucket(self, name: str | None = None) -> str:
        """A new empty bucket; returns its name."""
        import boto3

        name = name or f"portside-{uuid.uuid4().hex[:12]}"
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1", **_boto_credentials())
        client.create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        _stop(self.proc)


def _boto_credentials() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
    }


@dataclass
class Nginx:
    """nginx on loopback balancing over `upstreams` (HOST:PORT), round robin, with the
    site configuration of deploy/nginx/portside.conf; or, given `blobs_dir` (a filesystem
    store's blobs directory), in front of one Portside with deploy/nginx/portside-single.conf."""

    root: Path
    upstreams: list[str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    blobs_dir: Path | None = None

    def _site(self) -> str:
        if self.blobs_dir is None:
            site = NGINX_SITE.read_text()
            servers = "\n".join(f"    server {u} max_fails=1 fail_timeout=2s;" for u in self.upstreams)
            examples = "\n".join(f"    server 127.0.0.1:{p};" for p in (5001, 5002, 5003))
            replacements = {examples: servers}
        else:
            site = NGINX_SINGLE_SITE.read_text()
            (upstream,) = self.upstreams
            replacements = {
                "server 127.0.0.1:5000;": f"server {upstream};",
                "alias /var/lib/portside/blobs/;": f"alias {self.blobs_dir}/;",
            }
        replacements["listen 127.0.0.1:8080;"] = f"listen 127.0.0.1:{self.port};"
        for example, actual in replacements.items():
            assert example in site, f"the nginx site no longer holds {example!r}"
            site = site.replace(example, actual)
        return site

    def start(self) -> Nginx:
        self.root.mkdir(parents=True, exist_ok=True)
        site = self._site()
        (self.root / "portside.conf").write_text(site)
        # Serving blobs, nginx's workers read the store's files, which only their owner may
        # (deploy/nginx/portside-single.conf): they run as the user that runs Portside.
        user = f"user {getpass.getuser()};" if self.blobs_dir is not None and os.geteuid() == 0 else ""
        (self.root / "nginx.conf").write_text(
            f"""
{user}
worker_processes 1;
pid {self.root}/nginx.pid;
error_log {self.root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {self.root}/body;
    proxy_temp_path {self.root}/proxy;
    fastcgi_temp_path {self.root}/fastcgi;
    uwsgi_temp_path {self.root}/uwsgi;
    scgi_temp_path {self.root}/scgi;
    include {self.root}/portside.conf;
}}
"""
        )
        self.proc = _spawn(
            [
                shutil.which("nginx") or "/usr/sbin/nginx",
                "-p",
                str(self.root),
                "-c",
                str(self.root / "nginx.conf"),
                "-g",
                "daemon off;",
            ],
            self.root / "nginx.out",
        )
        _wait_port(self.port, self.proc)
        return self

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        _stop(self.proc, signal.SIGQUIT)
