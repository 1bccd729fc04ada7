"""Real registry clients for the end-to-end tests: how to find, start and run them.

* `run` executes a command and, when it fails, raises with the command line, exit status,
  stdout and stderr, so a failing test shows what the client said.
* `require` turns a missing client into a test FAILURE that names the package to install
  (CI installs everything with scripts/install-test-deps, so a missing binary is a bug).
* `DockerDaemon` / `ContainerdDaemon` reuse a daemon that answers, or start one of their
  own (data under a private directory, logs to a file) and stop it afterwards.
* `Podman` runs podman on private storage, always with `--runtime runc`.
* `RegistryHTTP` is a thin httpx wrapper for checking what the registry really stores.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.images import ALL_MANIFEST_TYPES, sha256_digest

PACKAGES = {
    "docker": "docker.io",
    "dockerd": "docker.io",
    "podman": "podman",
    "runc": "runc",
    "skopeo": "skopeo",
    "ctr": "containerd",
    "containerd": "containerd",
    "docker-registry": "docker-registry",
}

DEFAULT_TIMEOUT = 180.0


def require(binary: str) -> str:
    """The path of `binary`, or a test failure naming the Debian package that provides it."""
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}", f"/sbin/{binary}") if os.access(p, os.X_OK)),
        None,
    )
    if path is None:
        pytest.fail(
            f"`{binary}` is not installed: the e2e tests need Debian's `{PACKAGES.get(binary, binary)}` "
            "package; run scripts/install-test-deps as root",
            pytrace=False,
        )
    return path


class CommandFailed(AssertionError):
    pass


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def run(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    env: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command to completion; on failure (or timeout) raise with all it printed."""
    argv = [str(c) for c in cmd]
    try:
        proc = subprocess.run(
            argv,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandFailed(
            f"command timed out after {timeout}s: {' '.join(argv)}\n"
            f"--- stdout ---\n{_text(exc.stdout)}\n--- stderr ---\n{_text(exc.stderr)}"
        ) from None
    if check and proc.returncode != 0:
        raise CommandFailed(
            f"command failed with exit status {proc.returncode}: {' '.join(argv)}\n"
            f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
        )
    return proc


def _wait_until(probe, what: str, timeout: float, proc: subprocess.Popen[bytes] | None, log: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode} before it was ready\n{_tail(log)}")
        if probe():
            return
        time.sleep(0.25)
    raise TimeoutError(f"{what} was not ready within {timeout}s\n{_tail(log)}")


def _tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()
    return f"--- last lines of {log} ---\n" + "\n".join(text[-lines:])


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


def unmount_under(root: Path) -> None:
    """Unmount whatever is still mounted below `root` (netns files, overlay mounts), deepest first."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    try:
        mountinfo = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = []
    for line in mountinfo:
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].replace("\\040", " ")
            if point.startswith(prefix):
                points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def fs_type(path: Path) -> str:
    """The type of the filesystem `path` lives on (from /proc/self/mountinfo), or ''."""
    target = str(path.resolve())
    best, best_type = "", ""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return ""
    for line in lines:
        left, _, right = line.partition(" - ")
        fields = left.split()
        if len(fields) < 5 or not right:
            continue
        point = fields[4].replace("\\040", " ")
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, right.split()[0]
    return best_type


# --------------------------------------------------------------------------- docker


@dataclass
class DockerDaemon:
    """A docker daemon to talk to: the one already running, or one of our own."""

    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    root: Path | None = None
    log_path: Path | None = None

    @classmethod
    def ensure(cls, root: Path, log_dir: Path | None = None) -> DockerDaemon:
        docker = require("docker")
        if run([docker, "info"], check=False, timeout=20).returncode == 0:
            return cls()  # a daemon answers (DOCKER_HOST or the default socket): use it
        dockerd = require("dockerd")
        require("runc")
        root.mkdir(parents=True, exist_ok=True)
        sock = root / "docker.sock"
        config = root / "daemon.json"
        config.write_text("{}\n")  # isolate from any /etc/docker/daemon.json
        log_path = (log_dir or root) / "dockerd.log"
        cmd = [
            dockerd,
            "--config-file",
            str(config),
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "exec"),
            "--pidfile",
            str(root / "dockerd.pid"),
            "--host",
            f"unix://{sock}",
            # the tests run containers with --network host: no bridge, no iptables rules
            "--bridge",
            "none",
            "--iptables=false",
        ]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        daemon = cls(env={"DOCKER_HOST": f"unix://{sock}"}, proc=proc, root=root, log_path=log_path)
        try:
            _wait_until(
                lambda: (
                    sock.exists() and run([docker, "info"], env=daemon.env, check=False, timeout=20).returncode == 0
                ),
                "dockerd",
                90,
                proc,
                log_path,
            )
        except BaseException:
            daemon.stop()
            raise
        return daemon

    def docker(self, *args: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT, check: bool = True):
        return run([require("docker"), *args], env=self.env, timeout=timeout, check=check)

    def log(self) -> str:
        return _tail(self.log_path)

    def stop(self) -> None:
        if self.proc is None:
            return
        _stop_process(self.proc)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # leftovers of the process group (its containerd)
        except ProcessLookupError:
            pass
        if self.root is not None:
            unmount_under(self.root)
        self.proc = None


# --------------------------------------------------------------------------- containerd


@dataclass
class ContainerdDaemon:
    """A containerd to pull into: the system one if it answers, else our own."""

    address: str
    namespace: str = "portside-e2e"
    proc: subprocess.Popen[bytes] | None = None
    root: Path | None = None
    log_path: Path | None = None

    SYSTEM_SOCKET = "/run/containerd/containerd.sock"

    @classmethod
    def ensure(cls, root: Path, log_dir: Path | None = None) -> ContainerdDaemon:
        ctr = require("ctr")
        if (
            Path(cls.SYSTEM_SOCKET).exists()
            and run([ctr, "--address", cls.SYSTEM_SOCKET, "version"], check=False, timeout=20).returncode == 0
        ):
            return cls(address=cls.SYSTEM_SOCKET)
        containerd = require("containerd")
        require("runc")
        root.mkdir(parents=True, exist_ok=True)
        sock = root / "containerd.sock"
        config = root / "config.toml"
        config.write_text(
            "version = 2\n"
            f'root = "{root / "root"}"\n'
            f'state = "{root / "state"}"\n'
            'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n'
            f'[grpc]\n  address = "{sock}"\n'
            f'[ttrpc]\n  address = "{root / "ttrpc.sock"}"\n'
            '[debug]\n  address = ""\n'
            '[metrics]\n  address = ""\n'
            f'[plugins."io.containerd.internal.v1.opt"]\n  path = "{root / "opt"}"\n'
        )
        log_path = (log_dir or root) / "containerd.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [containerd, "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        daemon = cls(address=str(sock), proc=proc, root=root, log_path=log_path)
        try:
            _wait_until(
                lambda: sock.exists() and daemon.ctr("version", check=False, timeout=20).returncode == 0,
                "containerd",
                60,
                proc,
                log_path,
            )
        except BaseException:
            daemon.stop()
            raise
        return daemon

    def ctr(self, *args: str, timeout: float = DEFAULT_TIMEOUT, check: bool = True):
        return run(
            [require("ctr"), "--address", self.address, "--namespace", self.namespace, *args],
            timeout=timeout,
            check=check,
        )

    def stop(self) -> None:
        if self.proc is None:
            return
        _stop_process(self.proc)
        if self.root is not None:
            unmount_under(self.root)
        self.proc = None


# --------------------------------------------------------------------------- podman


@dataclass
class Podman:
    """podman on private storage, always with runc (crun fails on this host's hybrid cgroups)."""

    root: Path

    def base(self) -> list[str]:
        argv = [
            require("podman"),
            "--root",
            str(self.root / "storage"),
            "--runroot",
            str(self.root / "run"),
            "--tmpdir",
            str(self.root / "tmp"),
            "--runtime",
            "runc",
        ]
        self.root.mkdir(parents=True, exist_ok=True)
        fuse = shutil.which("fuse-overlayfs")
        if fs_type(self.root) == "overlay" and fuse:
            # the kernel's overlayfs cannot stack on overlayfs (a containerised CI host)
            argv += ["--storage-opt", f"overlay.mount_program={fuse}"]
        return argv

    def __call__(self, *args: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT, check: bool = True):
        require("runc")
        return run([*self.base(), *args], timeout=timeout, check=check)

    def cleanup(self) -> None:
        if shutil.which("podman"):
            run([*self.base(), "rmi", "--all", "--force"], check=False, timeout=120)
        unmount_under(self.root)


# --------------------------------------------------------------------------- skopeo


def skopeo(*args: str | os.PathLike[str], timeout: float = DEFAULT_TIMEOUT, check: bool = True):
    return run([require("skopeo"), *args], timeout=timeout, check=check)


# --------------------------------------------------------------------------- registry over HTTP


@dataclass
class RegistryHTTP:
    """What the registry itself says, to check the clients' work against."""

    base_url: str

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=60.0)

    def manifest(self, repo: str, ref: str, accept: Sequence[str] = ALL_MANIFEST_TYPES) -> httpx.Response:
        with self.client() as c:
            resp = c.get(f"/v2/{repo}/manifests/{ref}", headers={"Accept": ", ".join(accept)})
        assert resp.status_code == 200, f"GET /v2/{repo}/manifests/{ref} -> {resp.status_code} {resp.text}"
        return resp

    def manifest_digest(self, repo: str, ref: str) -> str:
        """The digest the registry answers for `ref`, checked against the body it serves."""
        resp = self.manifest(repo, ref)
        header = resp.headers.get("Docker-Content-Digest")
        body_digest = sha256_digest(resp.content)
        assert header == body_digest, f"Docker-Content-Digest {header} != sha256 of the body {body_digest}"
        return body_digest

    def head_manifest(self, repo: str, ref: str) -> httpx.Response:
        with self.client() as c:
            return c.head(f"/v2/{repo}/manifests/{ref}", headers={"Accept": ", ".join(ALL_MANIFEST_TYPES)})

    def blob(self, repo: str, digest: str) -> bytes:
        with self.client() as c:
            resp = c.get(f"/v2/{repo}/blobs/{digest}", follow_redirects=True)
        assert resp.status_code == 200, f"GET /v2/{repo}/blobs/{digest} -> {resp.status_code} {resp.text}"
        return resp.content

    def tags(self, repo: str) -> list[str]:
        with self.client() as c:
            resp = c.get(f"/v2/{repo}/tags/list")
        assert resp.status_code == 200, f"GET /v2/{repo}/tags/list -> {resp.status_code} {resp.text}"
        return list(resp.json().get("tags") or [])


def json_out(proc: subprocess.CompletedProcess[str]) -> dict:
    try:
        return json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise AssertionError(f"not JSON ({exc}): {proc.args}\n{proc.stdout}\n{proc.stderr}") from None
